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

	"github.com/certlife/platform/pkg/events"
)

// Handler applies one event inside tx. The inbox row for the event is
// written in the same transaction, so the effect happens exactly once.
// Return an error wrapped by Permanent for a message that can never
// succeed; any other error is retried with backoff.
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
	// MaxDeliver is the number of attempts before a dead letter (default 6).
	MaxDeliver int
	// Backoff is the delay before each retry (default 1s, 5s, 30s, 2m, 10m).
	Backoff []time.Duration
	// Concurrency is how many messages are handled at once (default 8).
	Concurrency int
}

// Bus runs a service's consumers.
type Bus struct {
	Service string
	Pool    *pgxpool.Pool
	NC      *nats.Conn
	JS      jetstream.JetStream
	Log     *slog.Logger
	Metrics *Metrics

	mu       sync.Mutex
	running  []jetstream.ConsumeContext
	inflight sync.WaitGroup
	lagStop  []context.CancelFunc
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
	subjects := make([]string, 0, len(c.Handlers))
	for t := range c.Handlers {
		subjects = append(subjects, events.Subject(t))
	}
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, events.Stream, jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		// One more than ours: our own count dead-letters first, the
		// server's advisory covers a handler that never returns.
		MaxDeliver:    c.MaxDeliver + 1,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 1000,
	})
	if err != nil {
		return fmt.Errorf("bus: consumer %s: %w", c.Name, err)
	}
	sem := make(chan struct{}, c.Concurrency)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		sem <- struct{}{}
		b.inflight.Add(1)
		go func() {
			defer func() { <-sem; b.inflight.Done() }()
			b.handle(context.WithoutCancel(ctx), c, msg)
		}()
	}, jetstream.PullMaxMessages(2*c.Concurrency))
	if err != nil {
		return fmt.Errorf("bus: consume %s: %w", c.Name, err)
	}
	lagCtx, cancel := context.WithCancel(ctx)
	b.mu.Lock()
	b.running = append(b.running, cc)
	b.lagStop = append(b.lagStop, cancel)
	b.mu.Unlock()
	go b.watchLag(lagCtx, cons, c.Name)
	return nil
}

// Stop stops fetching new messages and waits for in-flight handlers.
func (b *Bus) Stop(ctx context.Context) error {
	b.mu.Lock()
	for _, cc := range b.running {
		cc.Drain()
	}
	for _, cancel := range b.lagStop {
		cancel()
	}
	b.running, b.lagStop = nil, nil
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

func (b *Bus) handle(ctx context.Context, c Consumer, msg jetstream.Msg) {
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
	if err == nil {
		err = b.apply(ctx, c, env)
	}
	switch {
	case err == nil:
		_ = msg.Ack()
	case IsPermanent(err) || int(meta.NumDelivered) >= c.MaxDeliver:
		b.Metrics.Failures.WithLabelValues(c.Name).Inc()
		b.deadLetter(ctx, c.Name, msg, meta, err)
	default:
		b.Metrics.Failures.WithLabelValues(c.Name).Inc()
		delay := c.Backoff[min(int(meta.NumDelivered)-1, len(c.Backoff)-1)]
		b.Log.Warn("event handler failed, will retry", "consumer", c.Name, "subject", msg.Subject(),
			"delivery", meta.NumDelivered, "retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
	}
}

// apply runs the handler and the inbox insert in one transaction.
func (b *Bus) apply(ctx context.Context, c Consumer, env events.Envelope) error {
	h, ok := c.Handlers[env.Type]
	if !ok {
		return Permanent(fmt.Errorf("consumer %s has no handler for %s", c.Name, env.Type))
	}
	duplicate := false
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.Name, env.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		return h(ctx, tx, env)
	})
	if err != nil {
		return err
	}
	if duplicate {
		b.Metrics.Duplicates.WithLabelValues(c.Name).Inc()
	} else {
		b.Metrics.Consumed.WithLabelValues(c.Name, env.Type).Inc()
	}
	return nil
}

// Dead-letter headers: what operators see and what replay uses.
const (
	HeaderError           = "Dead-Letter-Error"
	HeaderConsumer        = "Dead-Letter-Consumer"
	HeaderOriginalSubject = "Dead-Letter-Subject"
	HeaderStreamSeq       = "Dead-Letter-Stream-Seq"
	HeaderDeliveries      = "Dead-Letter-Deliveries"
)

func (b *Bus) deadLetter(ctx context.Context, consumer string, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) {
	out := nats.NewMsg(events.DeadLetterPrefix + b.Service + "." + consumer)
	out.Data = msg.Data()
	out.Header.Set(HeaderError, truncate(cause.Error(), 2000))
	out.Header.Set(HeaderConsumer, consumer)
	out.Header.Set(HeaderOriginalSubject, msg.Subject())
	out.Header.Set(HeaderStreamSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	out.Header.Set(HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dl-%s-%d", consumer, meta.Sequence.Stream))
	if _, err := b.JS.PublishMsg(ctx, out); err != nil {
		// Keep the original: without a dead letter it must stay retryable.
		b.Log.Error("dead-letter publish failed", "consumer", consumer, "err", err)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	b.Metrics.DeadLettered.WithLabelValues(consumer).Inc()
	b.Log.Error("event dead-lettered", "consumer", consumer, "subject", msg.Subject(),
		"stream_seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "err", cause)
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
