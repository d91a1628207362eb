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
	"github.com/nats-io/nats.go/jetstream"

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
	// BeforeCommit, when set, runs after publishing a batch and before
	// marking it published — tests use it to crash the relay there.
	BeforeCommit func() error

	mu   sync.Mutex // one batch at a time within this process
	wake chan struct{}
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

// Flush publishes everything in the outbox now and reports how many
// events it published. Safe to call concurrently with Run (shutdown uses it).
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
// ID, delete, commit. A crash after publishing and before the commit makes
// the next leader publish the same IDs again, which JetStream drops as
// duplicates inside its window — and consumers' inboxes drop after it.
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
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, p := range batch {
		f, err := r.JS.PublishAsync(p.subject, p.payload, jetstream.WithMsgID(p.id),
			jetstream.WithExpectStream(events.Stream))
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", p.id, err)
		}
		futures = append(futures, f)
	}
	seqs := make([]int64, 0, len(batch))
	for i, f := range futures {
		select {
		case <-f.Ok():
			seqs = append(seqs, batch[i].seq)
			r.Metrics.Published.WithLabelValues(events.TypeOfSubject(batch[i].subject)).Inc()
		case err := <-f.Err():
			return 0, fmt.Errorf("publish %s: %w", batch[i].id, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if r.BeforeCommit != nil {
		if err := r.BeforeCommit(); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, err
	}
	return len(batch), tx.Commit(ctx)
}

func (r *Relay) updateBacklog(ctx context.Context) {
	var n int64
	if err := r.Pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err == nil {
		r.Metrics.OutboxBacklog.Set(float64(n))
	}
}
