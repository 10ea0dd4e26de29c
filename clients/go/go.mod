// The Go client of syncgen. The module path has no host because the repository's public
// address is not settled: use it with a replace directive (see the README's Go section).
// Requirements are the versions it is built and tested with (Debian bookworm's); any later
// grpc-go or protobuf-go v1 works too. No go.sum is shipped: `go mod tidy` writes yours.
module syncgen/clients/go

go 1.16

require (
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)
