package billing

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/text/encoding/japanese"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	billingapp "github.com/certlife/platform/services/billing/internal/app"
	"github.com/certlife/platform/services/billing/internal/domain"
)

const webhookSecret = "test-webhook-secret" // testenv's WEBHOOK_SECRET

func webhookEvent(typ, invoice string, amount int64, currency string) map[string]any {
	return map[string]any{"id": "evt_" + uuid.NewString(), "type": typ, "created": time.Now().Unix(),
		"data": map[string]any{"invoice": invoice, "amount": amount, "currency": currency, "payment_id": "pay_" + uuid.NewString()[:8]}}
}

// postWebhook signs body at the platform's now + skew and posts it.
func postWebhook(t *testing.T, p *testenv.Platform, body []byte, skew time.Duration) testenv.Response {
	t.Helper()
	sig := domain.Sign(webhookSecret, p.Clock.Now().Add(skew), body)
	return p.Do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", sig)
}

type exceptionList struct {
	Exceptions []struct {
		ID        string `json:"id"`
		Source    string `json:"source"`
		Kind      string `json:"kind"`
		InvoiceID string `json:"invoice_id"`
		Amount    int64  `json:"amount"`
		PayerName string `json:"payer_name"`
		Detail    string `json:"detail"`
	} `json:"exceptions"`
}

func exceptions(t *testing.T, p *testenv.Platform) exceptionList {
	t.Helper()
	var l exceptionList
	r := p.Do("GET", "/ops/v1/payment-exceptions", nil, "Authorization", "Bearer "+billingToken)
	if r.Status != 200 {
		t.Fatalf("exceptions: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &l)
	return l
}

func outcome(t *testing.T, r testenv.Response) string {
	t.Helper()
	var o struct {
		Outcome string `json:"outcome"`
	}
	if r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &o)
	return o.Outcome
}

// BI-2, SV-3: a signed payment.succeeded pays the invoice once and emits
// PaymentConfirmed{card} with the order and invoice; the same event again
// answers 200 with no second effect.
func TestWebhook_BI2_SV3_CardPaymentOnceAndReplay(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	inv := invoiced(t, p, order("cust-"+uuid.NewString()[:8]))
	body := jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY"))
	if o := outcome(t, postWebhook(t, p, body, 0)); o != billingapp.WebhookApplied {
		t.Fatalf("outcome %s", o)
	}
	pc := decode[events.PaymentConfirmed](t, p.WaitEvent(events.TypePaymentConfirmed, inv.OrderID, wait))
	if pc.Method != "card" || pc.OrderID != inv.OrderID || pc.InvoiceID != inv.InvoiceID || pc.CustomerID != inv.CustomerID ||
		pc.Amount != 52800 || pc.Currency != "JPY" || pc.Recipient.Email != inv.Recipient.Email || pc.ApplicationID != "" {
		t.Errorf("PaymentConfirmed %+v", pc)
	}
	// Replayed within the 5 minutes (same signature), and re-signed later.
	p.Advance(2 * time.Minute)
	if o := outcome(t, postWebhook(t, p, body, -time.Minute)); o != billingapp.WebhookDuplicate {
		t.Errorf("replay: %s", o)
	}
	if o := outcome(t, postWebhook(t, p, body, 0)); o != billingapp.WebhookDuplicate {
		t.Errorf("re-sent: %s", o)
	}
	// Another event paying the same invoice again is listed, not applied.
	second := jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY"))
	if o := outcome(t, postWebhook(t, p, second, 0)); o != billingapp.WebhookListed {
		t.Errorf("a second payment: %s", o)
	}
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 1 {
		t.Errorf("%d PaymentConfirmed, want 1", n)
	}
	l := exceptions(t, p)
	if len(l.Exceptions) != 1 || l.Exceptions[0].Kind != domain.ExceptionAlreadyPaid {
		t.Errorf("exceptions %+v", l)
	}
	var got map[string]any
	r := p.Do("GET", "/v1/invoices/"+inv.InvoiceID, nil, "Authorization", "Bearer "+customerToken(t, p, inv.CustomerID, true))
	r.JSON(t, &got)
	if got["status"] != "paid" || got["payment_method"] != "card" {
		t.Errorf("invoice after payment: %s", r.Body)
	}
}

// BI-2: a tampered body, a stale or future timestamp, another secret, no
// signature → 401 and nothing happens.
func TestWebhook_BI2_TamperedStaleUnsignedRefused(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	inv := invoiced(t, p, order("cust-"+uuid.NewString()[:8]))
	body := jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY"))
	now := p.Clock.Now()
	tampered := []byte(strings.Replace(string(body), `"amount":52800`, `"amount":1`, 1))
	for name, c := range map[string]struct {
		body []byte
		sig  string
	}{
		"tampered body": {tampered, domain.Sign(webhookSecret, now, body)},
		"stale":         {body, domain.Sign(webhookSecret, now.Add(-6*time.Minute), body)},
		"future":        {body, domain.Sign(webhookSecret, now.Add(6*time.Minute), body)},
		"other secret":  {body, domain.Sign("another-secret", now, body)},
		"no signature":  {body, ""},
		"malformed":     {body, "v1=abc"},
	} {
		h := []string{}
		if c.sig != "" {
			h = []string{"Webhook-Signature", c.sig}
		}
		if r := p.Do("POST", "/v1/webhooks/payments", c.body, h...); r.Status != 401 {
			t.Errorf("%s: %d %s, want 401", name, r.Status, r.Body)
		}
	}
	// A signed request older than 5 minutes by the injected clock.
	sig := domain.Sign(webhookSecret, p.Clock.Now(), body)
	p.Advance(5*time.Minute + time.Second)
	if r := p.Do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", sig); r.Status != 401 {
		t.Errorf("replayed after 5 minutes: %d", r.Status)
	}
	// Signed but not the event's shape.
	for name, b := range map[string]string{
		"unknown type":  `{"id":"evt_x","type":"payment.disputed","created":1,"data":{"invoice":"INV-1","amount":1,"currency":"JPY","payment_id":"p"}}`,
		"unknown field": `{"id":"evt_y","type":"payment.succeeded","created":1,"extra":1,"data":{"invoice":"INV-1","amount":1,"currency":"JPY","payment_id":"p"}}`,
		"no invoice":    `{"id":"evt_z","type":"payment.succeeded","created":1,"data":{"amount":1,"currency":"JPY","payment_id":"p"}}`,
		"not JSON":      `{"id":`,
	} {
		if r := postWebhook(t, p, []byte(b), 0); r.Status != 422 && r.Status != 400 {
			t.Errorf("%s: %d %s, want 4xx", name, r.Status, r.Body)
		}
	}
	if r := p.Do("POST", "/v1/webhooks/payments", "id=1", "Content-Type", "application/x-www-form-urlencoded"); r.Status != 415 {
		t.Errorf("form body: %d", r.Status)
	}
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 0 {
		t.Errorf("%d payments confirmed by refused webhooks", n)
	}
	if n := count(t, p, `SELECT count(*) FROM webhook_events`); n != 0 {
		t.Errorf("%d webhook events stored from refused requests", n)
	}
}

// BI-2: an amount or currency that does not fit the invoice is not
// applied but listed; a refund after payment is listed and announced
// (PaymentRefunded); payment.failed emits PaymentFailed; an unknown
// invoice is listed.
func TestWebhook_BI2_MismatchRefundFailure(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	customer := "cust-" + uuid.NewString()[:8]
	inv := invoiced(t, p, order(customer))

	for _, ev := range []map[string]any{
		webhookEvent("payment.succeeded", inv.Number, inv.Total-1, "JPY"),
		webhookEvent("payment.succeeded", inv.Number, inv.Total, "USD"),
		webhookEvent("payment.succeeded", "INV-209901-999999", inv.Total, "JPY"),
	} {
		if o := outcome(t, postWebhook(t, p, jsonBody(t, ev), 0)); o != billingapp.WebhookListed {
			t.Errorf("%v: %s", ev["data"], o)
		}
	}
	ev := webhookEvent("payment.failed", inv.Number, inv.Total, "JPY")
	ev["data"].(map[string]any)["failure_reason"] = "card_declined"
	if o := outcome(t, postWebhook(t, p, jsonBody(t, ev), 0)); o != billingapp.WebhookApplied {
		t.Errorf("failed: %s", o)
	}
	pf := decode[events.PaymentFailed](t, p.WaitEvent(events.TypePaymentFailed, inv.OrderID, wait))
	if pf.InvoiceID != inv.InvoiceID || pf.Reason != "card_declined" || pf.Recipient.Email == "" {
		t.Errorf("PaymentFailed %+v", pf)
	}
	kinds := map[string]bool{}
	for _, e := range exceptions(t, p).Exceptions {
		kinds[e.Kind] = true
	}
	for _, k := range []string{domain.ExceptionAmountMismatch, domain.ExceptionCurrencyMismatch, domain.ExceptionUnknownInvoice} {
		if !kinds[k] {
			t.Errorf("no %s exception listed: %v", k, kinds)
		}
	}
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 0 {
		t.Fatalf("a mismatching payment was applied")
	}

	// Paid, then refunded.
	outcome(t, postWebhook(t, p, jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY")), 0))
	p.WaitEvent(events.TypePaymentConfirmed, inv.OrderID, wait)
	if o := outcome(t, postWebhook(t, p, jsonBody(t, webhookEvent("payment.refunded", inv.Number, inv.Total, "JPY")), 0)); o != billingapp.WebhookApplied {
		t.Errorf("refund: %s", o)
	}
	pr := decode[events.PaymentRefunded](t, p.WaitEvent(events.TypePaymentRefunded, inv.OrderID, wait))
	if pr.InvoiceID != inv.InvoiceID || pr.Amount != inv.Total || pr.Currency != "JPY" {
		t.Errorf("PaymentRefunded %+v", pr)
	}
	refunds := 0
	for _, e := range exceptions(t, p).Exceptions {
		if e.Kind == domain.ExceptionRefund && e.InvoiceID == inv.InvoiceID {
			refunds++
		}
	}
	if refunds != 1 {
		t.Errorf("the refund is listed %d times", refunds)
	}
	// A failure after the refund changes nothing.
	if o := outcome(t, postWebhook(t, p, jsonBody(t, webhookEvent("payment.failed", inv.Number, inv.Total, "JPY")), 0)); o != billingapp.WebhookIgnored {
		t.Errorf("late failure: %s", o)
	}
}

func statement(lines ...string) string {
	return "date,payer_name,amount,reference\n" + strings.Join(lines, "\n") + "\n"
}

func upload(t *testing.T, p *testenv.Platform, body []byte) (testenv.Response, billingapp.StatementResult) {
	t.Helper()
	r := p.Do("POST", "/ops/v1/bank-statements", body, "Content-Type", "text/csv", "Authorization", "Bearer "+billingToken)
	var res billingapp.StatementResult
	if r.Status == 200 {
		r.JSON(t, &res)
	}
	return r, res
}

func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			r = '０' + (r - '0')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// BI-3, SV-3: one statement paying two invoices — one line a Shift_JIS
// export's full-width digits and half-width katakana — plus a partial
// payment, an overpayment and a line with no known reference. Matched
// lines pay their invoice (PaymentConfirmed bank_transfer); the others
// wait for an operator. Uploading the same statement again applies
// nothing twice.
func TestBankStatement_BI3_TwoInvoicesPartialOverpaymentDuplicate(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	customer := "cust-" + uuid.NewString()[:8]
	a := invoiced(t, p, order(customer))
	b := invoiced(t, p, order(customer))
	c := invoiced(t, p, order(customer))
	d := invoiced(t, p, order(customer))

	csv := statement(
		"2026/11/30,ｶ)ｻﾝﾌﾟﾙﾎｽﾃｨﾝｸﾞ,\"５２,８００\","+fullWidth(a.PaymentReference),
		"2026/11/30,"+b.PaymentReference+" ｶ)ｻﾝﾌﾟﾙ,52800,",
		"2026/11/30,ｶ)ｻﾝﾌﾟﾙ,50000,"+c.PaymentReference,
		"2026/11/30,ｶ)ｻﾝﾌﾟﾙ,60000,"+d.PaymentReference,
		"2026/11/30,ﾔﾏﾀﾞ ﾀﾛｳ,52800,1234567890",
	)
	sjis, err := japanese.ShiftJIS.NewEncoder().String(csv)
	if err != nil {
		t.Fatal(err)
	}
	r, res := upload(t, p, []byte(sjis))
	if r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	want := []string{domain.OutcomeMatched, domain.OutcomeMatched, domain.OutcomePartial, domain.OutcomeUnmatched, domain.OutcomeUnmatched}
	if res.Encoding != "Shift_JIS" || len(res.Lines) != len(want) {
		t.Fatalf("result %s", r.Body)
	}
	for i, w := range want {
		if res.Lines[i].Outcome != w {
			t.Errorf("line %d: %s (%s), want %s", res.Lines[i].Line, res.Lines[i].Outcome, res.Lines[i].Reason, w)
		}
	}
	if res.Lines[0].PayerName != "カ)サンプルホスティング" || res.Lines[0].Amount != 52800 || res.Lines[0].Invoice != a.Number {
		t.Errorf("line 2 normalised: %+v", res.Lines[0])
	}
	for _, inv := range []events.InvoiceIssued{a, b} {
		pc := decode[events.PaymentConfirmed](t, p.WaitEvent(events.TypePaymentConfirmed, inv.OrderID, wait))
		if pc.Method != "bank_transfer" || pc.InvoiceID != inv.InvoiceID || pc.Reference != inv.PaymentReference || pc.Amount != inv.Total {
			t.Errorf("PaymentConfirmed %+v", pc)
		}
	}
	kinds := map[string]int{}
	for _, e := range exceptions(t, p).Exceptions {
		kinds[e.Kind]++
	}
	if kinds[domain.ExceptionPartial] != 1 || kinds[domain.ExceptionOverpayment] != 1 || kinds[domain.ExceptionUnmatched] != 1 {
		t.Errorf("exceptions %v", kinds)
	}

	// The same statement again, as UTF-8 this time: every line a duplicate.
	r, res = upload(t, p, []byte(csv))
	if r.Status != 200 || res.Counts[domain.OutcomeDuplicate] != 5 || res.Counts[domain.OutcomeMatched] != 0 {
		t.Fatalf("second upload: %d %s", r.Status, r.Body)
	}
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 2 {
		t.Errorf("%d PaymentConfirmed after two uploads, want 2", n)
	}
	if n := len(exceptions(t, p).Exceptions); n != 3 {
		t.Errorf("%d exceptions after two uploads, want 3", n)
	}
	if n := count(t, p, `SELECT count(*) FROM audit_log WHERE action = 'billing.bank_statement.uploaded'`); n != 2 {
		t.Errorf("%d audit entries for 2 uploads", n)
	}

	// A later payment of a paid invoice is listed, not applied.
	_, res = upload(t, p, []byte(statement("2026-12-01,ｶ)ｻﾝﾌﾟﾙ,52800,"+a.PaymentReference)))
	if res.Lines[0].Outcome != domain.OutcomeUnmatched {
		t.Errorf("paying a paid invoice: %+v", res.Lines[0])
	}
}

// BI-3: an operator resolves the overpayment by applying it (the invoice
// is paid, audited) and dismisses the unknown transfer; a resolved
// exception cannot be resolved again.
func TestPaymentExceptions_BI3_Resolution(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	inv := invoiced(t, p, order("cust-"+uuid.NewString()[:8]))
	_, res := upload(t, p, []byte(statement("2026-11-30,ｶ)ｻﾝﾌﾟﾙ,53000,"+inv.PaymentReference, "2026-11-30,ﾀﾅｶ,1000,")))
	if res.Counts[domain.OutcomeUnmatched] != 2 {
		t.Fatalf("%+v", res)
	}
	l := exceptions(t, p)
	var over, unknown string
	for _, e := range l.Exceptions {
		switch e.Kind {
		case domain.ExceptionOverpayment:
			over = e.ID
		case domain.ExceptionUnmatched:
			unknown = e.ID
		}
	}
	resolve := func(id, body string, h ...string) testenv.Response {
		return p.Do("POST", "/ops/v1/payment-exceptions/"+id+"/resolution", body,
			append([]string{"Authorization", "Bearer " + billingToken}, h...)...)
	}
	if r := resolve(unknown, `{"resolution":"apply"}`); r.Status != 409 {
		t.Errorf("applying a payment without invoice: %d %s", r.Status, r.Body)
	}
	if r := resolve(over, `{"resolution":"pay"}`); r.Status != 422 {
		t.Errorf("bad resolution: %d", r.Status)
	}
	if r := resolve(over, `{"resolution":"apply","note":"refund 200 JPY by transfer"}`, "Idempotency-Key", "k1"); r.Status != 200 {
		t.Fatalf("apply: %d %s", r.Status, r.Body)
	}
	pc := decode[events.PaymentConfirmed](t, p.WaitEvent(events.TypePaymentConfirmed, inv.OrderID, wait))
	if pc.Method != "bank_transfer" {
		t.Errorf("%+v", pc)
	}
	if r := resolve(over, `{"resolution":"dismiss"}`); r.Status != 409 {
		t.Errorf("resolving twice: %d", r.Status)
	}
	if r := resolve(unknown, `{"resolution":"dismiss","note":"returned to the payer"}`); r.Status != 200 {
		t.Errorf("dismiss: %d %s", r.Status, r.Body)
	}
	if n := len(exceptions(t, p).Exceptions); n != 0 {
		t.Errorf("%d open exceptions after resolving both", n)
	}
	if r := resolve(uuid.NewString(), `{"resolution":"dismiss"}`); r.Status != 404 {
		t.Errorf("unknown exception: %d", r.Status)
	}
	if n := count(t, p, `SELECT count(*) FROM audit_log WHERE action = 'billing.payment_exception.resolved'`); n != 2 {
		t.Errorf("%d audit entries", n)
	}
}

// BI-3: a malformed statement is refused whole and changes nothing.
func TestBankStatement_BI3_MalformedChangesNothing(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	inv := invoiced(t, p, order("cust-"+uuid.NewString()[:8]))
	good := "2026-11-30,ｶ)ｻﾝﾌﾟﾙ,52800," + inv.PaymentReference
	for name, c := range map[string]struct {
		body string
		want int
	}{
		"empty":          {"", 400},
		"wrong header":   {"date,name,amount,ref\n" + good + "\n", 422},
		"one bad amount": {statement(good, "2026-11-30,X,abc,1"), 422},
		"one bad date":   {statement(good, "yesterday,X,100,1"), 422},
		"too few fields": {statement(good, "2026-11-30,X,100"), 422},
		"broken quotes":  {statement(good, "2026-11-30,\"X,100,1"), 400},
		"binary":         {"\x00\xff\xfe\x80\x81\x82", 400},
	} {
		r, _ := upload(t, p, []byte(c.body))
		if r.Status != c.want {
			t.Errorf("%s: %d %s, want %d", name, r.Status, r.Body, c.want)
		}
	}
	if r := p.Do("POST", "/ops/v1/bank-statements", statement(good), "Authorization", "Bearer "+billingToken); r.Status != 415 {
		t.Errorf("JSON content type: %d", r.Status)
	}
	if r := p.Do("POST", "/ops/v1/bank-statements", statement(good), "Content-Type", "text/csv", "Authorization", "Bearer "+reviewerToken); r.Status != 403 {
		t.Errorf("reviewer: %d", r.Status)
	}
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := count(t, p, `SELECT count(*) FROM bank_statements`) + count(t, p, `SELECT count(*) FROM payment_exceptions`); n != 0 {
		t.Errorf("refused statements left %d rows", n)
	}
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 0 {
		t.Errorf("a refused statement paid")
	}
	// The good line alone still pays.
	if _, res := upload(t, p, []byte(statement(good))); res.Counts[domain.OutcomeMatched] != 1 {
		t.Errorf("%+v", res)
	}
}

// BI-2: concurrent deliveries — the same event ID many times, and two
// different events paying one invoice — confirm the payment exactly once.
func TestWebhook_BI2_ConcurrentDeliveriesPayOnce(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	inv := invoiced(t, p, order("cust-"+uuid.NewString()[:8]))
	same := jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY"))
	other := jsonBody(t, webhookEvent("payment.succeeded", inv.Number, inv.Total, "JPY"))
	bodies := [][]byte{same, same, same, other, same, other}
	results := make(chan string, len(bodies))
	for _, b := range bodies {
		go func() {
			sig := domain.Sign(webhookSecret, p.Clock.Now(), b)
			r := testenv.Client{T: t, BaseURL: p.Server.URL}.Do("POST", "/v1/webhooks/payments", b, "Webhook-Signature", sig)
			var o struct {
				Outcome string `json:"outcome"`
			}
			_ = jsonUnmarshal(r.Body, &o)
			results <- fmt.Sprint(r.Status, " ", o.Outcome)
		}()
	}
	got := map[string]int{}
	for range bodies {
		got[<-results]++
	}
	if got["200 applied"] != 1 || got["200 duplicate"] != 4 || got["200 listed"] != 1 {
		t.Errorf("outcomes %v, want one applied, four duplicates and the other event listed (a second payment)", got)
	}
	p.WaitEvent(events.TypePaymentConfirmed, inv.OrderID, wait)
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(p.Events(events.TypePaymentConfirmed)); n != 1 {
		t.Errorf("%d PaymentConfirmed", n)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
