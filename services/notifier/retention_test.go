package notifier_test

import (
	"context"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/store"
)

// NO-4 with a bound: the delivery log of messages sent or given up before
// a cut-off is pruned, in batches; a pending message and a recent one stay.
func TestPruneDeliveriesKeepsPendingAndRecent_NO4(t *testing.T) {
	smtp := testenv.StartSMTP(t)
	var failing atomic.Bool
	smtp.Fail = failing.Load
	h := start(t, startOpts{smtp: smtp})
	cancelled := func(to string) string {
		id := newID()
		h.Publish(events.ApplicationCancelled{ApplicationID: id, Recipient: events.Recipient{Email: to, Language: "en"},
			CancelledAt: h.Clock.Now()}, "")
		return id
	}
	statusOf := func(to string) (status string, attempts int) {
		ds := h.deliveries(t, to, "")
		if len(ds) != 1 {
			return "", 0
		}
		return ds[0].Status, ds[0].Attempts
	}

	t0 := h.Clock.Now()
	h.WaitEvent(events.TypeNotificationSent, cancelled("old-sent@example.jp"), 10*time.Second)
	other, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(other.Public(), []byte("SOMECODE"))
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(events.CertificateCodeIssued{ApplicationID: newID(), CertificateID: newID(), ApplicantID: "a",
		Reason: events.CodeForCertificateReady, Recipient: events.Recipient{Email: "old-failed@example.jp", Language: "en"},
		SealedCode: sealed}, "")
	testenv.Eventually(t, 10*time.Second, "the old message given up", func() bool {
		s, _ := statusOf("old-failed@example.jp")
		return s == "failed"
	})
	failing.Store(true)
	cancelled("pending@example.jp")
	testenv.Eventually(t, 10*time.Second, "a pending message after a failed attempt", func() bool {
		s, n := statusOf("pending@example.jp")
		return s == "pending" && n >= 1
	})
	h.Advance(time.Hour)
	failing.Store(false)
	h.WaitEvent(events.TypeNotificationSent, cancelled("recent@example.jp"), 10*time.Second)

	ctx := context.Background()
	pool := h.Unit("notifier").Deps.Pool
	cutoff := t0.Add(30 * time.Minute)
	for i, want := range []int64{1, 1, 0} {
		n, err := store.PruneDeliveries(ctx, pool, cutoff, 1)
		if err != nil || n != want {
			t.Fatalf("prune call %d: %d %v, want %d (batches of 1)", i+1, n, err, want)
		}
	}
	rows, err := pool.Query(ctx, `SELECT recipient FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		left = append(left, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(left)
	if len(left) != 2 || left[0] != "pending@example.jp" || left[1] != "recent@example.jp" {
		t.Fatalf("left after pruning: %v, want the pending and the recent message", left)
	}
}
