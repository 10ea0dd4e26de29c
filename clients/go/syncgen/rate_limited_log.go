package syncgen

import (
	"sync"
	"time"
)

// rateLimitedLog logs at most one line per action per interval, for one synchronizer. When
// the service is down every check fails; djblets logs each time, and a fleet of Go services
// would flood its logs. Per action, so a failed check cannot hide a failed write.
type rateLimitedLog struct {
	logger   Logger
	interval time.Duration

	mu   sync.Mutex
	last map[Action]time.Time
}

func newRateLimitedLog(logger Logger, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{logger: logger, interval: interval, last: map[Action]time.Time{}}
}

// printf logs for action unless it logged within the interval.
func (l *rateLimitedLog) printf(action Action, format string, v ...interface{}) {
	now := time.Now()
	l.mu.Lock()
	last, logged := l.last[action]
	if logged && now.Sub(last) < l.interval {
		l.mu.Unlock()
		return
	}
	l.last[action] = now
	l.mu.Unlock()
	l.logger.Printf(format, v...)
}
