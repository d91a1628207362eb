package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
)

// SV-9: a phone check's result is confirmed or failed, a failure says
// what happened, and it is recorded once.
func TestPhoneCheckDecide_SV9(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	p := PhoneCheck{Status: PhonePending}
	for _, c := range []struct{ result, note string }{{"maybe", ""}, {"failed", " "}, {"confirmed", strings.Repeat("x", MaxPhoneNote+1)}} {
		if err := p.Decide(c.result, c.note, "ops:1", now); !errs.Is(err, errs.KindInvalid) {
			t.Errorf("%q %q: %v", c.result, c.note, err)
		}
	}
	if err := p.Decide("confirmed", " called ", "ops:1", now); err != nil || p.Status != PhoneConfirmed || p.Note != "called" || p.DecidedBy != "ops:1" {
		t.Fatalf("confirmed: %+v %v", p, err)
	}
	if err := p.Decide("failed", "x", "ops:2", now); err != ErrPhoneDecided {
		t.Errorf("second result: %v", err)
	}
}

// PC-6, SV-7…SV-9: a server application's review waits for its checks as
// well as for final acceptance and payment; a failed check rejects it,
// paid or not, once.
func TestServerReviewWaitsForChecks_PC6(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := events.Application{ID: "a", Server: &events.ServerApplication{}}
	r := Review{Status: StatusWaiting}
	r.RecordFinal(a, now, "")
	r.RecordPayment(Payment{Method: "card", At: now}, "")
	if r.Promote(now) || strings.Join(r.WaitingFor(), ",") != "validation" {
		t.Fatalf("promoted without checks: %+v %v", r, r.WaitingFor())
	}
	r.RecordChecks(now)
	if !r.Promote(now) || r.Status != StatusPending {
		t.Fatalf("not promoted with checks: %+v", r)
	}
	w := Review{Status: StatusWaiting}
	if w.RejectFailedChecks("auto", "x", now) {
		t.Error("rejected a review without its application")
	}
	w.RecordFinal(a, now, "")
	if !w.RejectFailedChecks("auto", "mismatch", now) || w.Status != StatusRejected || w.Reason != "mismatch" {
		t.Errorf("unpaid failed checks: %+v", w)
	}
	if w.RejectFailedChecks("auto", "again", now) {
		t.Error("rejected twice")
	}
}

// SV-7: the mismatch detail names each field with both values.
func TestMismatchDetail_SV7(t *testing.T) {
	d := MismatchDetail("984940947", []Mismatch{{Field: "organization", Applied: "A KK", Registry: "A K.K."}})
	for _, want := range []string{"984940947", `"A KK"`, `"A K.K."`, "organization"} {
		if !strings.Contains(d, want) {
			t.Errorf("%q lacks %q", d, want)
		}
	}
}
