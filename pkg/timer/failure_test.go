package timer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/pkg/timer"
)

// A slow handler (an SMTP server that hangs) holds one slot of the pool,
// not the worker: the fast timers due beside it all fire while it is
// still running.
func TestSlowTimerDoesNotHoldTheOthers(t *testing.T) {
	c := clock.NewOffset()
	w := worker(t, testenv.Database(t), c)
	w.Concurrency = 3
	w.Poll = time.Hour // only NOTIFY, a clock jump or a due time wakes it
	var fast atomic.Int32
	release := make(chan struct{})
	var slowDone atomic.Bool
	w.Handle("slow", func(ctx context.Context, tx pgx.Tx, tm timer.Timer) error {
		select {
		case <-release:
		case <-time.After(30 * time.Second): // fails the test below rather than hanging
		}
		slowDone.Store(true)
		return nil
	})
	w.Handle("fast", func(context.Context, pgx.Tx, timer.Timer) error { fast.Add(1); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	schedule(t, w, "slow", "smtp", c.Now())
	for i := range 10 {
		schedule(t, w, "fast", fmt.Sprint("mail-", i), c.Now())
	}
	testenv.Eventually(t, 20*time.Second, "ten fast timers beside the slow one", func() bool { return fast.Load() == 10 })
	if slowDone.Load() {
		t.Fatal("the slow timer finished first: the test proves nothing")
	}
	close(release)
	testenv.Eventually(t, 10*time.Second, "the slow timer", slowDone.Load)
	testenv.Eventually(t, 10*time.Second, "an empty table", func() bool {
		var n int
		_ = w.Pool.QueryRow(context.Background(), `SELECT count(*) FROM timers`).Scan(&n)
		return n == 0
	})
}

//go:noinline
func crashingTimer(ctx context.Context, tx pgx.Tx, tm timer.Timer) error {
	var p *timer.Timer
	_ = p.Key // a real nil dereference
	return nil
}

// SE-9: a panicking timer is recovered, counted as a failure and, after
// MaxAttempts, parked with its panic and stack — the process lives, and a
// restart does not fire it again (no panic loop). An operator's retry
// fires it once it is fixed.
func TestPanickingTimerIsParkedEvenAcrossRestart_SE9(t *testing.T) {
	url := testenv.Database(t)
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	w := worker(t, url, c)
	w.MaxAttempts = 3
	reg := prometheus.NewRegistry()
	w.Metrics = timer.NewMetrics(reg)
	var calls atomic.Int32
	crash := func(ctx context.Context, tx pgx.Tx, tm timer.Timer) error {
		calls.Add(1)
		return crashingTimer(ctx, tx, tm)
	}
	w.Handle("crl", crash)
	schedule(t, w, "crl", "ica1", c.Now())
	for attempt := 1; attempt <= 3; attempt++ {
		if err := w.FireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != int32(attempt) {
			t.Fatalf("attempt %d: %d calls", attempt, calls.Load())
		}
		_ = c.Advance(time.Hour) // past any backoff
	}
	parked, err := timer.ListParked(context.Background(), w.Pool, 10)
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked = %+v (%v)", parked, err)
	}
	p := parked[0]
	if p.Kind != "crl" || p.Key != "ica1" || p.Attempts != 3 || !strings.Contains(p.LastError, "nil pointer") ||
		!strings.Contains(p.LastError, "crashingTimer") || !p.ParkedAt.Equal(c.Now().Add(-time.Hour)) {
		t.Fatalf("parked timer %+v", p)
	}
	if got := testutil.ToFloat64(w.Metrics.Parked); got != 1 {
		t.Fatalf("timers_parked = %v", got)
	}
	if got := testutil.ToFloat64(w.Metrics.Failed.WithLabelValues("crl")); got != 3 {
		t.Fatalf("timers_failed_total = %v", got)
	}
	w.Pool.Close() // the process restarts, with the same bug

	again := worker(t, url, c)
	again.Handle("crl", crash)
	_ = c.Advance(24 * time.Hour)
	if err := again.FireDue(context.Background()); err != nil || calls.Load() != 3 {
		t.Fatalf("a parked timer fired after the restart: %d calls (%v)", calls.Load(), err)
	}
	// Fixed, then retried by an operator.
	var fixed atomic.Int32
	again.Handle("crl", func(context.Context, pgx.Tx, timer.Timer) error { fixed.Add(1); return nil })
	if err := timer.RetryParked(context.Background(), again.Pool, "crl", "ica1", c.Now()); err != nil {
		t.Fatal(err)
	}
	if err := timer.RetryParked(context.Background(), again.Pool, "crl", "ica1", c.Now()); !errors.Is(err, timer.ErrNotParked) {
		t.Fatalf("second retry: %v", err)
	}
	if err := again.FireDue(context.Background()); err != nil || fixed.Load() != 1 {
		t.Fatalf("retried timer fired %d times (%v)", fixed.Load(), err)
	}
	if parked, _ := timer.ListParked(context.Background(), again.Pool, 10); len(parked) != 0 {
		t.Fatalf("still parked: %+v", parked)
	}
}

// A clock jump while a pass is firing (the dev clock moving while a slow
// timer runs) is not missed: FireDue fires what became due before it
// returns, and the Run loop, which only a jump can wake here, fires it too.
func TestClockJumpDuringAFiringPassIsNotMissed(t *testing.T) {
	for _, mode := range []string{"FireDue", "Run"} {
		t.Run(mode, func(t *testing.T) {
			c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
			w := worker(t, testenv.Database(t), c)
			w.Concurrency = 1
			w.Poll = time.Hour
			inside := make(chan struct{})
			release := make(chan struct{})
			w.Handle("first", func(context.Context, pgx.Tx, timer.Timer) error {
				close(inside)
				<-release
				return nil
			})
			var later atomic.Int32
			w.Handle("later", func(context.Context, pgx.Tx, timer.Timer) error { later.Add(1); return nil })
			schedule(t, w, "first", "a", c.Now())
			schedule(t, w, "later", "b", c.Now().Add(48*time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			if mode == "FireDue" {
				go func() { done <- w.FireDue(ctx) }()
			} else {
				go w.Run(ctx)
			}
			select {
			case <-inside:
			case <-time.After(20 * time.Second):
				t.Fatal("the first timer never fired")
			}
			_ = c.Advance(72 * time.Hour) // during the pass
			close(release)
			if mode == "FireDue" {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if later.Load() != 1 {
					t.Fatal("FireDue returned without firing what the jump made due")
				}
				return
			}
			testenv.Eventually(t, 10*time.Second, "the timer the jump made due", func() bool { return later.Load() == 1 })
		})
	}
}

// FireDue (the dev clock's "fire before you answer") also waits for a
// timer Run is firing at that moment.
func TestFireDueWaitsForTimersRunIsFiring(t *testing.T) {
	c := clock.NewOffset()
	w := worker(t, testenv.Database(t), c)
	inside := make(chan struct{})
	var finished atomic.Bool
	w.Handle("slow", func(context.Context, pgx.Tx, timer.Timer) error {
		close(inside)
		time.Sleep(300 * time.Millisecond) // the handler's own work, not a wait of the test
		finished.Store(true)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	schedule(t, w, "slow", "x", c.Now())
	<-inside
	if err := w.FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("FireDue returned while a due timer was still firing")
	}
}

// An outage (a transient error) is retried without counting toward
// parking; a fault is counted.
func TestTimerOutageIsNotCountedTowardParking(t *testing.T) {
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	w := worker(t, testenv.Database(t), c)
	w.MaxAttempts = 2
	var calls atomic.Int32
	w.Handle("mail", func(ctx context.Context, tx pgx.Tx, tm timer.Timer) error {
		calls.Add(1)
		return fmt.Errorf("smtp: %w", context.DeadlineExceeded) // an outage, by errs.Transient
	})
	schedule(t, w, "mail", "m1", c.Now())
	for range 5 {
		if err := w.FireDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = c.Advance(time.Minute)
	}
	var attempts int
	var parked bool
	if err := w.Pool.QueryRow(context.Background(), `SELECT attempts, parked_at IS NOT NULL FROM timers`).Scan(&attempts, &parked); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 5 || attempts != 0 || parked {
		t.Fatalf("calls %d attempts %d parked %v", calls.Load(), attempts, parked)
	}
}

// The timer metrics: due, oldest due age, fired, failed — named by
// Prometheus's conventions (the service label comes from the registerer).
func TestTimerMetrics(t *testing.T) {
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	w := worker(t, testenv.Database(t), c)
	reg := prometheus.NewRegistry()
	w.Metrics = timer.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"service": "x"}, reg))
	w.Handle("ok", func(context.Context, pgx.Tx, timer.Timer) error { return nil })
	w.Handle("bad", func(context.Context, pgx.Tx, timer.Timer) error { return errors.New("bad") })
	w.Handle("blocked", func(context.Context, pgx.Tx, timer.Timer) error { return nil })
	schedule(t, w, "ok", "1", c.Now().Add(-time.Minute))
	schedule(t, w, "bad", "1", c.Now())
	if err := w.FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if testutil.ToFloat64(w.Metrics.Fired.WithLabelValues("ok")) != 1 || testutil.ToFloat64(w.Metrics.Failed.WithLabelValues("bad")) != 1 {
		t.Fatal("fired/failed counters")
	}
	if testutil.ToFloat64(w.Metrics.Due) != 0 {
		t.Fatal("nothing should be due after a pass")
	}
	// Two timers fell due 90 and 30 seconds ago and nobody fired them yet.
	_ = c.Advance(10 * time.Minute) // the failed one (retry in 1s) is due too
	schedule(t, w, "blocked", "a", c.Now().Add(-90*time.Second))
	if _, err := w.Pool.Exec(context.Background(), `DELETE FROM timers WHERE kind = 'bad'`); err != nil {
		t.Fatal(err)
	}
	schedule(t, w, "blocked", "b", c.Now().Add(-30*time.Second))
	w.Observe(context.Background())
	if due, age := testutil.ToFloat64(w.Metrics.Due), testutil.ToFloat64(w.Metrics.OldestDueAge); due != 2 || age != 90 {
		t.Fatalf("due %v, oldest age %v", due, age)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
