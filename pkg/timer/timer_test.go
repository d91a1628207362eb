package timer_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/pkg/timer"
)

func worker(t *testing.T, url string, c clock.Clock) *timer.Worker {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	pool, err := db.Open(context.Background(), url, "timertest", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &timer.Worker{Pool: pool, Clock: c, Log: log}
}

func schedule(t *testing.T, w *timer.Worker, kind, key string, due time.Time) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), w.Pool, func(tx pgx.Tx) error {
		return timer.Schedule(context.Background(), tx, kind, key, due, map[string]string{"k": key})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// PC-3 (durable timers): a timer fires when the injected clock passes its
// due time — not before — exactly once, and survives a new worker on the
// same database (a restart).
func TestTimerFiresByInjectedClockOnceAcrossRestart_PC3(t *testing.T) {
	url := testenv.Database(t)
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	first := worker(t, url, c)
	schedule(t, first, "cancel_window", "app-1", c.Now().Add(time.Hour))
	var fired atomic.Int32
	h := func(ctx context.Context, tx pgx.Tx, tm timer.Timer) error {
		if tm.Key != "app-1" || string(tm.Payload) == "" {
			t.Errorf("timer %+v", tm)
		}
		fired.Add(1)
		return nil
	}
	first.Handle("cancel_window", h)
	if err := first.FireDue(context.Background()); err != nil || fired.Load() != 0 {
		t.Fatalf("fired early: %d %v", fired.Load(), err)
	}
	first.Pool.Close() // the process dies

	second := worker(t, url, c)
	second.Handle("cancel_window", h)
	_ = c.Advance(time.Hour)
	if err := second.FireDue(context.Background()); err != nil || fired.Load() != 1 {
		t.Fatalf("fired %d times after the deadline (%v)", fired.Load(), err)
	}
	_ = c.Advance(time.Hour)
	_ = second.FireDue(context.Background())
	if fired.Load() != 1 {
		t.Fatalf("fired %d times", fired.Load())
	}
}

// A failing timer is retried later with backoff and does not block others.
func TestTimerFailureIsRetriedWithBackoff(t *testing.T) {
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	w := worker(t, testenv.Database(t), c)
	schedule(t, w, "flaky", "a", c.Now())
	schedule(t, w, "ok", "b", c.Now())
	var flaky, ok atomic.Int32
	w.Handle("flaky", func(context.Context, pgx.Tx, timer.Timer) error {
		if flaky.Add(1) == 1 {
			return errors.New("transient")
		}
		return nil
	})
	w.Handle("ok", func(context.Context, pgx.Tx, timer.Timer) error { ok.Add(1); return nil })
	if err := w.FireDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if flaky.Load() != 1 || ok.Load() != 1 {
		t.Fatalf("flaky %d ok %d", flaky.Load(), ok.Load())
	}
	_ = c.Advance(2 * time.Second)
	_ = w.FireDue(context.Background())
	if flaky.Load() != 2 {
		t.Fatalf("flaky retried %d times", flaky.Load())
	}
}

// The worker's loop wakes on a clock jump (CLOCK_CONTROL) without polling.
func TestTimerWorkerWakesOnClockJump(t *testing.T) {
	c := clock.NewOffset()
	w := worker(t, testenv.Database(t), c)
	w.Poll = time.Hour
	var fired atomic.Int32
	w.Handle("reminder", func(context.Context, pgx.Tx, timer.Timer) error { fired.Add(1); return nil })
	schedule(t, w, "reminder", "cert-1", c.Now().Add(30*24*time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	time.Sleep(100 * time.Millisecond)
	_ = c.Advance(31 * 24 * time.Hour)
	testenv.Eventually(t, 5*time.Second, "the reminder", func() bool { return fired.Load() == 1 })
}

// ScheduleIfEarlier only ever pulls a deadline forward (PC-5).
func TestScheduleIfEarlierNeverDelays_PC5(t *testing.T) {
	c := clock.NewFrozen(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	w := worker(t, testenv.Database(t), c)
	due := c.Now().Add(time.Hour)
	schedule(t, w, "cancel_window", "x", due)
	for _, d := range []time.Duration{2 * time.Hour, 20 * time.Minute} {
		err := pgx.BeginFunc(context.Background(), w.Pool, func(tx pgx.Tx) error {
			_, err := timer.ScheduleIfEarlier(context.Background(), tx, "cancel_window", "x", c.Now().Add(d))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var got time.Time
	if err := w.Pool.QueryRow(context.Background(), `SELECT due_at FROM timers`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(c.Now().Add(20 * time.Minute)) {
		t.Fatalf("due %s", got)
	}
}
