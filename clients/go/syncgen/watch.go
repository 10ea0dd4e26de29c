package syncgen

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	generationv1 "syncgen/clients/go/generation/v1"
)

// EventType says what a WatchEvent reports.
type EventType int

const (
	// Live: the stream is (again) live. Changes are the keys whose generation differs from
	// what this watch had reported (or from the known generations it started with): after a
	// reconnect, exactly what was missed.
	Live EventType = iota + 1
	// Changes: keys changed; generation 0 means absent or cleared.
	Changes
	// Heartbeat: nothing changed; the server is still there.
	Heartbeat
	// Down: the stream broke; it reconnects by itself after RetryIn. Until the next Live,
	// nothing is known.
	Down
)

// KeyGeneration is one key's latest generation; 0 means the key is absent.
type KeyGeneration struct {
	Key        string
	Generation int64
}

// WatchEvent is what a Watch reports, in order.
type WatchEvent struct {
	Type EventType
	// Changes, for Live and Changes events.
	Changes []KeyGeneration
	// Err is why the stream broke, for Down events.
	Err error
	// RetryIn is how long the watch waits before reconnecting, for Down events.
	RetryIn time.Duration
}

// WatchOptions change a Watch.
type WatchOptions struct {
	// Known are generations already held, by key: the first response then carries only what
	// differs.
	Known map[string]int64
	// NoResume ends the watch with the error after UNAVAILABLE or a dropped connection,
	// instead of reconnecting.
	NoResume bool
}

// Watch is a stream of changes to a set of keys. Level-triggered: after a slow stretch or a
// reconnect you get each key's latest value, not every value in between. Read it from one
// goroutine; Close may be called from any.
type Watch struct {
	client   *Client
	ctx      context.Context
	cancel   context.CancelFunc
	keys     []string
	noResume bool
	reported map[string]int64
	backoff  *backoffCounter

	stream       generationv1.GenerationService_WatchClient
	cancelStream context.CancelFunc
	live         bool
	partial      []KeyGeneration
	wait         time.Duration
}

// Watch watches keys until ctx ends, Close is called, or an error it cannot resume from
// (INVALID_ARGUMENT, PERMISSION_DENIED, ...). Read its events with Next.
func (c *Client) Watch(ctx context.Context, keys []string, options WatchOptions) *Watch {
	ctx, cancel := context.WithCancel(ctx)
	watch := &Watch{
		client:   c,
		ctx:      ctx,
		cancel:   cancel,
		keys:     append([]string(nil), keys...),
		noResume: options.NoResume,
		reported: make(map[string]int64, len(options.Known)),
		backoff:  newBackoffCounter(c.backoff),
	}
	for key, generation := range options.Known {
		watch.reported[key] = generation
	}
	c.mu.Lock()
	if c.closed {
		cancel()
	} else {
		c.watches[watch] = struct{}{}
	}
	c.mu.Unlock()
	// Forgotten by the client once it ends, however it ends (Close, ctx, the client closing).
	go func() {
		<-ctx.Done()
		c.mu.Lock()
		delete(c.watches, watch)
		c.mu.Unlock()
	}()
	return watch
}

// Next blocks until the next event. It returns an error, and no more events, when the watch
// ends: ErrClientClosed after the client closed, the context's error after ctx ended or
// Close, or a gRPC status error it cannot resume from (of any code when NoResume is set).
func (w *Watch) Next() (WatchEvent, error) {
	for {
		if err := w.ctx.Err(); err != nil {
			w.Close()
			if w.client.isClosed() {
				return WatchEvent{}, ErrClientClosed
			}
			return WatchEvent{}, err
		}
		if w.wait > 0 {
			sleep(w.ctx, w.wait)
			w.wait = 0
			continue
		}
		if w.stream == nil {
			if err := w.open(); err != nil {
				if event, ended, err := w.broke(err); !ended {
					return event, err
				}
				continue
			}
		}
		response, err := w.stream.Recv()
		if w.ctx.Err() != nil {
			continue // closed: a message grpc-go had buffered is not reported
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The server never ends a Watch with OK; treat it like a drop.
				err = status.Error(codes.Unavailable, "the server ended the watch")
			}
			if event, ended, err := w.broke(err); !ended {
				return event, err
			}
			continue
		}
		changes := make([]KeyGeneration, 0, len(response.GetChanges()))
		for _, change := range response.GetChanges() {
			changes = append(changes, KeyGeneration{Key: change.GetKey(), Generation: change.GetGeneration()})
		}
		if response.GetContinued() {
			w.partial = append(w.partial, changes...)
			continue
		}
		if len(w.partial) > 0 {
			changes = append(w.partial, changes...)
			w.partial = nil
		}
		// Known only once reported: a batch cut short by a drop is asked for again.
		for _, change := range changes {
			w.reported[change.Key] = change.Generation
		}
		switch {
		case !w.live:
			w.live = true
			w.backoff.reset()
			return WatchEvent{Type: Live, Changes: changes}, nil
		case len(changes) > 0:
			return WatchEvent{Type: Changes, Changes: changes}, nil
		default:
			return WatchEvent{Type: Heartbeat}, nil
		}
	}
}

// Close ends the watch; Next then returns the context's error.
func (w *Watch) Close() { w.cancel() }

// open starts a stream, sending what this watch already reported as known.
func (w *Watch) open() error {
	known := make(map[string]int64, len(w.keys))
	for _, key := range w.keys {
		if generation, ok := w.reported[key]; ok {
			known[key] = generation
		}
	}
	ctx, cancel := context.WithCancel(w.client.outgoing(w.ctx))
	stream, err := w.client.stub.Watch(ctx, &generationv1.WatchRequest{Keys: w.keys, Known: known})
	if err != nil {
		cancel()
		return err
	}
	w.stream, w.cancelStream = stream, cancel
	return nil
}

// broke handles a failed stream: a Down event (it reconnects after a wait), the error it
// cannot resume from, or ended when the watch's context ended (Next's loop says so).
func (w *Watch) broke(err error) (event WatchEvent, ended bool, failure error) {
	if w.cancelStream != nil {
		w.cancelStream()
	}
	w.stream, w.cancelStream, w.live, w.partial = nil, nil, false, nil
	if w.ctx.Err() != nil {
		return WatchEvent{}, true, nil
	}
	failure = explainUnreachable(err, w.client.target)
	if w.noResume || !IsRetryable(failure) {
		w.Close()
		return WatchEvent{}, false, failure
	}
	w.wait = w.backoff.next()
	return WatchEvent{Type: Down, Err: failure, RetryIn: w.wait}, false, nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
