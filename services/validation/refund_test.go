package validation

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

func (f *flowEnv) refund(a events.Application) {
	f.p.Publish(events.PaymentRefunded{OrderID: a.Server.OrderID, InvoiceID: "inv-" + a.ID[:8], CustomerID: a.Server.CustomerID,
		Amount: 50000, Currency: "JPY"}, "corr-"+a.ID[:8])
}

func (f *flowEnv) payAt(a events.Application, at time.Time) {
	f.p.Publish(events.PaymentConfirmed{OrderID: a.Server.OrderID, InvoiceID: "inv-" + a.ID[:8], CustomerID: a.Server.CustomerID,
		Method: "card", Reference: "ch_" + a.ID[:8] + at.Format("150405"), Amount: 50000, Currency: "JPY", PaidAt: at}, "corr-"+a.ID[:8])
}

// reviewUntil waits until the review, read by ID, satisfies cond.
func reviewUntil(t *testing.T, f *flowEnv, id, what string, cond func(api.Review) bool) api.Review {
	t.Helper()
	var got api.Review
	testenv.Eventually(t, wait, what, func() bool {
		r := ops(t, f.p, "GET", "/ops/v1/reviews/"+id, nil)
		mustStatus(t, r, http.StatusOK)
		got = api.Review{}
		r.JSON(t, &got)
		return cond(got)
	})
	return got
}

func notPending(t *testing.T, f *flowEnv, applicationID string) {
	t.Helper()
	for _, r := range list(t, f.p, domain.StatusPending) {
		if r.ApplicationID == applicationID {
			t.Fatalf("queued: %+v", r)
		}
	}
}

// BI-2, SV-3, PC-6: a refund (PaymentRefunded) makes the order unpaid. A
// queued review leaves the queue and waits for payment again — it shows
// the refund, and an operator's approval is a 409 payment-refunded, with
// nothing approved; a payment after the refund pays again and the review
// is queued and approved; a refund after the approval leaves it as it is.
// The latest fact wins whatever the order of delivery: a payment made
// before a refund and delivered after it does not pay the order.
func TestServerRefund_BI2_SV3_PC6(t *testing.T) {
	f := startFlow(t, flowOptions{})
	a := serverApplication(t, "cust-rf", registrySubject, "dns", "www.rf.plain.test")
	f.accept(a)
	in := f.domainOf(f.dcvStatus("cust-rf", a.ID), "www.rf.plain.test")
	f.txt("_pki-validation.www.rf.plain.test", in.Value)
	f.recheckedUntil("validated", func() bool { return len(eventsOf(f.p, events.TypeDomainValidated, a.ID)) > 0 })
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/phone-checks/"+f.phoneCheckOf(a.ID).ID.String(), map[string]string{"result": "confirmed"}), http.StatusOK)
	f.pay(a)
	rv := pendingReview(t, f.p, a.ID)

	// Refunded while queued: out of the queue, waiting for payment.
	f.refund(a)
	got := reviewUntil(t, f, rv.ID.String(), "out of the queue", func(r api.Review) bool { return r.Status == domain.StatusWaiting })
	if got.Evidence.Payment.Paid || got.Evidence.Payment.RefundedAt == nil || strings.Join(got.WaitingFor, ",") != "payment" || got.PendingAt != nil {
		t.Errorf("refunded review: %+v", got)
	}
	notPending(t, f, a.ID)
	r := ops(t, f.p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "payment-refunded") || !strings.Contains(string(r.Body), "refunded") {
		t.Fatalf("approval of a refunded review: %d %s", r.Status, r.Body)
	}
	if len(eventsOf(f.p, events.TypeReviewApproved, a.ID)) != 0 {
		t.Fatal("a refunded order was approved")
	}
	// A repeated refund changes nothing.
	f.refund(a)
	f.p.Settle(validationapp.ConsumerServer, wait)
	notPending(t, f, a.ID)

	// Paid again later: queued again, approved.
	f.p.Advance(time.Minute)
	f.pay(a)
	rv = pendingReview(t, f.p, a.ID)
	if !rv.Evidence.Payment.Paid || rv.Evidence.Payment.RefundedAt != nil {
		t.Errorf("paid again: %+v", rv.Evidence.Payment)
	}
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil), http.StatusOK)
	f.p.WaitEvent(events.TypeReviewApproved, a.ID, wait)

	// Refunded after the approval: left as it is (billing's operators).
	f.p.Advance(time.Minute)
	f.refund(a)
	f.p.Settle(validationapp.ConsumerServer, wait)
	if got := reviewUntil(t, f, rv.ID.String(), "approved", func(r api.Review) bool { return true }); got.Status != domain.StatusApproved || !got.Evidence.Payment.Paid {
		t.Errorf("approved, then refunded: %+v", got)
	}
	if n := len(eventsOf(f.p, events.TypeReviewRejected, a.ID)); n != 0 {
		t.Errorf("%d ReviewRejected after a refund of an approved review", n)
	}

	// Out of order: the refund arrives before the payment it undoes
	// (paid a minute before the refund): unpaid, not queued. A second
	// application of the customer reuses the checks (VA-5).
	b := serverApplication(t, "cust-rf", registrySubject, "dns", "www.rf.plain.test")
	f.accept(b)
	f.p.Advance(time.Minute)
	f.refund(b)
	f.p.Settle(validationapp.ConsumerServer, wait)
	f.payAt(b, f.p.Clock.Now().Add(-time.Minute))
	f.p.Settle(validationapp.ConsumerServer, wait)
	notPending(t, f, b.ID)
	// A payment after the refund pays.
	f.payAt(b, f.p.Clock.Now().Add(time.Second))
	pendingReview(t, f.p, b.ID)
}
