package db_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/testenv"
)

func show(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	var v string
	if err := pool.QueryRow(context.Background(), "SHOW "+name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// SE-8: every pool bounds its sessions — a statement that runs too long is
// cancelled (a transient error), and a session left idle in a transaction
// is ended by the server, releasing its locks; a DATABASE_URL may set its
// own bounds.
func TestEveryPoolBoundsItsSessions_SE8(t *testing.T) {
	ctx := context.Background()
	url := testenv.Database(t)
	def, err := db.Open(ctx, url, "dbtest", nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	if st, idle := show(t, def, "statement_timeout"), show(t, def, "idle_in_transaction_session_timeout"); st != "30s" || idle != "1min" {
		t.Fatalf("defaults: statement_timeout %s, idle_in_transaction_session_timeout %s", st, idle)
	}

	tight, err := db.OpenWith(ctx, url, "dbtest", nil, quiet, db.Options{StatementTimeout: 200 * time.Millisecond, IdleInTransactionTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tight.Close()
	_, err = tight.Exec(ctx, `SELECT pg_sleep(5)`)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" || !errs.Transient(err) {
		t.Fatalf("a long statement: %v", err)
	}
	tx, err := tight.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the idle transaction's session to be ended", func() bool {
		var alive bool
		_ = def.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, pid).Scan(&alive)
		return !alive
	})
	if _, err := tx.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("the idle transaction survived")
	}
	_ = tx.Rollback(ctx)

	custom, err := db.Open(ctx, url+"&statement_timeout=5s", "dbtest", nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer custom.Close()
	if st := show(t, custom, "statement_timeout"); st != "5s" {
		t.Fatalf("the URL's statement_timeout was overridden: %s", st)
	}
}
