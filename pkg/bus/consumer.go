package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// Handler applies one event inside tx. The inbox row for the event is
// written in the same transaction, so the effect happens exactly once.
// Return an error wrapped by Permanent for a message that can never
// succeed; a transient error (errs.Transient) is retried without limit;
// any other error is retried with backoff, then dead-lettered.
type Handler func(ctx context.Context, tx pgx.Tx, env events.Envelope) error

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the message is dead-lettered.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked by Permanent or is an invalid
// or unknown-version event.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) || errors.Is(err, events.ErrInvalid) || errors.Is(err, events.ErrUnknownVersion)
}

// Consumer is one durable JetStream consumer of a service.
type Consumer struct {
	// Name is the durable name, "<service>-<purpose>"; replicas share it.
	Name string
	// Handlers maps each event type to what it does.
	Handlers map[string]Handler
	// MaxDeliver is the number of failed attempts (faults of the work, not
	// outages) before a dead letter (default 6).
	MaxDeliver int
	// Backoff is the delay before each retry (default 1s, 5s, 30s, 2m, 10m).
	Backoff []time.Duration
	// Concurrency is how many messages are handled at once (default 8).
	Concurrency int
	// HandlerTimeout is each handler's deadline (default 20s); it must be
	// shorter than AckWait (default 30s).
	HandlerTimeout time.Duration
	AckWait        time.Duration
}

// maxTransientDelay caps the delay before retrying after an outage: when
// the dependency is back, work resumes within it.
const maxTransientDelay = 30 * time.Second

// Bus runs a service's consumers.
type Bus struct {
	Service string
	Pool    *pgxpool.Pool
	NC      *nats.Conn
	JS      jetstream.JetStream
	Log     *slog.Logger
	Metrics *Metrics
	// Health reports whether the service's dependencies answer; nil = ping
	// Pool and check that NC is connected.
	Health func(ctx context.Context) error
	// ProbeInterval is how often a paused bus checks its health (default 1s).
	ProbeInterval time.Duration

	mu       sync.Mutex
	running  []*running
	paused   bool
	stopped  bool
	life     context.Context // ends at Stop: the probe and lag watchers
	end      context.CancelFunc
	inflight sync.WaitGroup
}

// running is one started consumer; cc is nil while the bus is paused.
type running struct {
	c    Consumer
	cons jetstream.Consumer
	ctx  context.Context
	sem  chan struct{}
	cc   jetstream.ConsumeContext
}

var defaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// Start creates (or updates) the durable consumer and starts handling.
func (b *Bus) Start(ctx context.Context, c Consumer) error {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 6
	}
	if len(c.Backoff) == 0 {
		c.Backoff = defaultBackoff
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.HandlerTimeout == 0 {
		c.HandlerTimeout = min(20*time.Second, c.AckWait*2/3)
	}
	if c.HandlerTimeout >= c.AckWait {
		return fmt.Errorf("bus: consumer %s: handler timeout %s must be shorter than the ack wait %s", c.Name, c.HandlerTimeout, c.AckWait)
	}
	subjects := make([]string, 0, len(c.Handlers))
	for t := range c.Handlers {
		subjects = append(subjects, events.Subject(t))
	}
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, events.Stream, jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		// Unlimited: the server cannot tell an outage from a fault, so the
		// consumer counts faults itself (see the package comment).
		MaxDeliver:    -1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
	})
	if err != nil {
		return fmt.Errorf("bus: consumer %s: %w", c.Name, err)
	}
	r := &running{c: c, cons: cons, ctx: context.WithoutCancel(ctx), sem: make(chan struct{}, c.Concurrency)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.life == nil {
		b.life, b.end = context.WithCancel(context.WithoutCancel(ctx))
	}
	if !b.paused {
		if err := b.consume(r); err != nil {
			return fmt.Errorf("bus: consume %s: %w", c.Name, err)
		}
	}
	b.running = append(b.running, r)
	b.Metrics.consumer(c.Name)
	go b.watchLag(b.life, cons, c.Name)
	return nil
}

// consume starts fetching for r; b.mu is held.
func (b *Bus) consume(r *running) error {
	cc, err := r.cons.Consume(func(msg jetstream.Msg) {
		r.sem <- struct{}{}
		b.inflight.Add(1)
		go func() {
			defer func() { <-r.sem; b.inflight.Done() }()
			b.handle(r.ctx, r.c, msg)
		}()
	}, jetstream.PullMaxMessages(2*r.c.Concurrency))
	if err != nil {
		return err
	}
	r.cc = cc
	return nil
}

// Stop stops fetching new messages and waits for in-flight handlers.
func (b *Bus) Stop(ctx context.Context) error {
	b.mu.Lock()
	b.stopped = true
	for _, r := range b.running {
		if r.cc != nil {
			r.cc.Drain()
		}
	}
	if b.end != nil {
		b.end()
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Paused reports whether the bus stopped fetching because its
// dependencies are unhealthy.
func (b *Bus) Paused() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.paused
}

func (b *Bus) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b.Health != nil {
		return b.Health(ctx)
	}
	if err := b.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if b.NC != nil && !b.NC.IsConnected() {
		return fmt.Errorf("nats: %s", b.NC.Status())
	}
	return nil
}

// checkHealth runs after a failure: when the service's dependencies do
// not answer, every consumer pauses until they do. It reports whether the
// service is healthy.
func (b *Bus) checkHealth(ctx context.Context) bool {
	err := b.healthy(ctx)
	if err != nil {
		b.pause(err)
	}
	return err == nil
}

func (b *Bus) pause(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.paused || b.stopped || b.life == nil {
		return
	}
	b.paused = true
	for _, r := range b.running {
		if r.cc != nil {
			// Buffered messages are dropped: they come back after the ack
			// wait, and an outage's redeliveries are never counted.
			r.cc.Stop()
			r.cc = nil
		}
	}
	b.Metrics.Paused.Set(1)
	b.Log.Warn("consumers paused: dependencies unhealthy", "service", b.Service, "err", cause)
	go b.probe(b.life)
}

// probe checks health until it passes, then resumes every consumer.
func (b *Bus) probe(ctx context.Context) {
	interval := b.ProbeInterval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.Metrics.HealthProbes.Inc()
		err := b.healthy(ctx)
		if err != nil {
			b.Metrics.HealthProbeFailures.Inc()
			continue
		}
		if b.resume() {
			return
		}
	}
}

// resume restarts fetching; false if a consumer could not start (the
// probe tries again).
func (b *Bus) resume() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return true
	}
	for _, r := range b.running {
		if r.cc == nil {
			if err := b.consume(r); err != nil {
				b.Log.Warn("consumer did not resume", "consumer", r.c.Name, "err", err)
				return false
			}
		}
	}
	b.paused = false
	b.Metrics.Paused.Set(0)
	b.Log.Info("consumers resumed", "service", b.Service)
	return true
}

func (b *Bus) handle(ctx context.Context, c Consumer, msg jetstream.Msg) {
	defer func() {
		// Only the bus's own code runs here (handlers are guarded in
		// apply); still, nothing a message does may end the process.
		if p := recover(); p != nil {
			b.Log.Error("bus: panic outside a handler", "consumer", c.Name, "panic", p)
			_ = msg.NakWithDelay(5 * time.Second)
		}
	}()
	meta, err := msg.Metadata()
	if err != nil {
		b.Log.Error("message without metadata", "consumer", c.Name, "err", err)
		_ = msg.Term()
		return
	}
	if meta.NumDelivered > 1 {
		b.Metrics.Redelivered.WithLabelValues(c.Name).Inc()
	}
	env, err := events.Parse(msg.Data())
	if err != nil {
		b.Metrics.Failures.WithLabelValues(c.Name).Inc()
		b.deadLetter(ctx, c.Name, msg, meta, 0, err)
		return
	}
	hctx, cancel := context.WithTimeout(ctx, c.HandlerTimeout)
	err = b.apply(hctx, c, env, meta)
	overran := errors.Is(hctx.Err(), context.DeadlineExceeded)
	cancel()
	if err == nil {
		_ = msg.Ack()
		return
	}
	b.Metrics.Failures.WithLabelValues(c.Name).Inc()
	if p, ok := errs.PanicOf(err); ok {
		b.Metrics.Panics.WithLabelValues(c.Name).Inc()
		b.Log.Error("event handler panicked", "consumer", c.Name, "subject", msg.Subject(), "panic", p.Value, "stack", string(p.Stack))
		b.deadLetter(ctx, c.Name, msg, meta, 0, err)
		return
	}
	if IsPermanent(err) {
		b.deadLetter(ctx, c.Name, msg, meta, 0, err)
		return
	}
	// Whatever the error says, a failure while the service's
	// dependencies are down is the outage's (a broken connection does not
	// always look like one), and pauses the consumers.
	healthy := b.checkHealth(ctx)
	if overran {
		err = fmt.Errorf("handler exceeded its deadline of %s: %w", c.HandlerTimeout, err)
	}
	// Past our own deadline a timeout is the handler's, not an outage's.
	outage := !healthy || (!overran && errs.Transient(err))
	if !outage {
		n, cerr := b.countFailure(ctx, c.Name, meta.Sequence.Stream, err)
		if cerr == nil {
			if n >= c.MaxDeliver {
				b.deadLetter(ctx, c.Name, msg, meta, n, err)
				return
			}
			delay := c.Backoff[min(n-1, len(c.Backoff)-1)]
			b.Log.Warn("event handler failed, will retry", "consumer", c.Name, "subject", msg.Subject(),
				"failures", n, "max", c.MaxDeliver, "retry_in", delay, "err", err)
			_ = msg.NakWithDelay(delay)
			return
		}
		// Postgres cannot even record the failure: an outage after all.
		err = errors.Join(err, cerr)
	}
	b.Metrics.TransientFailures.WithLabelValues(c.Name).Inc()
	delay := min(c.Backoff[min(int(meta.NumDelivered)-1, len(c.Backoff)-1)], maxTransientDelay)
	b.Log.Warn("event handler hit an outage, will retry (not counted)", "consumer", c.Name, "subject", msg.Subject(),
		"delivery", meta.NumDelivered, "retry_in", delay, "err", err)
	_ = msg.NakWithDelay(delay)
}

// apply runs the handler and the inbox insert in one transaction. A panic
// in the handler comes back as an *errs.PanicError, the transaction
// rolled back.
func (b *Bus) apply(ctx context.Context, c Consumer, env events.Envelope, meta *jetstream.MsgMetadata) error {
	h, ok := c.Handlers[env.Type]
	if !ok {
		return Permanent(fmt.Errorf("consumer %s has no handler for %s", c.Name, env.Type))
	}
	duplicate := false
	hooks := &commitHooks{}
	ctx = context.WithValue(ctx, commitHooksKey{}, hooks)
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.Name, env.ID)
		if err != nil {
			return err
		}
		if meta.NumDelivered > 1 {
			// Earlier attempts may have counted failures: the message
			// is done with them once this commits.
			if _, err := tx.Exec(ctx, `DELETE FROM consumer_failures WHERE consumer = $1 AND stream_seq = $2`,
				c.Name, int64(meta.Sequence.Stream)); err != nil {
				return err
			}
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		return errs.Guard(func() error { return h(ctx, tx, env) })
	})
	if err != nil {
		return err
	}
	if duplicate {
		b.Metrics.Duplicates.WithLabelValues(c.Name).Inc()
	} else {
		b.Metrics.Consumed.WithLabelValues(c.Name, env.Type).Inc()
		for _, fn := range hooks.fns {
			fn()
		}
	}
	return nil
}

type commitHooks struct{ fns []func() }

type commitHooksKey struct{}

// AfterCommit runs fn once the transaction of the handler whose ctx this
// is has committed — not when it rolls back and the message comes again:
// for what must happen once per effect outside the database, such as an
// observation in a histogram. Outside a handler fn runs at once.
func AfterCommit(ctx context.Context, fn func()) {
	if h, ok := ctx.Value(commitHooksKey{}).(*commitHooks); ok {
		h.fns = append(h.fns, fn)
		return
	}
	fn()
}

// countFailure records one counted failure of the message and returns
// how many it has had.
func (b *Bus) countFailure(ctx context.Context, consumer string, seq uint64, cause error) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int
	err := b.Pool.QueryRow(ctx, `INSERT INTO consumer_failures (consumer, stream_seq, failures, last_error)
		VALUES ($1, $2, 1, $3)
		ON CONFLICT (consumer, stream_seq) DO UPDATE
		SET failures = consumer_failures.failures + 1, last_error = EXCLUDED.last_error, updated_at = now()
		RETURNING failures`, consumer, int64(seq), truncate(cause.Error(), 2000)).Scan(&n)
	return n, err
}

// Dead-letter headers: what operators see and what replay uses.
const (
	HeaderError           = "Dead-Letter-Error"
	HeaderStack           = "Dead-Letter-Stack"
	HeaderConsumer        = "Dead-Letter-Consumer"
	HeaderOriginalSubject = "Dead-Letter-Subject"
	HeaderStreamSeq       = "Dead-Letter-Stream-Seq"
	HeaderStoredAt        = "Dead-Letter-Stored-At"
	HeaderDeliveries      = "Dead-Letter-Deliveries"
	HeaderFailures        = "Dead-Letter-Failures"
	HeaderEventOmitted    = "Dead-Letter-Event-Omitted"
)

func (b *Bus) deadLetter(ctx context.Context, consumer string, msg jetstream.Msg, meta *jetstream.MsgMetadata, failures int, cause error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out := nats.NewMsg(events.DeadLetterPrefix + b.Service + "." + consumer)
	out.Data = msg.Data()
	out.Header.Set(HeaderError, truncate(cause.Error(), 2000))
	if p, ok := errs.PanicOf(cause); ok {
		out.Header.Set(HeaderStack, truncate(string(p.Stack), 8000))
	}
	out.Header.Set(HeaderConsumer, consumer)
	out.Header.Set(HeaderOriginalSubject, msg.Subject())
	out.Header.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	out.Header.Set(HeaderStoredAt, meta.Timestamp.UTC().Format(time.RFC3339Nano))
	out.Header.Set(HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	out.Header.Set(HeaderFailures, strconv.Itoa(failures))
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dl-%s-%d", consumer, meta.Sequence.Stream))
	_, err := b.JS.PublishMsg(ctx, out)
	if Refused(err) {
		// The event with our headers is too large for a message: keep
		// the headers only; the listing and replay read the event from
		// the event stream by its sequence while it is there.
		out.Data = nil
		out.Header.Del(HeaderStack)
		out.Header.Set(HeaderEventOmitted, "1")
		_, err = b.JS.PublishMsg(ctx, out)
	}
	if err != nil {
		// Keep the original: without a dead letter it must stay retryable.
		b.Log.Error("dead-letter publish failed", "consumer", consumer, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if failures > 0 {
		_, _ = b.Pool.Exec(ctx, `DELETE FROM consumer_failures WHERE consumer = $1 AND stream_seq = $2`, consumer, int64(meta.Sequence.Stream))
	}
	b.Metrics.DeadLettered.WithLabelValues(consumer).Inc()
	b.Log.Error("event dead-lettered", "consumer", consumer, "subject", msg.Subject(),
		"stream_seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "failures", failures, "err", cause)
	_ = msg.TermWithReason(truncate(cause.Error(), 200))
}

func (b *Bus) watchLag(ctx context.Context, cons jetstream.Consumer, name string) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if info, err := cons.Info(ctx); err == nil {
			b.Metrics.ConsumerLag.WithLabelValues(name).Set(float64(info.NumPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
