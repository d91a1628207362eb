package billing

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	billingapp "github.com/certlife/platform/services/billing/internal/app"
	"github.com/certlife/platform/services/billing/internal/domain"
)

// serverPrice is the price list of most tests: 48,000 JPY + 10 %.
var serverPrice = []domain.Price{{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 48000, TaxRate: 10}}

func putPrices(t *testing.T, p *testenv.Platform, prices []domain.Price) testenv.Response {
	t.Helper()
	return p.Do("PUT", "/ops/v1/prices", map[string]any{"prices": prices}, "Authorization", "Bearer "+billingToken)
}

func mustPrices(t *testing.T, p *testenv.Platform, prices []domain.Price) {
	t.Helper()
	if r := putPrices(t, p, prices); r.Status != 200 {
		t.Fatalf("PUT prices: %d %s", r.Status, r.Body)
	}
}

func order(customer string) events.OrderPlaced {
	return events.OrderPlaced{
		OrderID: uuid.NewString(), CustomerID: customer, Product: "server", Kind: events.OrderKindRenewal,
		Source: events.OrderSourceNotice, TermMonths: 12, OrganizationName: "株式会社サンプルホスティング",
		Recipient:  events.Recipient{Email: "taro@example.co.jp", Language: "ja", Name: "辺利 太郎"},
		CommonName: "www.example.co.jp", RenewalOf: uuid.NewString(), PlacedAt: time.Now(),
		Notice: &events.RenewalNotice{CertificateID: "cert-1", CommonName: "www.example.co.jp", DaysBefore: 60},
	}
}

// invoiced publishes an order and returns its InvoiceIssued.
func invoiced(t *testing.T, p *testenv.Platform, o events.OrderPlaced) events.InvoiceIssued {
	t.Helper()
	p.Publish(o, "")
	env := p.WaitEvent(events.TypeInvoiceIssued, o.OrderID, wait)
	return decode[events.InvoiceIssued](t, env)
}

func customerToken(t *testing.T, p *testenv.Platform, customer string, isCustomer bool) string {
	t.Helper()
	now := p.Clock.Now()
	tok, err := sessionSigner.Sign(session.Claims{SessionID: uuid.NewString(), Subject: customer, Customer: isCustomer,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// BI-4: operators keep the price list (billing or admin role), whole,
// validated, audited in the same transaction.
func TestPrices_BI4_PutGetValidatedAudited(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	var got struct {
		Prices []domain.Price `json:"prices"`
	}
	r := p.Do("GET", "/ops/v1/prices", nil, "Authorization", "Bearer "+billingToken)
	r.JSON(t, &got)
	if r.Status != 200 || len(got.Prices) != 1 || got.Prices[0] != serverPrice[0] {
		t.Fatalf("GET prices: %d %s", r.Status, r.Body)
	}
	if r := p.Ops("PUT", "/ops/v1/prices", map[string]any{"prices": append(serverPrice,
		domain.Price{Product: "server", TermMonths: 24, Currency: "JPY", Amount: 90000, TaxRate: 10})}); r.Status != 200 {
		t.Fatalf("admin PUT: %d %s", r.Status, r.Body)
	}
	if r := p.Do("PUT", "/ops/v1/prices", map[string]any{"prices": serverPrice}, "Authorization", "Bearer "+reviewerToken); r.Status != 403 {
		t.Errorf("reviewer PUT: %d", r.Status)
	}
	if r := p.Do("PUT", "/ops/v1/prices", map[string]any{"prices": serverPrice}); r.Status != 401 {
		t.Errorf("anonymous PUT: %d", r.Status)
	}
	for name, body := range map[string]any{
		"not ISO 4217":  map[string]any{"prices": []map[string]any{{"product": "server", "term_months": 12, "currency": "YEN", "amount": 1, "tax_rate": 10}}},
		"fractional":    `{"prices":[{"product":"server","term_months":12,"currency":"JPY","amount":480.5,"tax_rate":10}]}`,
		"unknown field": `{"prices":[],"discount":5}`,
		"no list":       `{}`,
		"zero":          map[string]any{"prices": []map[string]any{{"product": "server", "term_months": 12, "currency": "JPY", "amount": 0, "tax_rate": 10}}},
	} {
		if r := putPrices2(t, p, body); r.Status != 422 {
			t.Errorf("%s: %d %s, want 422", name, r.Status, r.Body)
		}
	}
	r = p.Do("GET", "/ops/v1/prices", nil, "Authorization", "Bearer "+billingToken)
	r.JSON(t, &got)
	if len(got.Prices) != 2 {
		t.Errorf("a refused PUT changed the list: %s", r.Body)
	}
	if n := count(t, p, `SELECT count(*) FROM audit_log WHERE action = 'billing.prices.replaced'`); n != 2 {
		t.Errorf("%d audit entries for 2 price changes", n)
	}
}

// waitInvoiceStatus waits until billing has handled the order's events
// up to the invoice being in status (the consumer is asynchronous; a
// positive fact is waited for, not assumed after Settle).
func waitInvoiceStatus(t *testing.T, p *testenv.Platform, orderID, status string) {
	t.Helper()
	testenv.Eventually(t, wait, "the invoice of order "+orderID+" "+status, func() bool {
		return count(t, p, `SELECT count(*) FROM invoices WHERE order_id = $1 AND status = $2`, orderID, status) == 1
	})
}

func putPrices2(t *testing.T, p *testenv.Platform, body any) testenv.Response {
	t.Helper()
	return p.Do("PUT", "/ops/v1/prices", body, "Authorization", "Bearer "+billingToken)
}

var invoiceNumber = regexp.MustCompile(`^INV-\d{6}-\d{6}$`)

// BI-4: one invoice per order, from the price list, tax once per rate
// rounded down, the registration number, a payment reference with a check
// digit; the notice is carried over; a redelivered OrderPlaced issues
// nothing more.
func TestInvoice_BI4_OneInvoicePerOrderFromPrices(t *testing.T) {
	p := start(t)
	mustPrices(t, p, []domain.Price{{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 47999, TaxRate: 10}})
	o := order("cust-" + uuid.NewString()[:8])
	p.Publish(o, "")
	env := p.WaitEvent(events.TypeInvoiceIssued, o.OrderID, wait)
	inv := decode[events.InvoiceIssued](t, env)
	if inv.Subtotal != 47999 || inv.Tax != 4799 || inv.Total != 52798 || inv.Currency != "JPY" {
		t.Errorf("amounts %d + %d = %d %s, want 47999 + 4799 = 52798 JPY", inv.Subtotal, inv.Tax, inv.Total, inv.Currency)
	}
	if len(inv.Taxes) != 1 || inv.Taxes[0] != (events.TaxSummary{Rate: 10, Taxable: 47999, Tax: 4799}) {
		t.Errorf("taxes %+v", inv.Taxes)
	}
	if !invoiceNumber.MatchString(inv.Number) || !domain.ValidPaymentReference(inv.PaymentReference) {
		t.Errorf("number %q reference %q", inv.Number, inv.PaymentReference)
	}
	if inv.RegistrationNumber != testRegistrationNumber || inv.IssuerName == "" || inv.BankAccount == "" {
		t.Errorf("issuer %q %q %q", inv.IssuerName, inv.RegistrationNumber, inv.BankAccount)
	}
	if inv.Notice == nil || inv.Notice.CertificateID != "cert-1" || inv.Recipient != o.Recipient || inv.OrganizationName != o.OrganizationName {
		t.Errorf("notice or recipient not carried over: %+v", inv)
	}
	if !inv.DueAt.Equal(inv.IssuedAt.Add(30 * 24 * time.Hour)) {
		t.Errorf("due %s issued %s", inv.DueAt, inv.IssuedAt)
	}
	p.PublishAgain(p.Events(events.TypeOrderPlaced)[0])
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(eventsOf(p, events.TypeInvoiceIssued, o.OrderID)); n != 1 {
		t.Errorf("%d invoices for one order delivered twice", n)
	}
	if n := count(t, p, `SELECT count(*) FROM invoices WHERE order_id = $1`, o.OrderID); n != 1 {
		t.Errorf("%d invoice rows", n)
	}
	// A second order gets another number and reference.
	o2 := order(o.CustomerID)
	inv2 := invoiced(t, p, o2)
	if inv2.Number == inv.Number || inv2.PaymentReference == inv.PaymentReference {
		t.Errorf("two invoices share %s / %s", inv.Number, inv.PaymentReference)
	}
}

// BI-4: no price, no invoice at 0: the order waits in the operators' list
// and is invoiced when the price list gets its price.
func TestInvoice_BI4_NoPriceWaitsForOperator(t *testing.T) {
	p := start(t)
	o := order("cust-" + uuid.NewString()[:8])
	p.Publish(o, "")
	waitInvoiceStatus(t, p, o.OrderID, domain.InvoiceAwaitingPrice)
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(eventsOf(p, events.TypeInvoiceIssued, o.OrderID)); n != 0 {
		t.Fatalf("an invoice without a price: %d", n)
	}
	var list struct {
		Invoices []struct {
			OrderID string `json:"order_id"`
			Status  string `json:"status"`
		} `json:"invoices"`
	}
	r := p.Do("GET", "/ops/v1/invoices?status=awaiting_price", nil, "Authorization", "Bearer "+billingToken)
	r.JSON(t, &list)
	if r.Status != 200 || len(list.Invoices) != 1 || list.Invoices[0].OrderID != o.OrderID || list.Invoices[0].Status != "awaiting_price" {
		t.Fatalf("waiting list: %d %s", r.Status, r.Body)
	}
	// A price for another term issues nothing.
	mustPrices(t, p, []domain.Price{{Product: "server", TermMonths: 24, Currency: "JPY", Amount: 90000, TaxRate: 10}})
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(eventsOf(p, events.TypeInvoiceIssued, o.OrderID)); n != 0 {
		t.Fatalf("issued at another term's price")
	}
	var put struct {
		Issued int `json:"invoices_issued"`
	}
	r = putPrices(t, p, serverPrice)
	r.JSON(t, &put)
	if put.Issued != 1 {
		t.Errorf("PUT prices issued %d waiting invoices, want 1: %s", put.Issued, r.Body)
	}
	inv := decode[events.InvoiceIssued](t, p.WaitEvent(events.TypeInvoiceIssued, o.OrderID, wait))
	if inv.Total != 52800 {
		t.Errorf("total %d", inv.Total)
	}
	r = p.Do("GET", "/ops/v1/invoices", nil, "Authorization", "Bearer "+billingToken)
	r.JSON(t, &list)
	if len(list.Invoices) != 0 {
		t.Errorf("still waiting: %s", r.Body)
	}
}

// BI-4, SPEC §5: the customer reads their invoice as JSON and as a PDF
// (Accept or .pdf); another customer's, or an applicant's session, gets 404.
func TestInvoice_BI4_CustomerReadsJSONAndPDF(t *testing.T) {
	p := start(t)
	mustPrices(t, p, serverPrice)
	customer := "cust-" + uuid.NewString()[:8]
	inv := invoiced(t, p, order(customer))
	tok := customerToken(t, p, customer, true)
	path := "/v1/invoices/" + inv.InvoiceID

	var got map[string]any
	r := p.Do("GET", path, nil, "Authorization", "Bearer "+tok)
	r.JSON(t, &got)
	if r.Status != 200 || got["number"] != inv.Number || got["total"] != float64(52800) || got["tax"] != float64(4800) ||
		got["registration_number"] != testRegistrationNumber || got["status"] != "open" || got["payment_reference"] != inv.PaymentReference {
		t.Fatalf("GET invoice: %d %s", r.Status, r.Body)
	}
	for _, req := range [][]string{{path, "Accept", "application/pdf"}, {path + ".pdf"}, {path + ".pdf?lang=en"}} {
		h := append([]string{"Authorization", "Bearer " + tok}, req[1:]...)
		r := p.Do("GET", req[0], nil, h...)
		if r.Status != 200 || r.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(r.Body), "%PDF-") {
			t.Fatalf("GET %v: %d %s", req, r.Status, r.Header.Get("Content-Type"))
		}
		text := testenv.PDFText(t, r.Body)
		for _, want := range []string{testRegistrationNumber, inv.Number, "4,800", "52,800"} {
			if !strings.Contains(text, want) {
				t.Errorf("%v: the PDF does not state %q:\n%s", req, want, text)
			}
		}
	}
	other := customerToken(t, p, "cust-other", true)
	applicant := customerToken(t, p, customer, false)
	for name, c := range map[string]struct {
		path, token string
		want        int
	}{
		"another customer":     {path, other, 404},
		"another's PDF":        {path + ".pdf", other, 404},
		"an applicant session": {path, applicant, 404},
		"no such invoice":      {"/v1/invoices/" + uuid.NewString(), tok, 404},
		"not an id":            {"/v1/invoices/INV-1", tok, 404},
		"no token":             {path, "", 401},
		"a forged token":       {path, tok[:len(tok)-4] + "AAAA", 401},
		"unknown language":     {path + ".pdf?lang=fr", tok, 422},
	} {
		h := []string{}
		if c.token != "" {
			h = []string{"Authorization", "Bearer " + c.token}
		}
		if r := p.Do("GET", c.path, nil, h...); r.Status != c.want {
			t.Errorf("%s: %d %s, want %d", name, r.Status, r.Body, c.want)
		}
	}
}

// SE-10, BI-4: a billing binary refuses to start without a valid
// registration number; the dev runners get a dev one.
func TestStartRequiresRegistrationNumber_BI4(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	ops, _ := opsauth.Parse("")
	build := func(reg string, dev bool) (*app.Unit, error) {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir, cfg.WebhookSecret = dbURL, n.URL(), t.TempDir(), "a-webhook-secret-of-some-length"
		cfg.SessionPublicKey = session.EncodePublicKey(sessionSigner.Public())
		cfg.InvoiceRegistrationNumber, cfg.DevMode = reg, dev
		return app.Build(context.Background(), Definition, app.Shared{Config: cfg, NC: nc, JS: js, Clock: clock.NewOffset(),
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Ops: ops})
	}
	for _, bad := range []string{"", "4010001012345", "T4010001012346"} {
		if _, err := build(bad, false); err == nil || !strings.Contains(err.Error(), "INVOICE_REGISTRATION_NUMBER") {
			t.Errorf("start with %q: %v, want a refusal naming INVOICE_REGISTRATION_NUMBER", bad, err)
		}
	}
	u, err := build("", true)
	if err != nil {
		t.Fatalf("dev start: %v", err)
	}
	u.Deps.Pool.Close()
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AC-2, AC-4: an ACME order draws on the customer's paid subscription;
// billing makes no invoice for it (and lists nothing as waiting), while
// a manual order placed after it is invoiced as usual.
func TestInvoice_AC4_ACMEOrderIsNotInvoiced(t *testing.T) {
	p := start(t)
	mustPrices(t, p, []domain.Price{{Product: "server", TermMonths: 12, Currency: "JPY", Amount: 48000, TaxRate: 10}})
	customer := "cust-" + uuid.NewString()[:8]
	acme := order(customer)
	acme.Source, acme.Kind, acme.Notice, acme.RenewalOf = events.OrderSourceACME, events.OrderKindNew, nil, ""
	p.Publish(acme, "")
	manual := order(customer)
	invoiced(t, p, manual)
	p.Settle(billingapp.ConsumerOrders, wait)
	if n := len(eventsOf(p, events.TypeInvoiceIssued, acme.OrderID)); n != 0 {
		t.Fatalf("an ACME order was invoiced %d times", n)
	}
	if n := count(t, p, `SELECT count(*) FROM billing.invoices WHERE order_id = $1`, acme.OrderID); n != 0 {
		t.Fatalf("an ACME order has %d invoice rows", n)
	}
}
