package syncgen

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	generationv1 "syncgen/clients/go/generation/v1"
)

func TestGetPeekBumpClear(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	ctx := within(t, 30)
	key := uniqueKey(t)

	if generation, err := client.Peek(ctx, key); err != nil || generation != 0 {
		t.Fatalf("Peek of an absent key = %d, %v; want 0, nil", generation, err)
	}
	created, err := client.Get(ctx, key)
	if err != nil || created <= 0 {
		t.Fatalf("Get = %d, %v; want a generation", created, err)
	}
	if again, err := client.Get(ctx, key); err != nil || again != created {
		t.Fatalf("second Get = %d, %v; want %d", again, err, created)
	}
	// djblets' scheme: while the key exists, a Bump is exactly +1.
	bumped, err := client.Bump(ctx, key)
	if err != nil || bumped != created+1 {
		t.Fatalf("Bump = %d, %v; want %d", bumped, err, created+1)
	}
	if err := client.Clear(ctx, key); err != nil {
		t.Fatal(err)
	}
	if generation, err := client.Peek(ctx, key); err != nil || generation != 0 {
		t.Fatalf("Peek after Clear = %d, %v; want 0, nil", generation, err)
	}
	// Re-created after a Clear: never a generation handed out before.
	if recreated, err := client.Bump(ctx, key); err != nil || recreated <= bumped {
		t.Fatalf("Bump after Clear = %d, %v; want more than %d", recreated, err, bumped)
	}
}

func TestBadInputIsInvalidArgumentAndNotRetried(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	_, err := client.Get(within(t, 30), "")
	if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != "key must not be empty" {
		t.Fatalf("Get(\"\") = %v; want INVALID_ARGUMENT \"key must not be empty\"", err)
	}
	if IsRetryable(err) {
		t.Fatal("INVALID_ARGUMENT is retryable")
	}
}

func TestUnreachableServerSaysSoWithinTheDeadline(t *testing.T) {
	process := startServe(t, "127.0.0.1:0")
	process.stop()
	client := dial(t, process.address, Options{Timeout: 2 * time.Second})
	started := time.Now()
	_, err := client.Get(context.Background(), "k")
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Get from a stopped server = %v; want UNAVAILABLE or DEADLINE_EXCEEDED", err)
	}
	if elapsed := time.Since(started); elapsed > 20*time.Second {
		t.Fatalf("Get took %v past its 2 s deadline", elapsed)
	}
	_, err = client.Bump(context.Background(), "k")
	want := "cannot reach " + process.address + ": connection refused; is `syncgen serve` running there?"
	if status.Code(err) != codes.Unavailable || status.Convert(err).Message() != want {
		t.Fatalf("Bump from a stopped server = %v; want UNAVAILABLE %q", err, want)
	}
}

func TestRetriesGetUntilTheServerIsBack(t *testing.T) {
	stopped := startServe(t, "127.0.0.1:0")
	address := stopped.address
	stopped.stop()
	client := dial(t, address, Options{Backoff: Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}})
	ctx := within(t, 60)
	result := make(chan error, 1)
	go func() {
		_, err := client.Get(ctx, "retried")
		result <- err
	}()
	// The Get fails and retries while nothing listens; it succeeds once the server is back.
	eventually(t, "the client to see the server down", func() bool {
		return client.ConnectionState().String() == "TRANSIENT_FAILURE"
	})
	startServe(t, address)
	if err := <-result; err != nil {
		t.Fatalf("Get across the outage = %v; want success", err)
	}
}

func TestWatchReportsChangesAndResumesAfterTheServerComesBack(t *testing.T) {
	server := startServe(t, "127.0.0.1:0")
	address := server.address
	client := dial(t, address, Options{Backoff: Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}})
	writer := dial(t, address, Options{})
	ctx := within(t, 120)
	key := uniqueKey(t)
	created, err := writer.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	watch := client.Watch(ctx, []string{key, "absent"}, WatchOptions{Known: map[string]int64{key: created}})
	defer watch.Close()

	// Live, with only what differs from known: the absent key.
	expect(t, watch, Live, []KeyGeneration{{"absent", 0}})
	bumped, err := writer.Bump(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, watch, Changes, []KeyGeneration{{key, bumped}})

	// The server goes away: Down (UNAVAILABLE), then back, from an empty store: Live with
	// what was missed, the key now absent.
	server.stop()
	event := nextEvent(t, watch, Heartbeat)
	if event.Type != Down || status.Code(event.Err) != codes.Unavailable {
		t.Fatalf("after the server stopped: %+v; want Down with UNAVAILABLE", event)
	}
	startServe(t, address)
	event = nextEvent(t, watch, Heartbeat, Down)
	if event.Type != Live || len(event.Changes) != 1 || event.Changes[0] != (KeyGeneration{key, 0}) {
		t.Fatalf("after the server came back: %+v; want Live with %s absent", event, key)
	}

	// Close ends it: Next returns the context's error.
	watch.Close()
	if _, err := watch.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after Close = %v; want context.Canceled", err)
	}
}

// splitThenDrop is a Watch server that sends the first part of a split batch, then fails
// with UNAVAILABLE, as a replica shutting down mid-batch does; later Watches are answered
// like syncgen answers them, from what they say they know.
type splitThenDrop struct {
	generationv1.UnimplementedGenerationServiceServer
	mu     sync.Mutex
	knowns []map[string]int64
}

func (s *splitThenDrop) Watch(request *generationv1.WatchRequest, stream generationv1.GenerationService_WatchServer) error {
	s.mu.Lock()
	s.knowns = append(s.knowns, request.GetKnown())
	first := len(s.knowns) == 1
	s.mu.Unlock()
	current := map[string]int64{"a": 5, "b": 7}
	if first {
		part := &generationv1.WatchResponse{Changes: []*generationv1.KeyGeneration{{Key: "a", Generation: 5}}, Continued: true}
		if err := stream.Send(part); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "replica shutting down")
	}
	var changes []*generationv1.KeyGeneration
	for _, key := range request.GetKeys() {
		if known, ok := request.GetKnown()[key]; !ok || known != current[key] {
			changes = append(changes, &generationv1.KeyGeneration{Key: key, Generation: current[key]})
		}
	}
	if err := stream.Send(&generationv1.WatchResponse{Changes: changes}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func TestWatchAsksAgainForABatchCutShortByADrop(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	script := &splitThenDrop{}
	generationv1.RegisterGenerationServiceServer(server, script)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)

	client := dial(t, listener.Addr().String(), Options{Backoff: Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}})
	watch := client.Watch(within(t, 30), []string{"a", "b"}, WatchOptions{})
	defer watch.Close()
	if event := nextEvent(t, watch, Heartbeat); event.Type != Down {
		t.Fatalf("first event %+v; want Down", event)
	}
	// The part received before the drop was never reported, so it is not sent as known.
	expect(t, watch, Live, []KeyGeneration{{"a", 5}, {"b", 7}})
	script.mu.Lock()
	defer script.mu.Unlock()
	if len(script.knowns[1]) != 0 {
		t.Fatalf("the resumed Watch said it knew %v", script.knowns[1])
	}
}

func TestAWatchWhoseContextEndedIsForgotten(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		client.Watch(ctx, []string{"k"}, WatchOptions{})
		cancel() // and never read again
	}
	eventually(t, "the client to forget its ended watches", func() bool {
		client.mu.Lock()
		defer client.mu.Unlock()
		return len(client.watches) == 0
	})
}

func TestWatchEndsWithWhatItCannotResumeFrom(t *testing.T) {
	client := dial(t, sharedServer(t), Options{})
	watch := client.Watch(within(t, 30), []string{""}, WatchOptions{})
	defer watch.Close()
	if _, err := watch.Next(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Watch of an empty key = %v; want INVALID_ARGUMENT", err)
	}
}

func TestClosingTheClientEndsItsWatches(t *testing.T) {
	client, err := Dial(sharedServer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := uniqueKey(t)
	watch := client.Watch(context.Background(), []string{key}, WatchOptions{})
	expect(t, watch, Live, []KeyGeneration{{key, 0}})
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Next(); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Next after the client closed = %v; want %v", err, ErrClientClosed)
	}
}

func TestTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.json")
	tokens := `{"tokens":[{"name":"go","token":"go-client-token-0123456789","read":["go/"],"write":["go/"]}]}`
	if err := os.WriteFile(file, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	address := startServe(t, "127.0.0.1:0", "--auth-file", file).address
	ctx := within(t, 30)

	if _, err := dial(t, address, Options{}).Get(ctx, "go/key"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Get without a token = %v; want UNAUTHENTICATED", err)
	}
	client := dial(t, address, Options{Token: "go-client-token-0123456789"})
	bumped, err := client.Bump(ctx, "go/key")
	if err != nil {
		t.Fatalf("Bump with the token = %v", err)
	}
	_, err = client.Get(ctx, "elsewhere")
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), `"go"`) {
		t.Fatalf("Get outside the token's prefixes = %v; want PERMISSION_DENIED naming the token", err)
	}
	// The Watch carries the token too.
	watch := client.Watch(ctx, []string{"go/key"}, WatchOptions{})
	defer watch.Close()
	expect(t, watch, Live, []KeyGeneration{{"go/key", bumped}})
}

// nextEvent is the watch's next event of a type other than those skipped.
func nextEvent(t *testing.T, watch *Watch, skip ...EventType) WatchEvent {
	t.Helper()
	for {
		event, err := watch.Next()
		if err != nil {
			t.Fatalf("watch ended: %v", err)
		}
		skipped := false
		for _, kind := range skip {
			skipped = skipped || event.Type == kind
		}
		if !skipped {
			return event
		}
	}
}

// expect checks the watch's next event other than a heartbeat.
func expect(t *testing.T, watch *Watch, kind EventType, changes []KeyGeneration) {
	t.Helper()
	event := nextEvent(t, watch, Heartbeat)
	if event.Type != kind || len(event.Changes) != len(changes) {
		t.Fatalf("event %+v; want type %d with %v", event, kind, changes)
	}
	for i, change := range changes {
		if event.Changes[i] != change {
			t.Fatalf("event %+v; want %v", event, changes)
		}
	}
}
