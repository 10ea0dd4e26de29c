package syncgen

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	generationv1 "syncgen/clients/go/generation/v1"
)

// Options say how a Client connects and behaves. The zero value is a plaintext client with
// the defaults below.
type Options struct {
	// TLS connects with TLS (mutual TLS when it holds a client certificate); plaintext when nil.
	TLS *tls.Config
	// Token is sent as `authorization: Bearer <token>` with every call, when not empty.
	Token string
	// Timeout is the deadline of each Get, Peek, Bump and Clear, retries included, when the
	// call's context has none (default 5 s).
	Timeout time.Duration
	// Backoff sets the waits between retries and between reconnects (default 100 ms up to 5 s).
	Backoff Backoff
	// DialOptions are passed to grpc.Dial after the client's own, so they win.
	DialOptions []grpc.DialOption
}

// CallOption changes one call.
type CallOption func(*callSettings)

type callSettings struct {
	noRetry bool
}

// NoRetry makes Get, Peek or Clear a single attempt, without retries.
func NoRetry() CallOption { return func(s *callSettings) { s.noRetry = true } }

// Client calls one syncgen server (or a load balancer in front of several). It is safe for
// concurrent use; make one per process and share it.
//
// Retries: Get, Peek and Clear are retried on UNAVAILABLE (or a connection torn down under
// them) within their deadline, with full-jitter backoff; Bump never is (a retried Bump could
// advance the generation twice: the caller decides). A Watch resumes by itself after the
// same failures, sending what it already knows, so a reconnect costs what changed meanwhile
// and no change is missed.
type Client struct {
	conn    *grpc.ClientConn
	stub    generationv1.GenerationServiceClient
	target  string
	token   string
	timeout time.Duration
	backoff Backoff

	mu      sync.Mutex
	closed  bool
	watches map[*Watch]struct{}
	shared  *sharedWatch
}

// Dial creates a client of the server at target (HOST:PORT, or any grpc-go target). It
// connects in the background: an unreachable server shows as UNAVAILABLE errors of calls,
// not as an error here. The error is only for options grpc-go refuses.
func Dial(target string, options Options) (*Client, error) {
	settings := options.Backoff.withDefaults()
	transport := grpc.WithInsecure()
	if options.TLS != nil {
		transport = grpc.WithTransportCredentials(credentials.NewTLS(options.TLS))
	}
	dialOptions := append([]grpc.DialOption{
		transport,
		// grpc-go's own reconnects of a lost connection follow the client's backoff: after a
		// long outage the client is back within about twice Backoff.Max of the server.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  settings.Initial,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   settings.Max,
			},
			MinConnectTimeout: 20 * time.Second,
		}),
		// Find a dead connection within about 40 s, even with no call in flight, so a Watch on
		// a server that vanished without closing the connection resumes instead of hanging.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		// Round robin over every address the target resolves to: calls spread, and streams a
		// replica's shutdown ends resume on the next replica.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
	}, options.DialOptions...)
	conn, err := grpc.Dial(target, dialOptions...)
	if err != nil {
		return nil, err
	}
	timeout := options.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{
		conn:    conn,
		stub:    generationv1.NewGenerationServiceClient(conn),
		target:  target,
		token:   options.Token,
		timeout: timeout,
		backoff: settings,
		watches: map[*Watch]struct{}{},
	}, nil
}

// Get returns the key's generation, creating one if the key is absent.
func (c *Client) Get(ctx context.Context, key string, options ...CallOption) (int64, error) {
	return c.get(ctx, key, false, options)
}

// Peek returns the key's generation, or 0 for an absent key; it creates nothing.
func (c *Client) Peek(ctx context.Context, key string, options ...CallOption) (int64, error) {
	return c.get(ctx, key, true, options)
}

func (c *Client) get(ctx context.Context, key string, peek bool, options []CallOption) (int64, error) {
	var generation int64
	err := c.unary(ctx, true, options, func(ctx context.Context) error {
		response, err := c.stub.Get(ctx, &generationv1.GetRequest{Key: key, Peek: peek})
		generation = response.GetGeneration()
		return err
	})
	return generation, err
}

// Bump advances the key's generation and returns the new one. It is never retried.
func (c *Client) Bump(ctx context.Context, key string) (int64, error) {
	var generation int64
	err := c.unary(ctx, false, nil, func(ctx context.Context) error {
		response, err := c.stub.Bump(ctx, &generationv1.BumpRequest{Key: key})
		generation = response.GetGeneration()
		return err
	})
	return generation, err
}

// Clear forgets the key: every generation handed out for it so far is stale.
func (c *Client) Clear(ctx context.Context, key string, options ...CallOption) error {
	return c.unary(ctx, true, options, func(ctx context.Context) error {
		_, err := c.stub.Clear(ctx, &generationv1.ClearRequest{Key: key})
		return err
	})
}

// ConnectionState is the state of the connection to the server, for logs and health checks:
// Idle, Connecting, Ready, TransientFailure (calls fail with UNAVAILABLE while it reconnects
// with the client's backoff) or Shutdown (closed).
func (c *Client) ConnectionState() connectivity.State { return c.conn.GetState() }

// Close ends every Watch and closes the connection; calls in flight fail with CANCELLED.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	watches := c.watches
	c.watches = nil
	shared := c.shared
	c.mu.Unlock()
	if shared != nil {
		shared.close()
	}
	for watch := range watches {
		watch.cancel()
	}
	return c.conn.Close()
}

// ErrClientClosed is what a Watch ends with once its client is closed.
var ErrClientClosed = errors.New("syncgen: the client is closed")

// outgoing adds the token to a call's metadata.
func (c *Client) outgoing(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// unary runs one call with the client's deadline (when ctx has none), token and retries.
func (c *Client) unary(ctx context.Context, retryable bool, options []CallOption, call func(context.Context) error) error {
	var settings callSettings
	for _, option := range options {
		option(&settings)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	ctx = c.outgoing(ctx)
	deadline, _ := ctx.Deadline()
	backoff := newBackoffCounter(c.backoff)
	for {
		err := call(ctx)
		if err == nil {
			return nil
		}
		err = explainUnreachable(err, c.target)
		if !retryable || settings.noRetry || !IsRetryable(err) {
			return err
		}
		wait := backoff.next()
		if time.Now().Add(wait).After(deadline) || !sleep(ctx, wait) {
			return err
		}
	}
}
