package syncgen

import (
	"context"
	"errors"
	"sync"
	"time"
)

// keyListener is one synchronizer following a key through the shared watch.
type keyListener struct {
	// changed is told the key's new generation (0: absent).
	changed func(generation int64)
	// failed is told why the stream was refused (PERMISSION_DENIED, say).
	failed func(err error)
}

type watchedKey struct {
	// generation is the latest known; meaningful when known is set.
	generation int64
	known      bool
	listeners  map[*keyListener]struct{}
}

// streamRun is one Watch stream of a fixed key set.
type streamRun struct {
	keys   map[string]struct{}
	cancel context.CancelFunc
	live   bool
}

// note is one call of a listener, queued for the delivering goroutine.
type note struct {
	listener   *keyListener
	generation int64
	failure    error
}

// sharedWatch is the one Watch stream of a Client, shared by all its synchronizers in watch
// mode. A key that joins or leaves restarts the stream with the new key set and with what is
// already held as known (so the server answers only what differs); the old stream keeps
// serving until the new one is live ("make before break").
//
// Listeners are called one at a time, in the order the changes were recorded, by one
// delivering goroutine, never with a lock held: the last generation a listener is told is
// the latest known.
type sharedWatch struct {
	client *Client

	mu             sync.Mutex
	keys           map[string]*watchedKey
	active         *streamRun // the stream whose reports are current
	next           *streamRun // a stream started for a new key set, not yet live
	restartPending bool
	closed         bool
	// refused paces restarts after the server refused a stream (a token rotated, say).
	refused *backoffCounter

	pending    []note
	delivering bool
}

// sharedWatch is the client's shared watch, made on first use.
func (c *Client) sharedWatch() *sharedWatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shared == nil {
		c.shared = &sharedWatch{
			client:  c,
			keys:    map[string]*watchedKey{},
			closed:  c.closed,
			refused: newBackoffCounter(Backoff{Initial: time.Second, Max: time.Minute}),
		}
	}
	return c.shared
}

// join follows key for listener; generation, when not 0, is what the caller just read, sent
// as the stream's known value so the server's first answer cannot be older. It returns the
// function that stops following.
func (w *sharedWatch) join(key string, generation int64, listener *keyListener) (leave func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	entry := w.keys[key]
	if entry == nil {
		entry = &watchedKey{listeners: map[*keyListener]struct{}{}}
		w.keys[key] = entry
		w.scheduleRestart(restartDelay)
	}
	if generation != 0 {
		w.record(entry, generation)
	}
	entry.listeners[listener] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(entry.listeners, listener)
			if len(entry.listeners) == 0 && w.keys[key] == entry {
				delete(w.keys, key)
				w.scheduleRestart(restartDelay)
			}
		})
	}
}

// current is the key's generation as the live stream reports it; ok is false when no live
// stream covers the key (then only a call to the server can tell).
func (w *sharedWatch) current(key string) (generation int64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active == nil || !w.active.live {
		return 0, false
	}
	if _, covered := w.active.keys[key]; !covered {
		return 0, false
	}
	entry := w.keys[key]
	if entry == nil || !entry.known {
		return 0, false
	}
	return entry.generation, true
}

// observe records a generation the caller just got from the server (Get, Bump, Clear), which
// may be newer than what the stream has reported so far; the key's other listeners are told.
func (w *sharedWatch) observe(key string, generation int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if entry := w.keys[key]; entry != nil {
		w.record(entry, generation)
	}
}

// tellLatest tells listener the latest generation known for key, live stream or not.
func (w *sharedWatch) tellLatest(key string, listener *keyListener) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if entry := w.keys[key]; entry != nil && entry.known {
		w.enqueue(note{listener: listener, generation: entry.generation})
	}
}

// close ends every stream; nothing is followed any more.
func (w *sharedWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.keys = map[string]*watchedKey{}
	w.pending = nil
	for _, run := range []*streamRun{w.active, w.next} {
		if run != nil {
			run.cancel()
		}
	}
	w.active, w.next = nil, nil
}

// restartDelay gathers the keys that join or leave within it into one restart of the stream:
// a service making its synchronizers one after another at start-up opens a few streams, not
// one per key. Until the restart, a new key is checked by calls.
const restartDelay = 20 * time.Millisecond

// scheduleRestart restarts the stream after delay (with w.mu held).
func (w *sharedWatch) scheduleRestart(delay time.Duration) {
	if w.restartPending || w.closed {
		return
	}
	w.restartPending = true
	time.AfterFunc(delay, w.restart)
}

func (w *sharedWatch) restart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restartPending = false
	if w.closed {
		return
	}
	if w.next != nil {
		w.next.cancel()
		w.next = nil
	}
	if len(w.keys) == 0 {
		if w.active != nil {
			w.active.cancel()
			w.active = nil
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &streamRun{keys: make(map[string]struct{}, len(w.keys)), cancel: cancel}
	keys := make([]string, 0, len(w.keys))
	known := map[string]int64{}
	for key, entry := range w.keys {
		run.keys[key] = struct{}{}
		keys = append(keys, key)
		if entry.known {
			known[key] = entry.generation
		}
	}
	w.next = run
	go w.consume(ctx, run, w.client.Watch(ctx, keys, WatchOptions{Known: known}))
}

// consume applies one stream's events until it ends.
func (w *sharedWatch) consume(ctx context.Context, run *streamRun, watch *Watch) {
	defer watch.Close()
	for {
		event, err := watch.Next()
		w.mu.Lock()
		if err != nil {
			run.live = false
			if ctx.Err() == nil && !errors.Is(err, ErrClientClosed) {
				w.refusedRun(run, err)
			}
			w.mu.Unlock()
			return
		}
		switch event.Type {
		case Live:
			run.live = true
			w.refused.reset()
			if w.next == run {
				if w.active != nil {
					w.active.cancel()
				}
				w.active, w.next = run, nil
			}
		case Down:
			run.live = false
		}
		if w.active == run {
			for _, change := range event.Changes {
				if entry := w.keys[change.Key]; entry != nil {
					w.record(entry, change.Generation)
				}
			}
		}
		w.mu.Unlock()
	}
}

// refusedRun handles a stream the server refused for good (with w.mu held): checks fall back
// to calls, whoever follows its keys is told, and the stream is tried again later, slowly,
// in case what refused it changes (a token's access, a server setting).
func (w *sharedWatch) refusedRun(run *streamRun, err error) {
	for key := range run.keys {
		if entry := w.keys[key]; entry != nil {
			for listener := range entry.listeners {
				w.enqueue(note{listener: listener, failure: err})
			}
		}
	}
	if w.active == run || w.next == run {
		delay := w.refused.next()
		if delay < w.refused.settings.Initial {
			delay = w.refused.settings.Initial
		}
		w.scheduleRestart(delay)
	}
}

// record keeps generation unless what is held is as new or newer (with w.mu held), and then
// queues it for the key's listeners. A key's live generations only grow; 0 (absent)
// supersedes any, as a Clear does. A report older than what a Get or Bump just answered is
// the stream catching up.
func (w *sharedWatch) record(entry *watchedKey, generation int64) {
	if entry.known && (generation == entry.generation || (entry.generation != 0 && generation != 0 && generation < entry.generation)) {
		return
	}
	entry.generation, entry.known = generation, true
	for listener := range entry.listeners {
		w.enqueue(note{listener: listener, generation: generation})
	}
}

// enqueue queues a call of a listener (with w.mu held) and makes sure a goroutine delivers it.
func (w *sharedWatch) enqueue(n note) {
	w.pending = append(w.pending, n)
	if !w.delivering {
		w.delivering = true
		go w.deliver()
	}
}

// deliver calls queued listeners in order until the queue is empty.
func (w *sharedWatch) deliver() {
	for {
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		if len(batch) == 0 {
			w.delivering = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		for _, n := range batch {
			if n.failure != nil {
				n.listener.failed(n.failure)
			} else {
				n.listener.changed(n.generation)
			}
		}
	}
}
