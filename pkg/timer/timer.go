// Package timer is the platform's durable timers: rows in the service's
// own schema, inserted in the same transaction as the state change that
// needs them, fired by a worker that reads the injected clock.
//
// River was the first choice, but its job fetch compares against the
// database's own now(); the platform's rules must follow one injected
// clock (CLOCK_CONTROL moves it for every timer at once), so the timers
// live here, in a table small enough to read in one sitting.
//
// A worker fires up to Concurrency timers at once (one slow SMTP server
// holds one slot, not all). A timer whose handler fails is retried with
// backoff; after MaxAttempts failures it is parked: kept, never fired
// again until an operator retries it (ListParked, RetryParked). A panic in
// a handler is recovered and counts as a failure, so a panicking timer
// ends parked instead of crashing the process at every start. An outage
// (errs.Transient) is retried shortly and not counted. The row is deleted
// in the handler's transaction, so a timer fires once.
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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
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
		ON CONFLICT (kind, key) DO UPDATE SET due_at = EXCLUDED.due_at, payload = EXCLUDED.payload,
			attempts = 0, last_error = NULL, parked_at = NULL`,
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
	// Concurrency is how many timers fire at once (default 4).
	Concurrency int
	// MaxAttempts is how many failed attempts park a timer (default 10).
	MaxAttempts int
	// Timeout is each handler's deadline (default 45s, under the pool's
	// idle-in-transaction bound: the handler holds a transaction).
	Timeout time.Duration
	// Metrics, nil = collectors registered nowhere.
	Metrics *Metrics

	once     sync.Once
	mu       sync.Mutex
	handlers map[string]Handler
	active   int           // Run's slots
	starved  bool          // Run wanted a slot and none was free
	freed    chan struct{} // a slot ended while Run was starved
	firing   int           // claims in progress, any caller
	idle     chan struct{} // closed when firing drops to 0
	slots    sync.WaitGroup
}

// Backoff of a failed timer: 1s, 2s, 4s, … up to an hour; an outage's
// retry comes after transientDelay and is not counted.
const (
	maxBackoff     = time.Hour
	transientDelay = 5 * time.Second
)

func (w *Worker) init() {
	w.once.Do(func() {
		if w.Poll == 0 {
			w.Poll = time.Second
		}
		if w.Concurrency <= 0 {
			w.Concurrency = 4
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = 10
		}
		if w.Timeout <= 0 {
			w.Timeout = 45 * time.Second
		}
		if w.Metrics == nil {
			w.Metrics = NewMetrics(nil)
		}
		if w.Log == nil {
			w.Log = slog.Default()
		}
		w.freed = make(chan struct{}, 1)
	})
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
// clock jump, when a timer falls due, or after Poll at most.
func (w *Worker) Run(ctx context.Context) error {
	w.init()
	notified := make(chan struct{}, 1)
	go w.listen(ctx, notified)
	var observed time.Time
	for ctx.Err() == nil {
		// Taken before the pass: a jump during it closes this channel
		// and the loop goes round again at once.
		changed := w.Clock.Changed()
		w.spawn(ctx)
		if time.Since(observed) >= 5*time.Second {
			w.Observe(ctx)
			observed = time.Now()
		}
		wait := w.Poll
		now := w.Clock.Now()
		var next *time.Time
		if err := w.Pool.QueryRow(ctx, `SELECT min(due_at) FROM timers WHERE parked_at IS NULL AND due_at > $1`, now).Scan(&next); err == nil && next != nil {
			wait = min(wait, max(next.Sub(now), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-notified:
		case <-changed:
		case <-w.freed:
		}
		t.Stop()
	}
	w.slots.Wait()
	return nil
}

// spawn starts a firing slot of Run if one is free. A slot fires due
// timers one after another until none is left; each claim spawns the next
// slot, so due timers fan out to Concurrency slots and a slow handler
// holds only its own.
func (w *Worker) spawn(ctx context.Context) {
	w.mu.Lock()
	if w.active >= w.Concurrency {
		w.starved = true
		w.mu.Unlock()
		return
	}
	w.active++
	w.slots.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.slots.Done()
		for ctx.Err() == nil {
			fired, err := w.fireOne(ctx, func() { w.spawn(ctx) })
			if err != nil {
				if ctx.Err() == nil {
					w.Log.Warn("timer sweep failed", "err", err)
				}
				break
			}
			if !fired {
				break
			}
		}
		w.mu.Lock()
		w.active--
		signal := w.starved
		w.starved = false
		w.mu.Unlock()
		if signal {
			select {
			case w.freed <- struct{}{}:
			default:
			}
		}
	}()
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
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// FireDue fires every timer due by the clock's now, Concurrency at a time,
// and returns when none is left — including those Run was firing, and
// those a clock jump during the pass made due. The dev clock endpoint
// calls it directly, so that moving the clock fires what became due
// before it answers.
func (w *Worker) FireDue(ctx context.Context) error {
	w.init()
	for {
		changed := w.Clock.Changed()
		var wg sync.WaitGroup
		errc := make(chan error, w.Concurrency)
		for range w.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					fired, err := w.fireOne(ctx, nil)
					if err != nil {
						errc <- err
						return
					}
					if !fired {
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		w.waitIdle(ctx)
		select {
		case <-changed:
			continue
		default:
		}
		w.Observe(ctx)
		return nil
	}
}

func (w *Worker) beginFiring() {
	w.mu.Lock()
	if w.firing == 0 {
		w.idle = make(chan struct{})
	}
	w.firing++
	w.mu.Unlock()
}

func (w *Worker) endFiring() {
	w.mu.Lock()
	w.firing--
	if w.firing == 0 {
		close(w.idle)
	}
	w.mu.Unlock()
}

// waitIdle waits until no claim is in progress (Run's slots included).
func (w *Worker) waitIdle(ctx context.Context) {
	w.mu.Lock()
	busy, idle := w.firing > 0, w.idle
	w.mu.Unlock()
	if busy {
		select {
		case <-idle:
		case <-ctx.Done():
		}
	}
}

var errNoHandler = errors.New("no handler for timer kind")

// fireOne claims the earliest due timer and fires it in one transaction;
// onClaim (may be nil) runs once a timer is claimed, before its handler.
// It reports whether it claimed one.
//
// The handler runs inside a savepoint: when it fails, its work is undone
// and the timer row is put back with the failure recorded in the same
// transaction, so no other worker can claim it in between.
func (w *Worker) fireOne(ctx context.Context, onClaim func()) (bool, error) {
	w.beginFiring()
	defer w.endFiring()
	now := w.Clock.Now()
	var t Timer
	var handlerErr error
	claimed, recorded := false, false
	hctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	started := time.Now()
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `DELETE FROM timers WHERE (kind, key) = (
			SELECT kind, key FROM timers WHERE due_at <= $1 AND parked_at IS NULL
			ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING kind, key, due_at, payload, attempts`, now).Scan(&t.Kind, &t.Key, &t.DueAt, &t.Payload, &t.Attempts)
		if err != nil {
			return err
		}
		claimed = true
		if onClaim != nil {
			onClaim()
		}
		w.mu.Lock()
		h := w.handlers[t.Kind]
		w.mu.Unlock()
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if h == nil {
			handlerErr = fmt.Errorf("%w %q", errNoHandler, t.Kind)
		} else {
			handlerErr = errs.Guard(func() error { return h(hctx, sp, t) })
		}
		if handlerErr == nil {
			return sp.Commit(ctx)
		}
		if err := sp.Rollback(ctx); err != nil {
			return handlerErr // the connection is lost: recorded outside below
		}
		if err := w.recordFailure(ctx, tx, t, now, handlerErr, errors.Is(hctx.Err(), context.DeadlineExceeded), true); err != nil {
			return err
		}
		recorded = true
		return nil
	})
	if !claimed {
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return false, err
	}
	w.Metrics.Duration.WithLabelValues(t.Kind).Observe(time.Since(started).Seconds())
	if handlerErr == nil {
		if err != nil {
			return false, err // the commit failed: the timer is still there
		}
		w.Metrics.Fired.WithLabelValues(t.Kind).Inc()
		return true, nil
	}
	w.Metrics.Failed.WithLabelValues(t.Kind).Inc()
	if recorded && err == nil {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err() // shutting down: the timer fires after the restart
	}
	// The transaction is gone (a broken connection, a panic mid-query):
	// the row is back as it was; record the failure on it.
	return true, w.recordFailure(ctx, w.Pool, t, now, handlerErr, errors.Is(hctx.Err(), context.DeadlineExceeded), false)
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// recordFailure records a failed attempt: retried with backoff, parked
// after MaxAttempts, or — an outage — retried shortly without counting.
// inTx: the row was deleted by the claim in q's transaction and is put
// back; else it is still there and updated.
func (w *Worker) recordFailure(ctx context.Context, q execer, t Timer, now time.Time, cause error, overran, inTx bool) error {
	msg := cause.Error()
	if overran {
		msg = fmt.Sprintf("handler exceeded its deadline of %s: %s", w.Timeout, msg)
	}
	p, panicked := errs.PanicOf(cause)
	if panicked {
		msg += "\n" + string(p.Stack)
		w.Log.Error("timer handler panicked", "kind", t.Kind, "key", t.Key, "panic", p.Value, "stack", string(p.Stack))
	}
	msg = truncate(msg, 8000)
	attempts, dueAt := t.Attempts, t.DueAt
	var parkedAt *time.Time
	switch {
	case !panicked && !overran && errs.Transient(cause):
		dueAt = now.Add(transientDelay)
		w.Log.Warn("timer hit an outage, will retry (not counted)", "kind", t.Kind, "key", t.Key, "retry_in", transientDelay, "err", cause)
	case t.Attempts+1 >= w.MaxAttempts:
		attempts, parkedAt = t.Attempts+1, &now
		w.Log.Error("timer parked after repeated failures", "kind", t.Kind, "key", t.Key, "attempts", attempts, "err", cause)
	default:
		attempts = t.Attempts + 1
		delay := min(time.Second<<min(t.Attempts, 12), maxBackoff)
		dueAt = now.Add(delay)
		w.Log.Warn("timer failed, will retry", "kind", t.Kind, "key", t.Key, "attempt", attempts, "max", w.MaxAttempts, "retry_in", delay, "err", cause)
	}
	var err error
	if inTx {
		_, err = q.Exec(ctx, `INSERT INTO timers (kind, key, due_at, payload, attempts, last_error, parked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.Kind, t.Key, dueAt, t.Payload, attempts, msg, parkedAt)
	} else {
		// Only if it is still there: another worker may have fired it since.
		_, err = q.Exec(ctx, `UPDATE timers SET due_at = $3, attempts = $4, last_error = $5, parked_at = $6
			WHERE kind = $1 AND key = $2`, t.Kind, t.Key, dueAt, attempts, msg, parkedAt)
	}
	return err
}

// Observe refreshes the gauges: due, oldest due age, parked. Counting
// due timers stops at a bound so that a backlog never makes it slow.
func (w *Worker) Observe(ctx context.Context) {
	now := w.Clock.Now()
	var due, parked int64
	var oldest *time.Time
	err := w.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM timers WHERE parked_at IS NULL AND due_at <= $1 LIMIT 100000) d),
		(SELECT min(due_at) FROM timers WHERE parked_at IS NULL AND due_at <= $1),
		(SELECT count(*) FROM timers WHERE parked_at IS NOT NULL)`, now).Scan(&due, &oldest, &parked)
	if err != nil {
		return
	}
	w.Metrics.Due.Set(float64(due))
	w.Metrics.Parked.Set(float64(parked))
	age := 0.0
	if oldest != nil {
		age = now.Sub(*oldest).Seconds()
	}
	w.Metrics.OldestDueAge.Set(age)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
