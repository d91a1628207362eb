package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/testenv"
)

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), testenv.Database(t), "audited", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func record(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 29, 10, 0, 0, 123456789, time.UTC)
	for i := range n {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, at.Add(time.Duration(i)*time.Minute), "ops:abcd", "review.approved",
				"app-"+string(rune('a'+i)), map[string]any{"reason": "ok", "n": i, "z": []int{1, 2}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// OP-4: an intact chain verifies; an edited, a deleted and a reordered
// entry are each found and named.
func TestChainFindsTamperingOP4(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	record(t, pool, 5)
	rep, err := audit.Verify(ctx, pool)
	if err != nil || !rep.OK || rep.Entries != 5 || rep.HeadSeq != 5 {
		t.Fatalf("intact chain: %+v %v", rep, err)
	}

	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(seq int64, words string) {
		t.Helper()
		rep, err := audit.Verify(ctx, pool)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK || rep.BrokenSeq != seq || !strings.Contains(rep.Problem, words) {
			t.Fatalf("want broken at %d (%s), got %+v", seq, words, rep)
		}
	}

	exec(`UPDATE audit_log SET details = '{"reason":"forged"}' WHERE seq = 3`)
	expect(3, "edited")
	exec(`UPDATE audit_log SET details = '{"n": 2, "reason": "ok", "z": [1, 2]}' WHERE seq = 3`)
	if rep, _ := audit.Verify(ctx, pool); !rep.OK {
		t.Fatalf("restored chain (jsonb reformatted) must verify: %+v", rep)
	}

	exec(`UPDATE audit_log SET actor = 'ops:other' WHERE seq = 4`)
	expect(4, "edited")
	exec(`UPDATE audit_log SET actor = 'ops:abcd' WHERE seq = 4`)

	// Reorder: entries 2 and 3 trade places, each keeping its own hash.
	exec(`UPDATE audit_log SET seq = 100 WHERE seq = 2`)
	exec(`UPDATE audit_log SET seq = 2 WHERE seq = 3`)
	exec(`UPDATE audit_log SET seq = 3 WHERE seq = 100`)
	expect(2, "does not follow")
}

func TestDeletionFoundOP4(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	record(t, pool, 4)
	if _, err := pool.Exec(ctx, `DELETE FROM audit_log WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, pool)
	if err != nil || rep.OK || rep.BrokenSeq != 3 || !strings.Contains(rep.Problem, "deleted") {
		t.Fatalf("%+v %v", rep, err)
	}
}

// OP-4: an entry is written in the action's transaction: a rolled-back
// action leaves no entry, and the chain stays whole under concurrency.
func TestSameTransactionAndConcurrencyOP4(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	_ = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := audit.Record(ctx, tx, time.Now(), "", "x.done", "s", nil); err != nil {
			t.Fatal(err)
		}
		return context.Canceled // roll back
	})
	errc := make(chan error, 20)
	for i := range 20 {
		go func() {
			errc <- pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				return audit.Record(ctx, tx, time.Now(), "system", "x.done", "s", map[string]int{"i": i})
			})
		}()
	}
	for range 20 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(ctx, pool)
	if err != nil || !rep.OK || rep.Entries != 20 {
		t.Fatalf("%+v %v", rep, err)
	}
	list, err := audit.List(ctx, pool, audit.Filter{Action: "x.", After: 10, Limit: 5})
	if err != nil || len(list) != 5 || list[0].Seq != 11 || list[0].Actor != "system" {
		t.Fatalf("list %+v %v", list, err)
	}
}
