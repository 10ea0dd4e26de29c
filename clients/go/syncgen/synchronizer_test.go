package syncgen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recordingLogger keeps what a synchronizer logs.
type recordingLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recordingLogger) Printf(format string, v ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *recordingLogger) logged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// countingCalls is a dial option that counts the unary calls a client makes.
func countingCalls(count *int64) grpc.DialOption {
	return grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply interface{}, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		atomic.AddInt64(count, 1)
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

func newSynchronizer(t *testing.T, client *Client, key Key, options *SynchronizerOptions) *Synchronizer {
	t.Helper()
	s, err := NewSynchronizer(within(t, 30), client, key, options)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// djblets' synchronizer test cases (djblets/cache/tests/test_synchronizer.py), with another
// client standing in for djblets' other process (cache.set) and Clear for an eviction.
func TestSynchronizerBehavesAsDjbletsTestsAssert(t *testing.T) {
	address := sharedServer(t)
	client := dial(t, address, Options{})
	other := dial(t, address, Options{})
	ctx := within(t, 60)
	key := uniqueKey(t)

	s := newSynchronizer(t, client, Key{key}, nil)
	if s.CacheKey() != key {
		t.Fatalf("CacheKey = %q; want %q", s.CacheKey(), key)
	}
	// test_initial_state: sync_gen is the shared value, and not expired.
	shared, err := other.Peek(ctx, key)
	if err != nil || shared == 0 || s.SyncGen() != shared {
		t.Fatalf("SyncGen = %d, shared %d (%v); want equal and created", s.SyncGen(), shared, err)
	}
	if s.IsExpired(ctx) {
		t.Fatal("expired right after creation")
	}
	// test_is_expired_after_other_process_updates
	bumped, err := other.Bump(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsExpired(ctx) {
		t.Fatal("not expired after another process bumped")
	}
	// test_refresh
	s.Refresh(ctx)
	if s.SyncGen() != bumped || s.IsExpired(ctx) {
		t.Fatalf("after Refresh: SyncGen %d, expired %v; want %d, false", s.SyncGen(), s.IsExpired(ctx), bumped)
	}
	// test_mark_updated: exactly +1, shared and held.
	s.MarkUpdated(ctx)
	if shared, _ := other.Peek(ctx, key); s.SyncGen() != bumped+1 || shared != bumped+1 {
		t.Fatalf("after MarkUpdated: SyncGen %d, shared %d; want both %d", s.SyncGen(), shared, bumped+1)
	}
	if s.IsExpired(ctx) {
		t.Fatal("the writer is expired after its own MarkUpdated")
	}
	// test_is_expired_when_expired_in_cache: an eviction (Clear) expires; checking creates nothing.
	if err := other.Clear(ctx, key); err != nil {
		t.Fatal(err)
	}
	if !s.IsExpired(ctx) {
		t.Fatal("not expired after the key was cleared")
	}
	if shared, _ := other.Peek(ctx, key); shared != 0 {
		t.Fatalf("IsExpired re-created the key at %d", shared)
	}
	// Clear deletes without touching SyncGen.
	s.Refresh(ctx)
	held := s.SyncGen()
	s.Clear(ctx)
	if shared, _ := other.Peek(ctx, key); shared != 0 || s.SyncGen() != held || !s.IsExpired(ctx) {
		t.Fatalf("after Clear: shared %d, SyncGen %d (was %d), expired %v", shared, s.SyncGen(), held, s.IsExpired(ctx))
	}
}

// test_with_cache_key_sequence, with djblets' site prefix.
func TestSynchronizerWithACacheKeySequence(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	ctx := within(t, 30)
	id := uniqueKey(t)
	s := newSynchronizer(t, client, Key{"users", id + ":1"}, &SynchronizerOptions{CacheKey: CacheKeyOptions{Prefix: []string{"example.com"}}})
	if want := "example.com:users:" + strings.ReplaceAll(id, ":", "%3A") + "%3A1"; s.CacheKey() != want {
		t.Fatalf("CacheKey = %q; want %q", s.CacheKey(), want)
	}
	before := s.SyncGen()
	s.MarkUpdated(ctx)
	if s.SyncGen() != before+1 {
		t.Fatalf("MarkUpdated: %d -> %d; want +1", before, s.SyncGen())
	}
}

func TestSynchronizerKeyArguments(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	ctx := within(t, 30)
	if _, err := NewSynchronizer(ctx, client, Key{"a", "b"}, &SynchronizerOptions{RawKey: true}); err == nil {
		t.Fatal("a raw key of two parts was accepted")
	}
	if _, err := NewSynchronizer(ctx, client, Key{}, nil); err == nil {
		t.Fatal("a key of no parts was accepted")
	}
	raw := newSynchronizer(t, client, Key{"raw key\x00"}, &SynchronizerOptions{RawKey: true})
	if raw.CacheKey() != "raw key\x00" {
		t.Fatalf("a raw key was changed: %q", raw.CacheKey())
	}
}

// Service errors are logged and passed to OnError, never returned; a check fails safe.
func TestSynchronizerSwallowsServiceErrorsAndFailsSafe(t *testing.T) {
	stopped := startServe(t, "127.0.0.1:0")
	stopped.stop()
	client := dial(t, stopped.address, Options{})
	logger := &recordingLogger{}
	var mu sync.Mutex
	var actions []Action
	s := newSynchronizer(t, client, Key{"down"}, &SynchronizerOptions{
		Logger:       logger,
		CheckTimeout: 300 * time.Millisecond,
		OnError: func(err error, action Action) {
			if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("%s: %v; want UNAVAILABLE or DEADLINE_EXCEEDED", action, err)
			}
			mu.Lock()
			actions = append(actions, action)
			mu.Unlock()
		},
	})
	ctx := within(t, 30)
	if s.SyncGen() != 0 {
		t.Fatalf("SyncGen = %d with the server down; want 0 (none known)", s.SyncGen())
	}
	if !s.IsExpired(ctx) || !s.IsExpired(ctx) {
		t.Fatal("not expired with the server down")
	}
	s.MarkUpdated(ctx)
	err := s.Update(ctx, func(context.Context) error { return nil })
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), `the data was written, but bumping the generation of cache key "down" failed, so readers were not told`) {
		t.Fatalf("Update = %v; want UNAVAILABLE saying readers were not told", err)
	}
	mu.Lock()
	got := fmt.Sprint(actions)
	mu.Unlock()
	if want := "[refreshing checking checking marking as updated]"; got != want {
		t.Fatalf("OnError actions = %s; want %s", got, want)
	}
	// One line per action per interval: the second failed check is not logged again.
	lines := logger.logged()
	if len(lines) != 3 || !strings.HasPrefix(lines[1], `syncgen: checking generation of cache key "down" failed: rpc error: code = Unavailable`) {
		t.Fatalf("logged %q; want one line each for refreshing, checking, marking as updated", lines)
	}
}

func TestWatchModeAnswersFromTheStreamWithoutACall(t *testing.T) {
	address := sharedServer(t)
	var calls int64
	client := dial(t, address, Options{DialOptions: []grpc.DialOption{countingCalls(&calls)}})
	other := dial(t, address, Options{})
	ctx := within(t, 60)
	s := newSynchronizer(t, client, Key{uniqueKey(t)}, &SynchronizerOptions{Watch: true})
	expired := make(chan int64, 10)
	s.OnExpired(func(generation int64) { expired <- generation })
	eventually(t, "the shared stream to go live", s.Live)

	before := atomic.LoadInt64(&calls)
	if s.IsExpired(ctx) {
		t.Fatal("expired right after creation")
	}
	bumped, err := other.Bump(ctx, s.CacheKey())
	if err != nil {
		t.Fatal(err)
	}
	if generation := receive(t, expired); generation != bumped {
		t.Fatalf("OnExpired told %d; want %d", generation, bumped)
	}
	if !s.IsExpired(ctx) {
		t.Fatal("not expired after another client bumped")
	}
	if made := atomic.LoadInt64(&calls) - before; made != 0 {
		t.Fatalf("checks made %d calls while the stream was live; want none", made)
	}
	s.Refresh(ctx)
	if s.IsExpired(ctx) {
		t.Fatal("expired after Refresh")
	}
	s.MarkUpdated(ctx)
	if s.IsExpired(ctx) {
		t.Fatal("the writer is expired after its own MarkUpdated")
	}
	// A clear by another client: told as 0.
	if err := other.Clear(ctx, s.CacheKey()); err != nil {
		t.Fatal(err)
	}
	if generation := receive(t, expired); generation != 0 {
		t.Fatalf("OnExpired told %d after a Clear; want 0", generation)
	}

	// Closed: no longer followed, so a check asks the server.
	s.Close()
	if s.Live() {
		t.Fatal("still live after Close")
	}
	before = atomic.LoadInt64(&calls)
	if !s.IsExpired(ctx) || atomic.LoadInt64(&calls) != before+1 {
		t.Fatal("after Close a check did not ask the server")
	}
}

func TestSynchronizersOfOneClientShareOneStream(t *testing.T) {
	address := sharedServer(t)
	var streams int64
	client := dial(t, address, Options{DialOptions: []grpc.DialOption{
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			atomic.AddInt64(&streams, 1)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}})
	other := dial(t, address, Options{})
	ctx := within(t, 60)
	key := uniqueKey(t)
	// Made one after another, as a service does at start-up.
	var synchronizers []*Synchronizer
	for i := 0; i < 20; i++ {
		synchronizers = append(synchronizers, newSynchronizer(t, client, Key{key, fmt.Sprint(i)}, &SynchronizerOptions{Watch: true}))
	}
	eventually(t, "the shared stream to cover every key", func() bool {
		for _, s := range synchronizers {
			if !s.Live() {
				return false
			}
		}
		return true
	})
	// Keys that join within a few milliseconds share a restart: fewer streams than keys.
	if opened := atomic.LoadInt64(&streams); opened >= 20 {
		t.Fatalf("%d streams opened for 20 synchronizers", opened)
	}
	if err := other.Clear(ctx, synchronizers[0].CacheKey()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cleared key to read as expired", func() bool { return synchronizers[0].IsExpired(ctx) })
	if synchronizers[1].IsExpired(ctx) {
		t.Fatal("a key nobody touched is expired")
	}
	// One leaves: the others stay live once the stream restarted without it.
	synchronizers[0].Close()
	eventually(t, "the others to be live again", func() bool { return synchronizers[1].Live() && synchronizers[19].Live() })
}

func TestSynchronizersOfOneKeyAreToldOfEachOthersWrites(t *testing.T) {
	server := startServe(t, "127.0.0.1:0")
	client := dial(t, server.address, Options{})
	key := Key{uniqueKey(t)}
	writer := newSynchronizer(t, client, key, &SynchronizerOptions{Watch: true})
	reader := newSynchronizer(t, client, key, &SynchronizerOptions{Watch: true})
	toldWriter, toldReader := make(chan int64, 10), make(chan int64, 10)
	writer.OnExpired(func(generation int64) { toldWriter <- generation })
	reader.OnExpired(func(generation int64) { toldReader <- generation })
	eventually(t, "the shared stream to go live", func() bool { return writer.Live() && reader.Live() })
	ctx := within(t, 30)
	for i := 0; i < 5; i++ {
		writer.MarkUpdated(ctx)
		// However the Bump's reply and the stream's report are ordered, the other is told.
		if generation := receive(t, toldReader); generation != writer.SyncGen() {
			t.Fatalf("the reader was told %d; want %d", generation, writer.SyncGen())
		}
		reader.Refresh(ctx)
	}
	// Its own Clear expires the writer too, and both are told 0.
	writer.Clear(ctx)
	if receive(t, toldWriter) != 0 || receive(t, toldReader) != 0 {
		t.Fatal("a Clear was told as other than 0")
	}
	select {
	case generation := <-toldWriter:
		t.Fatalf("the writer was told of its own write (%d)", generation)
	default:
	}
	// Whether a call's reply comes before the stream's report or after is up to the network;
	// with the stream down there is no report at all, and what the writer learns from its
	// call (adopt, as after a Bump) still reaches the reader.
	server.stop()
	eventually(t, "the stream to be seen down", func() bool { return !reader.Live() })
	writer.adopt(writer.SyncGen() + 1)
	if generation := receive(t, toldReader); generation != writer.SyncGen() {
		t.Fatalf("the reader was told %d; want %d", generation, writer.SyncGen())
	}
}

func TestAChangeLearntDuringALoadIsToldEvenIfTheStreamWentDown(t *testing.T) {
	server := startServe(t, "127.0.0.1:0")
	client := dial(t, server.address, Options{})
	other := dial(t, server.address, Options{})
	s := newSynchronizer(t, client, Key{uniqueKey(t)}, &SynchronizerOptions{Watch: true, Logger: &recordingLogger{}})
	told := make(chan int64, 10)
	s.OnExpired(func(generation int64) { told <- generation })
	eventually(t, "the shared stream to go live", s.Live)
	ctx := within(t, 60)
	var bumped int64
	err := s.Load(ctx, func(ctx context.Context) error {
		// Changed elsewhere while this process loads: the stream reports it (held back until
		// the load ends), then the stream goes down before the load ends.
		var err error
		if bumped, err = other.Bump(ctx, s.CacheKey()); err != nil {
			return err
		}
		eventually(t, "the stream to report the bump", func() bool {
			generation, _ := s.watch.current(s.CacheKey())
			return generation == bumped
		})
		server.stop()
		eventually(t, "the stream to be seen down", func() bool { return !s.Live() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if generation := receive(t, told); generation != bumped {
		t.Fatalf("told %d after the load; want %d", generation, bumped)
	}
}

func TestWatchModeAcrossAServerGoingAwayAndComingBack(t *testing.T) {
	server := startServe(t, "127.0.0.1:0")
	address := server.address
	client := dial(t, address, Options{Backoff: Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}})
	logger := &recordingLogger{}
	s := newSynchronizer(t, client, Key{uniqueKey(t)}, &SynchronizerOptions{Watch: true, Logger: logger, LogInterval: -1, CheckTimeout: 300 * time.Millisecond})
	expired := make(chan int64, 10)
	s.OnExpired(func(generation int64) { expired <- generation })
	eventually(t, "the shared stream to go live", s.Live)
	ctx := within(t, 120)
	if s.IsExpired(ctx) {
		t.Fatal("expired right after creation")
	}

	server.stop()
	eventually(t, "the stream to be seen down", func() bool { return !s.Live() })
	if !s.IsExpired(ctx) {
		t.Fatal("not expired with nothing known and the server gone")
	}
	if lines := logger.logged(); len(lines) == 0 || !strings.Contains(lines[len(lines)-1], "checking generation") {
		t.Fatalf("the failed check was not logged: %q", lines)
	}

	// Back, from an empty memory store: the key is absent, so the watcher is told and expired.
	startServe(t, address)
	if generation := receive(t, expired); generation != 0 {
		t.Fatalf("told %d after the server came back empty; want 0", generation)
	}
	eventually(t, "the stream to be live again", s.Live)
	if !s.IsExpired(ctx) {
		t.Fatal("not expired after the server came back without the key")
	}
	s.Refresh(ctx)
	if s.IsExpired(ctx) {
		t.Fatal("expired after Refresh")
	}
	bumped, err := dial(t, address, Options{}).Bump(ctx, s.CacheKey())
	if err != nil {
		t.Fatal(err)
	}
	if generation := receive(t, expired); generation != bumped {
		t.Fatalf("told %d; want %d", generation, bumped)
	}
}

func TestWatchModeRefusedStreamFallsBackToCallsAndIsTriedAgain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.json")
	tokens := `{"tokens":[{"name":"reader","token":"go-reader-token-0123456789","read":["allowed/"]}]}`
	if err := os.WriteFile(file, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	server := startServe(t, "127.0.0.1:0", "--auth-file", file)
	client := dial(t, server.address, Options{Token: "go-reader-token-0123456789"})
	watchFailed := make(chan int64, 1)
	var failures []Action
	var mu sync.Mutex
	s := newSynchronizer(t, client, Key{"forbidden/key"}, &SynchronizerOptions{
		Watch:  true,
		Logger: &recordingLogger{},
		OnError: func(err error, action Action) {
			mu.Lock()
			failures = append(failures, action)
			mu.Unlock()
			if action == Watching && status.Code(err) == codes.PermissionDenied {
				select {
				case watchFailed <- 1:
				default: // told again at each retry
				}
			}
		},
	})
	receive(t, watchFailed)
	mu.Lock()
	got := fmt.Sprint(failures)
	mu.Unlock()
	if !strings.HasPrefix(got, "[refreshing watching") {
		t.Fatalf("failures while %s; want refreshing, then watching", got)
	}
	if s.Live() || !s.IsExpired(within(t, 30)) {
		t.Fatal("a refused stream is live, or a check of a forbidden key is current")
	}

	// The token is granted the key (the file rewritten, then SIGHUP): the stream is tried
	// again, and goes live.
	tokens = `{"tokens":[{"name":"reader","token":"go-reader-token-0123456789","read":[""]}]}`
	if err := os.WriteFile(file, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := server.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stream to be tried again and go live", s.Live)
}

// receive waits for a generation told on a channel; the test fails after 30 s.
func receive(t *testing.T, told <-chan int64) int64 {
	t.Helper()
	select {
	case generation := <-told:
		return generation
	case <-time.After(30 * time.Second):
		t.Fatal("nothing told within 30 s")
		return 0
	}
}
