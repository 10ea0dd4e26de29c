package syncgen

import (
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamReset is how grpc-go words a call ended by an HTTP/2 stream reset rather than by the
// server's status, for the codes a torn-down connection gives (NO_ERROR, INTERNAL_ERROR).
// Node's HTTP/2 resets streams so when it closes a connection whose client cancelled many
// calls. A status the server itself answers never reads so.
var streamReset = regexp.MustCompile(`^stream terminated by RST_STREAM with error code: (NO_ERROR|INTERNAL_ERROR)\b`)

// IsRetryable reports whether a failed call may be tried again: the server could not serve
// it now (UNAVAILABLE), or the connection under it was torn down before the server answered.
// The client retries Get, Peek and Clear, and resumes a Watch, on these by itself; a Bump is
// never retried, because a retried Bump may advance the generation twice.
func IsRetryable(err error) bool {
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	return s.Code() == codes.Unavailable || (s.Code() == codes.Internal && streamReset.MatchString(s.Message()))
}

// dialFailure matches grpc-go's failure to connect: `last connection error: connection error:
// desc = "transport: Error while dialing dial tcp 127.0.0.1:1: connect: connection refused"`.
var dialFailure = regexp.MustCompile(`^(?:last connection error: )?connection error: desc = "transport: (?:Error while dialing )?(.*)"$`)

// explainUnreachable rewords grpc-go's failure to connect in words a person can act on,
// keeping the code: `cannot reach 127.0.0.1:1: connection refused; is syncgen serve running
// there?`. An UNAVAILABLE the server answered (its store cannot reach Redis, say) keeps its
// words.
func explainUnreachable(err error, target string) error {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.Unavailable {
		return err
	}
	match := dialFailure.FindStringSubmatch(s.Message())
	if match == nil {
		return err
	}
	why := match[1]
	switch {
	case strings.HasSuffix(why, "connection refused"):
		why = "connection refused; is `syncgen serve` running there?"
	case strings.Contains(why, "no such host"):
		why = "cannot resolve the host name; is it right?"
	case strings.Contains(why, "i/o timeout"):
		why = "the connection timed out; is the address right, and the port open?"
	}
	return status.Errorf(codes.Unavailable, "cannot reach %s: %s", target, why)
}
