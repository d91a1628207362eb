package issuer_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// IS-5: one application yields at most one certificate, whatever the
// redeliveries: ReviewApproved published twice (two event IDs) makes one
// certificate and one CertificateReady.
func TestReviewApprovedTwiceMakesOneCertificate_IS5(t *testing.T) {
	e := start(t, nil)
	a := application("applicant-f", events.KindNew, "", "")
	e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:one"}, a.ID)
	e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:two"}, a.ID)
	testenv.Eventually(t, wait, "both approvals handled", func() bool {
		return e.count(`SELECT count(*) FROM inbox WHERE consumer = 'issuer-certificates'`) == 2
	})
	if n := e.count(`SELECT count(*) FROM certificates WHERE application_id = $1`, a.ID); n != 1 {
		t.Fatalf("%d certificates for one application", n)
	}
	e.WaitEvent(events.TypeCertificateReady, a.ID, wait)
	if got := e.eventsFor(events.TypeCertificateReady, a.ID); len(got) != 1 {
		t.Fatalf("%d CertificateReady events", len(got))
	}
}
