package validation

import (
	"net/http"
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/api"
)

// PC-6: with REVIEW_AUTO_APPROVE a final, paid application is approved at
// once by "auto", carrying the application snapshot.
func TestAutoApproveWhenFinalAndPaid_PC6(t *testing.T) {
	t.Parallel()
	p := start(t, true)
	a := application("984940947", "taro@example.co.jp")
	w := p.Publish(final(p, a), "")
	p.Publish(paid(a), w.CorrelationID)
	env := p.WaitEvent(events.TypeReviewApproved, a.ID, wait)
	ok := decode[events.ReviewApproved](t, env)
	if ok.Reviewer != "auto" || ok.ReviewID != reviewOf(t, p, a.ID) {
		t.Errorf("approval = %+v", ok)
	}
	if ok.Application.ID != a.ID || ok.Application.Applicant.Email != a.Applicant.Email ||
		ok.Application.Organization != a.Organization {
		t.Errorf("approval does not carry the application snapshot: %+v", ok.Application)
	}
	if env.CorrelationID != w.CorrelationID {
		t.Errorf("approval not correlated with the application")
	}
	p.Settle("validation-reviews", wait)
	if n := len(list(t, p, "pending")); n != 0 {
		t.Errorf("%d reviews left pending", n)
	}
	approved := list(t, p, "approved")
	if len(approved) != 1 || approved[0].Decision == nil || approved[0].Decision.By != "auto" {
		t.Errorf("approved list = %+v", approved)
	}
}

// PC-6, OP-1: without auto-approval a review waits for final acceptance
// and payment, then sits in the queue with its evidence; nothing is
// approved without an operator.
func TestReviewQueuedWithEvidence_PC6_OP1(t *testing.T) {
	t.Parallel()
	p := start(t, false)
	a := application("984940947", "taro@example.co.jp")
	p.Publish(final(p, a), "")
	id := reviewOf(t, p, a.ID)
	p.Settle("validation-reviews", wait)
	if n := len(list(t, p, "pending")); n != 0 {
		t.Fatalf("unpaid review is in the queue")
	}
	r := ops(t, p, "GET", "/ops/v1/reviews/"+id, nil)
	mustStatus(t, r, 200)
	var waiting api.Review
	r.JSON(t, &waiting)
	if waiting.Status != "waiting" || len(waiting.WaitingFor) != 1 || waiting.WaitingFor[0] != "payment" || waiting.Evidence.Payment.Paid {
		t.Errorf("unpaid review = %+v", waiting)
	}
	// Deciding an unpaid review is a conflict.
	mustStatus(t, ops(t, p, "POST", "/ops/v1/reviews/"+id+"/approve", nil), 409)

	p.Publish(paid(a), "")
	rv := pendingReview(t, p, a.ID)
	ev := rv.Evidence
	if rv.ID.String() != id || rv.Product != "client" || rv.Kind != "new" || rv.PendingAt == nil {
		t.Errorf("queued review = %+v", rv)
	}
	if ev.Organization == nil || *ev.Organization != a.Organization {
		t.Errorf("organization evidence = %+v", ev.Organization)
	}
	// PC-1: the reviewer sees the registration identifier with the
	// organization's other evidence, to verify it.
	r = ops(t, p, "GET", "/ops/v1/reviews/"+id, nil)
	if !strings.Contains(string(r.Body), `"identifier":"NTRJP-4010001012345"`) {
		t.Errorf("the review does not show the organization identifier: %s", r.Body)
	}
	if ev.Applicant == nil || ev.Applicant.Email != a.Applicant.Email || ev.Applicant.Address.PostalCode != "1040028" {
		t.Errorf("applicant evidence = %+v", ev.Applicant)
	}
	if !ev.Payment.Paid || ev.Payment.Method != "coupon" || ev.Payment.Reference != a.Coupon || ev.Payment.PaidAt == nil {
		t.Errorf("payment evidence = %+v", ev.Payment)
	}
	if ev.PreviousApprovals == nil || len(ev.PreviousApprovals) != 0 {
		t.Errorf("previous approvals = %v, want an empty list", ev.PreviousApprovals)
	}
	p.Settle("validation-reviews", wait)
	if n := len(eventsOf(p, events.TypeReviewApproved, a.ID)); n != 0 {
		t.Errorf("approved without an operator")
	}
}

// OP-1: an operator approves; the decision is recorded with who and when,
// ReviewApproved names the operator, and the organization's next review
// shows the approval as evidence.
func TestOperatorApprovesAndHistoryIsEvidence_OP1_PC6(t *testing.T) {
	t.Parallel()
	p := start(t, false)
	first := application("984940947", "taro@example.co.jp")
	p.Publish(final(p, first), "")
	p.Publish(paid(first), "")
	rv := pendingReview(t, p, first.ID)

	r := ops(t, p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil)
	mustStatus(t, r, 200)
	var decided api.Review
	r.JSON(t, &decided)
	if decided.Status != "approved" || decided.Decision == nil || decided.Decision.By != reviewerActor() || decided.Decision.At.IsZero() {
		t.Errorf("decided review = %+v", decided)
	}
	ok := decode[events.ReviewApproved](t, p.WaitEvent(events.TypeReviewApproved, first.ID, wait))
	if ok.Reviewer != reviewerActor() || ok.ReviewID != rv.ID.String() || ok.Application.ID != first.ID {
		t.Errorf("approval = %+v", ok)
	}
	// Deciding twice is a conflict, either way.
	mustStatus(t, ops(t, p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil), 409)
	mustStatus(t, ops(t, p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/reject", map[string]string{"reason": "late"}), 409)

	// The next application of the same organization shows the approval;
	// another organization's does not.
	second, other := application("984940947", "hanako@example.co.jp"), application("111111111", "x@example.com")
	for _, a := range []events.Application{second, other} {
		p.Publish(final(p, a), "")
		p.Publish(paid(a), "")
	}
	next := pendingReview(t, p, second.ID)
	if h := next.Evidence.PreviousApprovals; len(h) != 1 || h[0].ApplicationID != first.ID ||
		h[0].ApprovedBy != reviewerActor() || h[0].ApplicantEmail != "taro@example.co.jp" {
		t.Errorf("previous approvals = %+v", h)
	}
	if h := pendingReview(t, p, other.ID).Evidence.PreviousApprovals; len(h) != 0 {
		t.Errorf("another organization's history leaked: %+v", h)
	}
	p.Settle("validation-reviews", wait)
	if n := len(eventsOf(p, events.TypeReviewApproved, first.ID)); n != 1 {
		t.Errorf("ReviewApproved %d times", n)
	}
}

// OP-1: a rejection carries the reason and the applicant's address and
// language, so the applicant is told.
func TestOperatorRejectsWithReason_OP1(t *testing.T) {
	t.Parallel()
	p := start(t, false)
	a := application("984940947", "taro@example.co.jp")
	p.Publish(final(p, a), "")
	p.Publish(paid(a), "")
	rv := pendingReview(t, p, a.ID)
	reason := "The organization could not be confirmed — 組織を確認できませんでした"
	r := ops(t, p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/reject", map[string]string{"reason": "  " + reason + " "})
	mustStatus(t, r, 200)
	rej := decode[events.ReviewRejected](t, p.WaitEvent(events.TypeReviewRejected, a.ID, wait))
	if rej.Reason != reason || rej.ReviewID != rv.ID.String() || rej.Reviewer != reviewerActor() ||
		rej.Recipient != (events.Recipient{Email: "taro@example.co.jp", Language: "en", Name: "Veri Taro"}) { // NO-2: by name
		t.Errorf("rejection = %+v", rej)
	}
	rejected := list(t, p, "rejected")
	if len(rejected) != 1 || rejected[0].Decision == nil || rejected[0].Decision.Reason != reason || rejected[0].Decision.By != reviewerActor() {
		t.Errorf("rejected list = %+v", rejected)
	}
	if n := len(list(t, p, "pending")); n != 0 {
		t.Errorf("rejected review still pending")
	}
	p.Settle("validation-reviews", wait)
	if n := len(eventsOf(p, events.TypeReviewApproved, a.ID)); n != 0 {
		t.Errorf("rejected review was approved")
	}
}

// OP-1, SE-4, SE-5: bad requests are problems and change nothing.
func TestReviewRequestProblems_OP1(t *testing.T) {
	t.Parallel()
	p := start(t, false)
	a := application("984940947", "taro@example.co.jp")
	p.Publish(final(p, a), "")
	p.Publish(paid(a), "")
	id := pendingReview(t, p, a.ID).ID.String()
	base := "/ops/v1/reviews/" + id

	cases := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
	}{
		{"unknown id", "GET", "/ops/v1/reviews/0190a5c4-0000-7000-8000-000000000000", nil, nil, 404},
		{"malformed id", "GET", "/ops/v1/reviews/nope", nil, nil, 404},
		{"approve unknown", "POST", "/ops/v1/reviews/0190a5c4-0000-7000-8000-000000000000/approve", nil, nil, 404},
		{"reject unknown", "POST", "/ops/v1/reviews/0190a5c4-0000-7000-8000-000000000000/reject", map[string]string{"reason": "x"}, nil, 404},
		{"no reason", "POST", base + "/reject", map[string]string{}, nil, 422},
		{"blank reason", "POST", base + "/reject", map[string]string{"reason": "   "}, nil, 422},
		{"long reason", "POST", base + "/reject", map[string]string{"reason": strings.Repeat("理", 1001)}, nil, 422},
		{"unknown field", "POST", base + "/reject", map[string]string{"reason": "x", "note": "y"}, nil, 422},
		{"not json", "POST", base + "/reject", "reason=x", []string{"Content-Type", "text/plain"}, 415},
		{"broken json", "POST", base + "/reject", `{"reason":`, nil, 400},
		{"bad status", "GET", "/ops/v1/reviews?status=waiting", nil, nil, 422},
		{"bad limit", "GET", "/ops/v1/reviews?limit=0", nil, nil, 422},
	}
	for _, c := range cases {
		r := ops(t, p, c.method, c.path, c.body, c.headers...)
		if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", c.name, r.Status, r.Body, c.status)
		}
	}
	if r := p.Do("GET", "/ops/v1/reviews", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("without token: %d", r.Status)
	}
	if r := p.Do("POST", base+"/approve", nil, "Authorization", "Bearer "+billingToken); r.Status != http.StatusForbidden {
		t.Errorf("billing token: %d", r.Status)
	}
	// A reason of exactly 1000 characters is fine.
	if r := ops(t, p, "POST", base+"/reject", map[string]string{"reason": strings.Repeat("理", 1000)}); r.Status != 200 {
		t.Errorf("1000-character reason: %d %s", r.Status, r.Body)
	}
	p.Settle("validation-reviews", wait)
	if n := len(p.Events(events.TypeReviewRejected)); n != 1 {
		t.Errorf("%d rejections published, want only the valid one", n)
	}
}

// PC-6, EV-2: payment before final acceptance still queues the review
// once both are in.
func TestPaymentBeforeFinalAcceptance_PC6(t *testing.T) {
	t.Parallel()
	p := start(t, false)
	a := application("984940947", "taro@example.co.jp")
	p.Publish(paid(a), "")
	id := reviewOf(t, p, a.ID)
	p.Settle("validation-reviews", wait)
	r := ops(t, p, "GET", "/ops/v1/reviews/"+id, nil)
	var waiting api.Review
	r.JSON(t, &waiting)
	if waiting.Status != "waiting" || len(waiting.WaitingFor) != 1 || waiting.WaitingFor[0] != "final_acceptance" || !waiting.Evidence.Payment.Paid {
		t.Errorf("paid, not final review = %+v", waiting)
	}
	p.Publish(final(p, a), "")
	rv := pendingReview(t, p, a.ID)
	if rv.ID.String() != id || rv.Evidence.Organization == nil || !rv.Evidence.Payment.Paid {
		t.Errorf("review = %+v", rv)
	}
}

// EV-2, PC-6: each event stored twice on the stream has its effect once:
// one review, one automatic approval.
func TestRedeliveryHasNoSecondEffect_EV2_PC6(t *testing.T) {
	t.Parallel()
	p := start(t, true)
	a := application("984940947", "taro@example.co.jp")
	w := p.Publish(final(p, a), "")
	p.PublishAgain(w)
	pay := p.Publish(paid(a), "")
	p.PublishAgain(pay)
	// A second, distinct payment event for the same application does not
	// approve again either.
	p.Publish(paid(a), "")
	p.WaitEvent(events.TypeReviewApproved, a.ID, wait)
	p.Settle("validation-reviews", wait)
	if n := len(eventsOf(p, events.TypeReviewApproved, a.ID)); n != 1 {
		t.Errorf("ReviewApproved %d times", n)
	}
	if n := len(list(t, p, "approved")); n != 1 {
		t.Errorf("%d approved reviews", n)
	}
}
