package retention_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/retention"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/pkg/timer"
)

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Retention (issue 6, item 3): a declared (table, column, period) is
// pruned by a durable timer following the injected clock — old rows go,
// in batches, young rows stay until they are old in their turn; an extra
// condition keeps rows it excludes. The inbox, a platform table, ages by
// the wall clock its rows were written with.
func TestRetentionPrunesOldRowsAndKeepsYoungOnes(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	pool, err := db.Open(ctx, testenv.Database(t), "rettest", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c := clock.NewFrozen(time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC))
	now := c.Now()
	if _, err := pool.Exec(ctx, `CREATE TABLE sessions (token int, expires_at timestamptz NOT NULL);
		CREATE TABLE deliveries (id int, status text, created_at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// 2,500 expired 40 days ago, 10 expiring yesterday.
	if _, err := pool.Exec(ctx, `INSERT INTO sessions SELECT g, $1 FROM generate_series(1, 2500) g`, now.Add(-40*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO sessions SELECT g, $1 FROM generate_series(1, 10) g`, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO deliveries VALUES (1, 'sent', $1), (2, 'pending', $1), (3, 'sent', $2)`,
		now.Add(-100*24*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inbox (consumer, event_id, handled_at) VALUES
		('c', gen_random_uuid(), now() - interval '50 days'), ('c', gen_random_uuid(), now())`); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	r := retention.NewRegistry(reg)
	r.Batch = 1000
	r.Interval = time.Hour
	for _, rule := range []retention.Rule{
		{Table: "sessions", Column: "expires_at", Period: 30 * 24 * time.Hour},
		{Table: "deliveries", Column: "created_at", Period: 90 * 24 * time.Hour, Where: "status <> 'pending'"},
		{Table: "inbox", Column: "handled_at", Period: 45 * 24 * time.Hour, Clock: clock.Real{}},
	} {
		if err := r.Register(rule); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Register(retention.Rule{Table: "sessions", Column: "expires_at", Period: time.Hour}); err == nil {
		t.Fatal("a second rule for one table was accepted")
	}
	if err := r.Register(retention.Rule{Table: "x; DROP TABLE sessions", Column: "at", Period: time.Hour}); err == nil {
		t.Fatal("a bad table name was accepted")
	}
	w := &timer.Worker{Pool: pool, Clock: c, Log: log}
	if err := r.Install(ctx, pool, w); err != nil {
		t.Fatal(err)
	}
	if err := w.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool, `SELECT count(*) FROM sessions`); got != 10 {
		t.Fatalf("sessions left: %d, want the 10 young ones", got)
	}
	if got := testutil.ToFloat64(r.Deleted().WithLabelValues("sessions")); got != 2500 {
		t.Fatalf("deleted metric %v", got)
	}
	if got := count(t, pool, `SELECT count(*) FROM deliveries`); got != 2 {
		t.Fatalf("deliveries left: %d, want the pending and the young one", got)
	}
	if got := count(t, pool, `SELECT count(*) FROM inbox WHERE handled_at > now() - interval '1 day'`); got != 1 ||
		count(t, pool, `SELECT count(*) FROM inbox`) != 1 {
		t.Fatal("the inbox was not pruned by its age")
	}
	// Each table's timer waits an interval for its next pass.
	if got := count(t, pool, `SELECT count(*) FROM timers WHERE kind = 'retention' AND due_at = '2027-03-01 13:00:00+00'`); got != 3 {
		t.Fatalf("%d retention timers rescheduled an interval ahead", got)
	}
	// Restarting installs nothing new and keeps the schedule.
	if err := r.Install(ctx, pool, w); err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool, `SELECT count(*) FROM timers WHERE kind = 'retention' AND due_at = '2027-03-01 13:00:00+00'`); got != 3 {
		t.Fatal("a restart moved the retention timers")
	}
	// 28 days later the young sessions are 29 days past: kept; a day more: gone.
	_ = c.Advance(28 * 24 * time.Hour)
	if err := w.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool, `SELECT count(*) FROM sessions`); got != 10 {
		t.Fatalf("sessions pruned too early: %d left", got)
	}
	_ = c.Advance(2 * 24 * time.Hour)
	if err := w.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool, `SELECT count(*) FROM sessions`); got != 0 {
		t.Fatalf("sessions past their period not pruned: %d left", got)
	}
}
