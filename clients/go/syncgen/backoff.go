package syncgen

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"math/rand"
	"sync"
	"time"
)

// jitter is seeded per process: before Go 1.20 math/rand's global source starts from the same
// seed everywhere, and a crowd of clients would wait the same "random" times.
var jitter = struct {
	sync.Mutex
	*rand.Rand
}{Rand: rand.New(rand.NewSource(processSeed()))}

func processSeed() int64 {
	var seed [8]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return time.Now().UnixNano()
	}
	return int64(binary.LittleEndian.Uint64(seed[:]))
}

// Backoff sets the waits between retries of Get, Peek and Clear and between reconnects of a
// Watch: exponential with full jitter, the n-th wait uniform in [0, min(Max, Initial·2^n)].
// Full jitter spreads a crowd of clients that lost the same server, so they do not all come
// back at the same instant. The connection's own reconnects start at Initial and grow to Max.
type Backoff struct {
	// Initial is the cap of the first wait (default 100 ms).
	Initial time.Duration
	// Max is the largest cap (default 5 s).
	Max time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 5 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	return b
}

// backoffCounter counts attempts and says how long to wait before the next.
type backoffCounter struct {
	settings Backoff
	attempt  uint
}

func newBackoffCounter(settings Backoff) *backoffCounter {
	return &backoffCounter{settings: settings.withDefaults()}
}

// next is the wait before the next attempt; each call raises the cap.
func (b *backoffCounter) next() time.Duration {
	limit := b.settings.Max
	if b.attempt < 30 {
		if scaled := b.settings.Initial << b.attempt; scaled > 0 && scaled < limit {
			limit = scaled
		}
		b.attempt++
	}
	jitter.Lock()
	defer jitter.Unlock()
	return time.Duration(jitter.Int63n(int64(limit) + 1))
}

// reset starts again from the smallest wait, after a success.
func (b *backoffCounter) reset() { b.attempt = 0 }

// sleep waits d, or less when ctx ends; it reports whether the whole wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
