// Package syncgen is the Go client of syncgen, a service that hands out generation numbers
// for cache keys so that many processes know when their cached copy of shared state is stale.
//
// A Client calls the server (Get, Peek, Bump, Clear, Watch) with deadlines and retries. A
// Synchronizer is djblets' GenerationSynchronizer: it remembers the generation a process
// loaded its state at and answers whether that is still current, from one shared Watch
// stream per Client in watch mode. MakeCacheKey builds key names exactly as djblets'
// make_cache_key does, so Go, Python and TypeScript services agree on them.
//
//	client, err := syncgen.Dial("127.0.0.1:50051", syncgen.Options{})
//	if err != nil { ... }
//	defer client.Close()
//	sync := syncgen.NewSynchronizer(ctx, client, syncgen.Key{"users", "42"}, &syncgen.SynchronizerOptions{Watch: true})
//	defer sync.Close()
//	if sync.IsExpired(ctx) { reload(); sync.Refresh(ctx) }
//
// The generated messages and stubs are in syncgen/clients/go/generation/v1.
package syncgen
