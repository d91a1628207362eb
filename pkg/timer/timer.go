// Package timer is the platform's durable timers: rows in the service's
// own schema, inserted in the same transaction as the state change that
// needs them, fired by a worker that reads the injected clock.
//
// River was the first choice, but its job fetch compares against the
// database's own now(); the platform's rules must follow one injected
// clock (CLOCK_CONTROL moves it for every timer at once), so the timers
// live here, in a table small enough to read in one sitting.
package timer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/clock"
)

// Timer is one due timer handed to its handler.
type Timer struct {
	Kind     string
	Key      string
	DueAt    time.Time
	Payload  json.RawMessage
	Attempts int
}

// Handler fires a timer inside tx; the timer row is deleted in the same
// transaction, so a timer fires once even across crashes. A handler may
// Schedule the same kind and key again (periodic work).
type Handler func(ctx context.Context, tx pgx.Tx, t Timer) error

// Schedule creates or moves the timer (kind, key) to dueAt, inside tx.
func Schedule(ctx context.Context, tx pgx.Tx, kind, key string, dueAt time.Time, payload any) error {
	raw, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if payload == nil {
		raw = []byte("{}")
	}
	_, err = tx.Exec(ctx, `INSERT INTO timers (kind, key, due_at, payload) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, key) DO UPDATE SET due_at = EXCLUDED.due_at, payload = EXCLUDED.payload, attempts = 0, last_error = NULL`,
		kind, key, dueAt, raw)
	if err != nil {
		return fmt.Errorf("timer %s/%s: %w", kind, key, err)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_timers', '')`)
	return err
}

// ScheduleIfEarlier moves an existing timer earlier (never later) or
// creates it; used where a later rule may only shorten a deadline (PC-5).
func ScheduleIfEarlier(ctx context.Context, tx pgx.Tx, kind, key string, dueAt time.Time) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE timers SET due_at = $3 WHERE kind = $1 AND key = $2 AND due_at > $3`, kind, key, dueAt)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() > 0 {
		_, err = tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_timers', '')`)
	}
	return tag.RowsAffected() > 0, err
}

// Cancel removes the timer (kind, key) inside tx, if it exists.
func Cancel(ctx context.Context, tx pgx.Tx, kind, key string) error {
	_, err := tx.Exec(ctx, `DELETE FROM timers WHERE kind = $1 AND key = $2`, kind, key)
	return err
}

// Worker fires the due timers of one service.
type Worker struct {
	Pool  *pgxpool.Pool
	Clock clock.Clock
	Log   *slog.Logger
	// Poll is the longest wait between two looks at the table (default 1s).
	Poll time.Duration

	mu       sync.Mutex
	handlers map[string]Handler
	sweep    sync.Mutex
}

// Handle registers the handler of a timer kind.
func (w *Worker) Handle(kind string, h Handler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.handlers == nil {
		w.handlers = map[string]Handler{}
	}
	w.handlers[kind] = h
}

// Run fires timers until ctx ends, waking on NOTIFY (a new timer), on a
// clock jump, or after Poll at most.
func (w *Worker) Run(ctx context.Context) error {
	if w.Poll == 0 {
		w.Poll = time.Second
	}
	notified := make(chan struct{}, 1)
	go w.listen(ctx, notified)
	for ctx.Err() == nil {
		if err := w.FireDue(ctx); err != nil && ctx.Err() == nil {
			w.Log.Warn("timer sweep failed", "err", err)
		}
		wait := w.Poll
		var next time.Time
		if err := w.Pool.QueryRow(ctx, `SELECT coalesce(min(due_at), 'infinity') FROM timers`).Scan(&next); err == nil {
			if d := next.Sub(w.Clock.Now()); d < wait {
				wait = max(d, 0)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-notified:
		case <-w.Clock.Changed():
		}
		t.Stop()
	}
	return nil
}

func (w *Worker) listen(ctx context.Context, notified chan<- struct{}) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := w.Pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer conn.Release()
			var schema string
			if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schema + "_timers"}.Sanitize()); err != nil {
				return err
			}
			defer conn.Exec(context.Background(), "UNLISTEN *")
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					return err
				}
				select {
				case notified <- struct{}{}:
				default:
				}
			}
		}()
		if err != nil && ctx.Err() == nil {
			time.Sleep(time.Second)
		}
	}
}

// FireDue fires every timer due by the clock's now, one transaction each,
// and returns when none is left. The dev clock endpoint calls it directly,
// so that moving the clock fires what became due before it answers.
func (w *Worker) FireDue(ctx context.Context) error {
	w.sweep.Lock()
	defer w.sweep.Unlock()
	for ctx.Err() == nil {
		fired, err := w.fireOne(ctx)
		if err != nil {
			return err
		}
		if !fired {
			return nil
		}
	}
	return ctx.Err()
}

var errNoHandler = errors.New("no handler for timer kind")

func (w *Worker) fireOne(ctx context.Context) (bool, error) {
	now := w.Clock.Now()
	var t Timer
	var handlerErr error
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `DELETE FROM timers WHERE (kind, key) = (
			SELECT kind, key FROM timers WHERE due_at <= $1 ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING kind, key, due_at, payload, attempts`, now).Scan(&t.Kind, &t.Key, &t.DueAt, &t.Payload, &t.Attempts)
		if err != nil {
			return err
		}
		w.mu.Lock()
		h := w.handlers[t.Kind]
		w.mu.Unlock()
		if h == nil {
			handlerErr = errNoHandler
			return handlerErr
		}
		handlerErr = h(ctx, tx, t)
		return handlerErr
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if handlerErr != nil {
		// The row is back (rolled back); push it out with backoff so one
		// bad timer does not block the others.
		delay := min(time.Duration(1<<min(t.Attempts, 10))*time.Second, time.Hour)
		w.Log.Warn("timer failed, will retry", "kind", t.Kind, "key", t.Key, "attempt", t.Attempts+1, "retry_in", delay, "err", handlerErr)
		_, uerr := w.Pool.Exec(ctx, `UPDATE timers SET attempts = attempts + 1, last_error = $3, due_at = $4 WHERE kind = $1 AND key = $2`,
			t.Kind, t.Key, handlerErr.Error(), now.Add(delay))
		return uerr == nil, uerr
	}
	return err == nil, err
}
