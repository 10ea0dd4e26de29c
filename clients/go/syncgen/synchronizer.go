package syncgen

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// Action is what a synchronizer was doing when it swallowed a service error.
type Action string

// The actions of a Synchronizer.
const (
	Checking         Action = "checking"
	Refreshing       Action = "refreshing"
	Clearing         Action = "clearing"
	MarkingAsUpdated Action = "marking as updated"
	Loading          Action = "loading"
	Watching         Action = "watching"
)

// Logger is where a synchronizer reports the errors it swallows; *log.Logger fits.
type Logger interface {
	Printf(format string, v ...interface{})
}

// SynchronizerOptions change a Synchronizer. The zero value (or nil) is djblets' default:
// the key passed through MakeCacheKey, no prefix, polling.
type SynchronizerOptions struct {
	// RawKey uses the key's one part as is, without MakeCacheKey (djblets'
	// normalize_cache_key=False).
	RawKey bool
	// CacheKey are MakeCacheKey's options: a prefix (djblets' site domain) and HMAC mode.
	CacheKey CacheKeyOptions
	// Watch keeps the synchronizer current from the client's shared Watch stream: while it is
	// live, IsExpired makes no call, and OnExpired tells of a change within milliseconds.
	Watch bool
	// Logger receives swallowed errors (default log.Default()).
	Logger Logger
	// LogInterval: at most one log line per action per interval (default 1 minute; negative:
	// every error). When the service is down every check fails.
	LogInterval time.Duration
	// OnError is called with every service error the synchronizer swallows (each one, unlike
	// the log) and what it was doing: for metrics, or to act on a failed MarkUpdated.
	OnError func(err error, action Action)
	// CheckTimeout is the deadline of the single call a check makes when it must ask the
	// server (default 500 ms), so a check never blocks its caller for long.
	CheckTimeout time.Duration
}

// Synchronizer is djblets' GenerationSynchronizer on syncgen: it remembers the generation
// of a cache key a process loaded its state at (SyncGen) and answers whether that is still
// current. It is safe for concurrent use.
//
// Behaviour matches djblets case for case: creating fetches or creates the generation;
// IsExpired reads without creating and is true when the shared value differs or is absent;
// Refresh adopts; Clear deletes without touching SyncGen; MarkUpdated bumps and adopts.
// Service errors are logged, passed to OnError and never returned; IsExpired then answers
// true, fail-safe. Update is the exception: when its bump fails after the write, readers were
// not told, and the caller must know.
type Synchronizer struct {
	client       *Client
	cacheKey     string
	log          *rateLimitedLog
	onError      func(error, Action)
	checkTimeout time.Duration
	watch        *sharedWatch

	mu       sync.Mutex
	syncGen  int64
	listener *keyListener
	leave    func()
	closed   bool
	expired  map[*expiredListener]struct{}
	// adopting counts this synchronizer's calls in flight whose answer it will adopt;
	// heldBack marks a change the stream told meanwhile, checked once they end. (The stream
	// may report a Bump, or the creation by a Get, before the call's reply arrives: told then,
	// the synchronizer would hear of its own write.)
	adopting int
	heldBack bool
}

type expiredListener struct{ call func(generation int64) }

// NewSynchronizer makes a synchronizer of key and fetches (or creates) its current
// generation. A service error is logged and leaves SyncGen at 0 (none known); the error
// returned is only for arguments: an empty key, or RawKey with other than one part.
func NewSynchronizer(ctx context.Context, client *Client, key Key, options *SynchronizerOptions) (*Synchronizer, error) {
	if options == nil {
		options = &SynchronizerOptions{}
	}
	var cacheKey string
	switch {
	case len(key) == 0:
		return nil, errors.New("syncgen: the key has no parts")
	case !options.RawKey:
		cacheKey = MakeCacheKey(key, options.CacheKey)
	case len(key) == 1:
		cacheKey = key[0]
	default:
		return nil, fmt.Errorf("syncgen: a raw key must have one part, not %d", len(key))
	}
	logger := options.Logger
	if logger == nil {
		logger = log.Default()
	}
	interval := options.LogInterval
	if interval == 0 {
		interval = time.Minute
	}
	checkTimeout := options.CheckTimeout
	if checkTimeout <= 0 {
		checkTimeout = 500 * time.Millisecond
	}
	s := &Synchronizer{
		client:       client,
		cacheKey:     cacheKey,
		log:          newRateLimitedLog(logger, interval),
		onError:      options.OnError,
		checkTimeout: checkTimeout,
		expired:      map[*expiredListener]struct{}{},
	}
	s.Refresh(ctx)
	if options.Watch {
		s.watch = client.sharedWatch()
		s.listener = &keyListener{changed: s.tell, failed: func(err error) { s.warn(Watching, err) }}
		// Joined with what was just read, so the stream's first answer cannot be older.
		s.leave = s.watch.join(cacheKey, s.SyncGen(), s.listener)
	}
	return s, nil
}

// CacheKey is the final cache key (after MakeCacheKey).
func (s *Synchronizer) CacheKey() string { return s.cacheKey }

// SyncGen is the generation this synchronizer last fetched or set; 0 when none could be read.
func (s *Synchronizer) SyncGen() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncGen
}

// Live reports, in watch mode, whether the shared stream is live and covers this key, so
// IsExpired answers from memory. False when polling.
func (s *Synchronizer) Live() bool {
	if s.watch == nil {
		return false
	}
	_, ok := s.watch.current(s.cacheKey)
	return ok
}

// IsExpired reports whether the shared generation differs from SyncGen (or is absent). It
// never creates the key. In watch mode with a live stream it makes no call; on a service
// error it answers true.
func (s *Synchronizer) IsExpired(ctx context.Context) bool {
	if s.watch != nil {
		if generation, ok := s.watch.current(s.cacheKey); ok {
			return s.differs(generation)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.checkTimeout)
	defer cancel()
	generation, err := s.client.Peek(ctx, s.cacheKey, NoRetry())
	if err != nil {
		s.warn(Checking, err)
		return true
	}
	return s.differs(generation)
}

// Refresh adopts the shared generation, creating one if the key is absent.
func (s *Synchronizer) Refresh(ctx context.Context) {
	s.hold()
	defer s.release()
	generation, err := s.client.Get(ctx, s.cacheKey, NoRetry())
	if err != nil {
		s.warn(Refreshing, err)
		return
	}
	s.adopt(generation)
}

// Clear deletes the shared generation: everyone, this synchronizer included, now reads as
// expired. SyncGen is left as it was.
func (s *Synchronizer) Clear(ctx context.Context) {
	if err := s.client.Clear(ctx, s.cacheKey, NoRetry()); err != nil {
		s.warn(Clearing, err)
		return
	}
	// This synchronizer reads as expired at once, not only when its stream reports the clear.
	if s.watch != nil {
		s.watch.observe(s.cacheKey, 0)
	}
}

// MarkUpdated bumps the shared generation and adopts the result, so this writer stays current.
func (s *Synchronizer) MarkUpdated(ctx context.Context) {
	s.hold()
	defer s.release()
	generation, err := s.client.Bump(ctx, s.cacheKey)
	if err != nil {
		s.warn(MarkingAsUpdated, err)
		return
	}
	s.adopt(generation)
}

// Update writes, then bumps: write changes the shared state, and only afterwards do others
// learn it changed. (Bumping first would let a reader reload the old state and think it
// current.) It returns write's error, or the bump's: then the state was written but no reader
// was told, and the caller must retry MarkUpdated or otherwise act. The bump's error keeps
// its gRPC code.
func (s *Synchronizer) Update(ctx context.Context, write func(context.Context) error) error {
	if err := write(ctx); err != nil {
		return err
	}
	s.hold()
	defer s.release()
	generation, err := s.client.Bump(ctx, s.cacheKey)
	if err != nil {
		failure := status.Convert(err)
		return status.Errorf(failure.Code(), "the data was written, but bumping the generation of cache key %q failed, so readers were not told: %s", s.cacheKey, failure.Message())
	}
	s.adopt(generation)
	return nil
}

// Load notes the generation, then loads: read loads the shared state, and the generation it
// is recorded at was read before it. (Reading it after would let a change made during the
// load go unnoticed; this way such a change only causes one extra reload.) It returns read's
// error; a service error is logged and leaves SyncGen at 0, so the next check reloads.
func (s *Synchronizer) Load(ctx context.Context, read func(context.Context) error) error {
	s.hold()
	defer s.release()
	generation, err := s.client.Get(ctx, s.cacheKey, NoRetry())
	if err != nil {
		s.warn(Loading, err)
	}
	if err := read(ctx); err != nil {
		return err
	}
	if err != nil {
		s.mu.Lock()
		s.syncGen = 0
		s.mu.Unlock()
		return nil
	}
	s.adopt(generation)
	return nil
}

// OnExpired calls listener, in watch mode, whenever the shared generation moves away from
// SyncGen (a Clear, this synchronizer's own included, tells 0); it returns the function that
// stops it. Listeners of a client's synchronizers run on one goroutine, one at a time, in
// the order the changes were learnt: they should return quickly. Once Close has returned,
// no new call starts. Without watch mode it does nothing.
func (s *Synchronizer) OnExpired(listener func(generation int64)) (stop func()) {
	entry := &expiredListener{call: listener}
	s.mu.Lock()
	s.expired[entry] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.expired, entry)
		s.mu.Unlock()
	}
}

// Close stops watching (watch mode); the synchronizer then checks by calls.
func (s *Synchronizer) Close() {
	s.mu.Lock()
	leave := s.leave
	s.leave = nil
	s.closed = true
	s.expired = map[*expiredListener]struct{}{}
	s.mu.Unlock()
	if leave != nil {
		leave()
	}
}

// differs: a generation of 0 (absent) or other than SyncGen means expired.
func (s *Synchronizer) differs(generation int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return generation == 0 || generation != s.syncGen
}

func (s *Synchronizer) adopt(generation int64) {
	s.mu.Lock()
	s.syncGen = generation
	s.mu.Unlock()
	if s.watch != nil {
		s.watch.observe(s.cacheKey, generation)
	}
}

// hold starts a call whose answer the synchronizer will adopt: until release, what the
// stream tells is held back.
func (s *Synchronizer) hold() {
	s.mu.Lock()
	s.adopting++
	s.mu.Unlock()
}

// release ends what hold started. A change the stream told meanwhile reaches listeners now,
// if the shared value still differs from what was adopted.
func (s *Synchronizer) release() {
	s.mu.Lock()
	s.adopting--
	missed := s.adopting == 0 && s.heldBack
	if s.adopting == 0 {
		s.heldBack = false
	}
	s.mu.Unlock()
	if missed {
		s.watch.tellLatest(s.cacheKey, s.listener)
	}
}

// tell is the shared watch telling of the key's new generation: listeners hear of it when it
// differs from SyncGen.
func (s *Synchronizer) tell(generation int64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.adopting > 0 {
		s.heldBack = true
		s.mu.Unlock()
		return
	}
	if generation == s.syncGen && generation != 0 {
		s.mu.Unlock()
		return
	}
	listeners := make([]*expiredListener, 0, len(s.expired))
	for listener := range s.expired {
		listeners = append(listeners, listener)
	}
	s.mu.Unlock()
	for _, listener := range listeners {
		listener.call(generation)
	}
}

func (s *Synchronizer) warn(action Action, err error) {
	s.log.printf(action, "syncgen: %s generation of cache key %q failed: %v", action, s.cacheKey, err)
	if s.onError != nil {
		s.onError(err, action)
	}
}
