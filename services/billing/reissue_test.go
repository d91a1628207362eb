package billing

import (
	"testing"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// PC-11: a reissue carries no coupon; its final acceptance is confirmed
// as paid by the replaced certificate's coverage, so review can proceed.
func TestReissuePaidByCoverage_PC11(t *testing.T) {
	p := start(t)
	prev := uuid.NewString()
	a := events.Application{ID: uuid.NewString(), ApplicantID: uuid.NewString(), Product: events.ProductClient,
		Kind: events.KindReissue, Language: "ja", PreviousCertificateID: prev, ReissueReason: "superseded",
		Applicant: events.Applicant{Email: "r@example.co.jp"}}
	p.Publish(events.CancelWindowClosed{Application: a, ClosedAt: p.Clock.Now(), Reason: "immediate"}, a.ID)
	env := p.WaitEvent(events.TypePaymentConfirmed, a.ID, wait)
	pc, err := events.Decode[events.PaymentConfirmed](env)
	if err != nil || pc.Method != "coverage" || pc.Reference != prev {
		t.Fatalf("%+v %v", pc, err)
	}
	// A new application without a coupon is not confirmed as paid.
	b := a
	b.ID, b.Kind, b.PreviousCertificateID = uuid.NewString(), events.KindNew, ""
	p.Publish(events.CancelWindowClosed{Application: b, ClosedAt: p.Clock.Now(), Reason: "deadline"}, b.ID)
	p.WaitEvent(events.TypeCancelWindowClosed, b.ID, wait)
	for _, e := range p.Events(events.TypePaymentConfirmed) {
		if e.SubjectID == b.ID {
			t.Fatal("a coupon-less new application was confirmed as paid")
		}
	}
}
