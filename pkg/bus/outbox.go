package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// Emit writes an event to the outbox inside the caller's transaction, so
// that the event exists if and only if the state change commits. The
// relay is woken on commit by NOTIFY.
func Emit(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	raw, err := env.Marshal()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)`,
		env.ID, events.Subject(env.Type), raw); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_outbox', '')`)
	return err
}

// Relay publishes the outbox of one service to JetStream. Replicas of a
// service all run it; an advisory lock makes one the leader.
type Relay struct {
	Pool    *pgxpool.Pool
	JS      jetstream.JetStream
	Log     *slog.Logger
	Metrics *Metrics
	// Poll is the fallback interval when no NOTIFY arrives (default 2s).
	Poll time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement of
	// one publish (default 10s); a row that times out stays in the outbox.
	PublishTimeout time.Duration
	// BeforeCommit, when set, runs after publishing a batch and before
	// marking it published — tests use it to crash the relay there.
	BeforeCommit func() error

	mu   sync.Mutex // one batch at a time within this process
	wake chan struct{}
	pub  jetstream.JetStream // JS with the publish timeout
}

const relayBatch = 256

// Run relays until ctx ends. It returns nil on cancellation.
func (r *Relay) Run(ctx context.Context) error {
	r.init()
	for ctx.Err() == nil {
		if err := r.lead(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("outbox relay restarting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func (r *Relay) init() {
	r.mu.Lock()
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
	if r.Poll == 0 {
		r.Poll = 2 * time.Second
	}
	if r.PublishTimeout == 0 {
		r.PublishTimeout = 10 * time.Second
	}
	if r.pub == nil {
		// A context of our own, so that an unanswered publish times out
		// (and leaves the pending-ack table) without touching the
		// service's shared one.
		pub, err := jetstream.New(r.JS.Conn(), jetstream.WithPublishAsyncTimeout(r.PublishTimeout))
		if err != nil {
			pub = r.JS
		}
		r.pub = pub
	}
	r.mu.Unlock()
}

// lead holds the leader lock on a dedicated connection, listens for
// NOTIFY, and drains the outbox whenever woken or polled.
func (r *Relay) lead(ctx context.Context) error {
	conn, err := r.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var schema string
	if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return err
	}
	for {
		var leader bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext(current_schema() || '.outbox_relay'))").Scan(&leader); err != nil {
			return err
		}
		if leader {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.Poll):
		}
	}
	defer func() {
		// The lock dies with the session anyway; releasing lets a waiting
		// replica take over at once on a clean shutdown.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext(current_schema() || '.outbox_relay'))")
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schema + "_outbox"}.Sanitize()); err != nil {
		return err
	}
	for {
		if _, err := r.Flush(ctx); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, r.Poll)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
}

// Flush publishes everything in the outbox now and reports how many rows
// it took out (published, or quarantined when refused). Safe to call
// concurrently with Run (shutdown uses it).
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for {
		n, err := r.batch(ctx)
		total += n
		if err != nil || n < relayBatch {
			r.updateBacklog(ctx)
			return total, err
		}
	}
}

type pending struct {
	seq     int64
	id      string
	subject string
	payload []byte
}

// batch publishes one batch: lock rows, publish with Nats-Msg-Id = event
// ID, delete what JetStream stored, quarantine what it refused for good,
// commit. A crash after publishing and before the commit makes the next
// leader publish the same IDs again, which JetStream drops as duplicates
// inside its window — and consumers' inboxes drop after it.
//
// A row that failed for a passing reason (timeout, NATS down) stays for
// the next batch; the rows that were stored are still marked, and the
// error is returned so the relay backs off.
func (r *Relay) batch(ctx context.Context) (int, error) {
	tx, err := r.Pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT seq, event_id::text, subject, payload FROM outbox
		ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, relayBatch)
	if err != nil {
		return 0, err
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
		var p pending
		err := row.Scan(&p.seq, &p.id, &p.subject, &p.payload)
		return p, err
	})
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	futures := make([]jetstream.PubAckFuture, len(batch))
	failed := make([]error, len(batch))
	for i, p := range batch {
		futures[i], failed[i] = r.pub.PublishAsync(p.subject, p.payload, jetstream.WithMsgID(p.id),
			jetstream.WithExpectStream(events.Stream))
	}
	// The publish context has its own ack timeout; this one only guards
	// against a future that never resolves at all.
	guard := time.NewTimer(r.PublishTimeout + time.Second)
	defer guard.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			failed[i] = err
		case <-guard.C:
			failed[i] = jetstream.ErrAsyncPublishTimeout
			guard.Reset(0)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	var published []int64
	var quarantined []pending
	var reasons []string
	var retry error
	for i, p := range batch {
		switch err := failed[i]; {
		case err == nil:
			published = append(published, p.seq)
			r.Metrics.Published.WithLabelValues(events.TypeOfSubject(p.subject)).Inc()
		case Refused(err):
			r.Metrics.PublishFailures.Inc()
			quarantined = append(quarantined, p)
			reasons = append(reasons, truncate(err.Error(), 2000))
		default:
			r.Metrics.PublishFailures.Inc()
			if retry == nil {
				retry = fmt.Errorf("publish %s: %w", p.id, err)
			}
		}
	}
	if r.BeforeCommit != nil {
		if err := r.BeforeCommit(); err != nil {
			return 0, err
		}
	}
	if len(published) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, published); err != nil {
			return 0, err
		}
	}
	for i, p := range quarantined {
		if _, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM outbox WHERE seq = $1 RETURNING seq, event_id, subject, payload, created_at)
			INSERT INTO outbox_quarantine (id, event_id, subject, payload, created_at, error)
			SELECT seq, event_id, subject, payload, created_at, $2 FROM moved`, p.seq, reasons[i]); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	for i, p := range quarantined {
		r.Metrics.Quarantined.Inc()
		r.Log.Error("outbox row refused by JetStream: quarantined", "seq", p.seq, "event_id", p.id,
			"subject", p.subject, "bytes", len(p.payload), "err", reasons[i])
	}
	if retry != nil {
		return 0, retry
	}
	return len(batch), nil
}

// Refused reports whether a publish error is JetStream (or the client)
// refusing this message for good — too large, a bad subject, rejected by
// the stream — rather than an outage: such a row is quarantined, an
// outage's row waits.
func Refused(err error) bool {
	if err == nil || errs.Transient(err) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) {
		return false
	}
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrBadHeaderMsg) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		return true
	}
	var apiErr *jetstream.APIError
	// 400: the request itself is wrong (size, expected stream, headers);
	// 5xx: the server's state, which passes.
	return errors.As(err, &apiErr) && apiErr.Code == 400
}

// updateBacklog counts the outbox (up to a bound, so that a large backlog
// never makes it slow) and the age of its oldest row by the database's
// clock, which stamped created_at.
func (r *Relay) updateBacklog(ctx context.Context) {
	var n, q int64
	var age float64
	if err := r.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT 1000000) o),
		(SELECT count(*) FROM outbox_quarantine),
		COALESCE((SELECT extract(epoch FROM now() - created_at)::float8 FROM outbox ORDER BY seq LIMIT 1), 0)`).Scan(&n, &q, &age); err == nil {
		r.Metrics.OutboxBacklog.Set(float64(n))
		r.Metrics.QuarantineSize.Set(float64(q))
		r.Metrics.OutboxAge.Set(max(age, 0))
	}
}
