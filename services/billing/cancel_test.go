package billing

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	billingapp "github.com/certlife/platform/services/billing/internal/app"
	"github.com/certlife/platform/services/billing/internal/domain"
)

func orderCancelled(o events.OrderPlaced) events.OrderCancelled {
	return events.OrderCancelled{OrderID: o.OrderID, CustomerID: o.CustomerID, Reason: events.OrderCancelledDeclined, CancelledAt: time.Now()}
}

// BI-3, SV-2: a cancelled order's invoice is void: a card payment or a
// transfer for it is listed for an operator (to be refunded), never
// applied; a cancellation that overtakes its order leaves nothing to
// invoice; an order waiting for its price is not invoiced once cancelled;
// a paid order that is cancelled is listed for a refund.
func TestOrderCancelled_BI3_VoidsTheInvoice(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	customer := "cust-" + uuid.NewString()[:8]
	tok := customerToken(t, p, customer, true)

	// An open invoice, then the cancellation.
	o := order(customer)
	inv := invoiced(t, p, o)
	p.Publish(orderCancelled(o), "")
	waitInvoiceStatus(t, p, o.OrderID, domain.InvoiceVoid)
	var got map[string]any
	r := p.Do("GET", "/v1/invoices/"+inv.InvoiceID, nil, "Authorization", "Bearer "+tok)
	r.JSON(t, &got)
	if got["status"] != "void" {
		t.Fatalf("after the cancellation: %s", r.Body)
	}
	if o := outcome(t, postWebhook(t, p, jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY")), 0)); o != billingapp.WebhookListed {
		t.Errorf("card payment of a void invoice: %s", o)
	}
	_, res := upload(t, p, []byte(statement("2026-11-30,ｶ)ｻﾝﾌﾟﾙ,52800,"+inv.PaymentReference)))
	if res.Lines[0].Outcome != domain.OutcomeUnmatched {
		t.Errorf("transfer to a void invoice: %+v", res.Lines[0])
	}

	// The cancellation first, the order after it.
	early := order(customer)
	p.Publish(orderCancelled(early), "")
	waitInvoiceStatus(t, p, early.OrderID, domain.InvoiceVoid)
	p.Publish(early, "")

	// An order waiting for a price, cancelled, then priced.
	waiting := order(customer)
	waiting.TermMonths = 36
	p.Publish(waiting, "")
	waitInvoiceStatus(t, p, waiting.OrderID, domain.InvoiceAwaitingPrice)
	p.Publish(orderCancelled(waiting), "")
	waitInvoiceStatus(t, p, waiting.OrderID, domain.InvoiceVoid)
	mustPrices(t, p, append(serverPrice, domain.Price{Product: "server", TermMonths: 36, Currency: "JPY", Amount: 120000, TaxRate: 10}))

	// Paid, then cancelled.
	paid := order(customer)
	pinv := invoiced(t, p, paid)
	outcome(t, postWebhook(t, p, jsonBody(t, webhookEvent("payment.succeeded", pinv.Number, pinv.Total, "JPY")), 0))
	p.WaitEvent(events.TypePaymentConfirmed, paid.OrderID, wait)
	p.Publish(orderCancelled(paid), "")
	testenv.Eventually(t, wait, "the paid order's cancellation listed", func() bool {
		return count(t, p, `SELECT count(*) FROM payment_exceptions WHERE kind = 'cancelled_after_payment'`) == 1
	})
	p.Settle(billingapp.ConsumerOrders, wait)

	for _, id := range []string{early.OrderID, waiting.OrderID} {
		if n := len(eventsOf(p, events.TypeInvoiceIssued, id)); n != 0 {
			t.Errorf("order %s was invoiced after its cancellation", id)
		}
	}
	kinds := map[string]int{}
	for _, e := range exceptions(t, p).Exceptions {
		kinds[e.Kind]++
	}
	if kinds[domain.ExceptionVoid] != 2 || kinds[domain.ExceptionCancelledPaid] != 1 {
		t.Errorf("exceptions %v, want 2 void payments and 1 paid cancelled order", kinds)
	}
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 1 {
		t.Errorf("%d PaymentConfirmed, want only the paid order's", n)
	}
}
