package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// PC-6, OP-1: a review enters the queue only once it is both finally
// accepted and paid, in either order; only a pending review is decided,
// and only once.
func TestReviewLifecycle_PC6_OP1(t *testing.T) {
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	r := Review{ID: uuid.New(), Status: StatusWaiting}
	if err := r.Decide(true, "op", "", now); err != ErrNotPending {
		t.Fatalf("decide while waiting: %v, want ErrNotPending", err)
	}
	r.RecordPayment(Payment{Method: "coupon", At: now}, "corr-1")
	if r.Promote(now) {
		t.Fatal("promoted without final acceptance")
	}
	if got := r.WaitingFor(); len(got) != 1 || got[0] != "final_acceptance" {
		t.Fatalf("waiting for %v", got)
	}
	r.RecordFinal(events.Application{ID: "a1", Kind: events.KindNew}, now, "corr-2")
	if !r.Promote(now) || r.Status != StatusPending || r.CorrelationID != "corr-1" {
		t.Fatalf("after both facts: %+v", r)
	}
	// Evidence is frozen once operators can see the review.
	r.RecordFinal(events.Application{ID: "a1", Kind: events.KindRenewal}, now, "")
	if r.Application.Kind != events.KindNew {
		t.Fatal("the snapshot changed after the review became pending")
	}
	if err := r.Decide(false, "op", "no such company", now); err != nil || r.Status != StatusRejected {
		t.Fatalf("reject: %v %s", err, r.Status)
	}
	if err := r.Decide(true, "op", "", now); err != ErrDecided {
		t.Fatalf("second decision: %v, want ErrDecided", err)
	}
	if !errs.Is(ErrDecided, errs.KindConflict) || !errs.Is(ErrNotPending, errs.KindConflict) {
		t.Fatal("decision refusals must be conflicts")
	}
}

// OP-1: a rejection needs a reason of at most MaxReasonLen characters.
func TestRejectionReason_OP1(t *testing.T) {
	if r, err := RejectionReason("  wrong company code \n"); err != nil || r != "wrong company code" {
		t.Fatalf("%q %v", r, err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("理", MaxReasonLen+1)} {
		if _, err := RejectionReason(bad); !errs.Is(err, errs.KindInvalid) {
			t.Errorf("%.20q: %v, want invalid", bad, err)
		}
	}
	if _, err := RejectionReason(strings.Repeat("理", MaxReasonLen)); err != nil {
		t.Errorf("exactly %d characters refused: %v", MaxReasonLen, err)
	}
}

// OP-1: the evidence lists other approvals of the organization, not the
// review itself, and at most MaxPreviousApprovals.
func TestPreviousApprovals_OP1(t *testing.T) {
	r := Review{ID: uuid.New()}
	history := []Approval{{ReviewID: r.ID}}
	for range MaxPreviousApprovals + 5 {
		history = append(history, Approval{ReviewID: uuid.New()})
	}
	got := r.PreviousApprovals(history)
	if len(got) != MaxPreviousApprovals {
		t.Fatalf("%d approvals, want %d", len(got), MaxPreviousApprovals)
	}
	for _, a := range got {
		if a.ReviewID == r.ID {
			t.Fatal("the review lists itself")
		}
	}
	if got := r.PreviousApprovals(nil); got == nil || len(got) != 0 {
		t.Fatalf("no history: %v, want an empty list", got)
	}
}

// BI-2, PC-6: a refund withdraws a payment made at or before it; a queued
// review leaves the queue, and its approval names the refund; a later
// payment pays again; a decided review is left as it is.
func TestReviewRefund_BI2_PC6(t *testing.T) {
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	r := Review{ID: uuid.New(), Status: StatusWaiting}
	r.RecordFinal(events.Application{ID: "a1", Kind: events.KindNew}, now, "c")
	if got := r.RecordRefund(now); got != RefundIgnored {
		t.Fatalf("refund of an unpaid review: %q", got)
	}
	r.RecordPayment(Payment{Method: "card", At: now}, "c")
	if got := r.RecordRefund(now.Add(-time.Second)); got != RefundIgnored || r.Payment == nil {
		t.Fatalf("a refund older than the payment: %q %+v", got, r)
	}
	if !r.Promote(now) {
		t.Fatal("not queued")
	}
	if got := r.RecordRefund(now); got != RefundDequeued || r.Status != StatusWaiting || r.Payment != nil || r.PendingAt != nil || r.RefundedAt == nil {
		t.Fatalf("refund while queued: %q %+v", got, r)
	}
	if err := r.Decide(true, "op", "", now); err != ErrRefunded || !errs.Is(err, errs.KindConflict) {
		t.Fatalf("approval after a refund: %v", err)
	}
	r.RecordPayment(Payment{Method: "card", At: now.Add(time.Minute)}, "c")
	if !r.Promote(now) || r.RefundedAt != nil {
		t.Fatalf("paid again: %+v", r)
	}
	if err := r.Decide(true, "op", "", now); err != nil {
		t.Fatal(err)
	}
	if got := r.RecordRefund(now.Add(time.Hour)); got != RefundDecided || r.Status != StatusApproved || r.Payment == nil {
		t.Fatalf("refund after approval: %q %+v", got, r)
	}
}
