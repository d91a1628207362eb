package validation

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// PC-11: a reissue is approved without an operator even when
// REVIEW_AUTO_APPROVE is off — the CA vetted the organization and names
// it keeps (PC-9) — so its new code can go out within the hour.
func TestReissueApprovedWithoutOperator_PC11(t *testing.T) {
	p := start(t, false)
	a := application("984940947", "reissue@example.co.jp")
	a.Kind, a.Coupon, a.PreviousCertificateID, a.ReissueReason = events.KindReissue, "", uuid.NewString(), "superseded"
	p.Publish(final(p, a), a.ID)
	p.Publish(events.PaymentConfirmed{ApplicationID: a.ID, Method: "coverage", Reference: a.PreviousCertificateID}, a.ID)
	env := p.WaitEvent(events.TypeReviewApproved, a.ID, wait)
	ra, err := events.Decode[events.ReviewApproved](env)
	if err != nil || ra.Application.Kind != events.KindReissue || ra.Reviewer != "auto" {
		t.Fatalf("%+v %v", ra, err)
	}
	// A new application still waits for an operator.
	n := application("984940947", "new@example.co.jp")
	p.Publish(final(p, n), n.ID)
	p.Publish(paid(n), n.ID)
	testenv.Eventually(t, wait, "the new application in the pending queue", func() bool {
		return strings.Contains(string(ops(t, p, "GET", "/ops/v1/reviews?status=pending", nil).Body), n.ID)
	})
	for _, e := range p.Events(events.TypeReviewApproved) {
		if e.SubjectID == n.ID {
			t.Fatal("a new application was approved without an operator")
		}
	}
}
