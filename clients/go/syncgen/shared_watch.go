package syncgen

import (
	"context"
	"sync"
	"time"
)

// keyListener is one synchronizer following a key through the shared watch.
type keyListener struct {
	// changed is told the key's new generation (0: absent).
	changed func(generation int64)
	// failed is told why the stream ended for good (PERMISSION_DENIED, say).
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

// sharedWatch is the one Watch stream of a Client, shared by all its synchronizers in watch
// mode. A key that joins or leaves restarts the stream with the new key set and with what is
// already held as known (so the server answers only what differs); the old stream keeps
// serving until the new one is live ("make before break").
type sharedWatch struct {
	client *Client

	mu             sync.Mutex
	keys           map[string]*watchedKey
	active         *streamRun // the stream whose reports are current
	next           *streamRun // a stream started for a new key set, not yet live
	restartPending bool
	closed         bool
}

// sharedWatch is the client's shared watch, made on first use.
func (c *Client) sharedWatch() *sharedWatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shared == nil {
		c.shared = &sharedWatch{client: c, keys: map[string]*watchedKey{}, closed: c.closed}
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
		w.scheduleRestart()
	}
	if generation != 0 {
		entry.record(generation)
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
				w.scheduleRestart()
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

// observe records a generation the caller just got from the server (Get, Bump), which may be
// newer than what the stream has reported so far.
func (w *sharedWatch) observe(key string, generation int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if entry := w.keys[key]; entry != nil {
		entry.record(generation)
	}
}

// close ends every stream; nothing is followed any more.
func (w *sharedWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.keys = map[string]*watchedKey{}
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

// scheduleRestart restarts the stream soon (with w.mu held).
func (w *sharedWatch) scheduleRestart() {
	if w.restartPending || w.closed {
		return
	}
	w.restartPending = true
	time.AfterFunc(restartDelay, w.restart)
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
		if err != nil {
			w.mu.Lock()
			run.live = false
			var told []*keyListener
			if ctx.Err() == nil {
				// Not resumable (e.g. PERMISSION_DENIED): checks fall back to calls, and whoever
				// follows the keys of this stream is told.
				for key := range run.keys {
					if entry := w.keys[key]; entry != nil {
						for listener := range entry.listeners {
							told = append(told, listener)
						}
					}
				}
			}
			w.mu.Unlock()
			for _, listener := range told {
				listener.failed(err)
			}
			return
		}
		w.mu.Lock()
		switch event.Type {
		case Live:
			run.live = true
			if w.next == run {
				if w.active != nil {
					w.active.cancel()
				}
				w.active, w.next = run, nil
			}
		case Down:
			run.live = false
		}
		notes := w.apply(run, event.Changes)
		w.mu.Unlock()
		for _, note := range notes {
			note.listener.changed(note.generation)
		}
	}
}

type changeNote struct {
	listener   *keyListener
	generation int64
}

// apply records a stream's changes (with w.mu held) and returns whom to tell.
func (w *sharedWatch) apply(run *streamRun, changes []KeyGeneration) []changeNote {
	if w.active != run {
		return nil
	}
	var notes []changeNote
	for _, change := range changes {
		entry := w.keys[change.Key]
		if entry == nil || !entry.record(change.Generation) {
			continue
		}
		for listener := range entry.listeners {
			notes = append(notes, changeNote{listener, change.Generation})
		}
	}
	return notes
}

// record keeps generation unless what is held is as new or newer, and says whether it did.
// A key's live generations only grow; 0 (absent) supersedes any, as a Clear does. A report
// older than what a Get or Bump just answered is the stream catching up.
func (k *watchedKey) record(generation int64) bool {
	if k.known && (generation == k.generation || (k.generation != 0 && generation != 0 && generation < k.generation)) {
		return false
	}
	k.generation, k.known = generation, true
	return true
}
