package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
)

const e2eWebhookSecret = "e2e-webhook-secret-0123456789"

// publish puts an event on the all-in-one's stream, as another service's
// outbox relay would.
func (e *e2e) publish(p events.Payload) {
	e.t.Helper()
	env, err := events.New(p, time.Now(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := env.Marshal()
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		e.t.Fatal(err)
	}
}

// customerSession signs a customer session with the all-in-one's session
// key (DATA_DIR/session.key), as intake's sign-in would.
func (e *e2e) customerSession(customer string) string {
	e.t.Helper()
	key, err := session.LoadOrCreateKey(filepath.Join(e.cfg.DataDir, "session.key"), false)
	if err != nil {
		e.t.Fatal(err)
	}
	now := time.Now()
	tok, err := session.NewSigner(key).Sign(session.Claims{SessionID: uuid.NewString(), Subject: customer, Customer: true,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// signWebhook is the payment processor's side of BI-2, written here
// independently of billing's code.
func signWebhook(secret string, body []byte) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// BI-2, BI-3, BI-4, SV-3 through the all-in-one: the operator prices the
// product; an order is invoiced with the dev registration number; the
// customer downloads the invoice PDF with a session from intake's key; a
// signed card payment and a bank statement each pay an invoice.
func TestInvoicesAndPaymentsEndToEnd_BI2_BI3_BI4_SV3(t *testing.T) {
	e := startE2E(t, func(c *app.Config) { c.WebhookSecret = e2eWebhookSecret }, nil)
	if r := e.ops("PUT", "/ops/v1/prices", map[string]any{"prices": []map[string]any{
		{"product": "server", "term_months": 12, "currency": "JPY", "amount": 48000, "tax_rate": 10}}}); r.Status != 200 {
		t.Fatalf("prices: %d %s", r.Status, r.Body)
	}
	customer := "cust-" + uuid.NewString()[:8]
	placed := func() events.InvoiceIssued {
		o := events.OrderPlaced{OrderID: uuid.NewString(), CustomerID: customer, Product: "server", Kind: events.OrderKindNew,
			Source: events.OrderSourceApplication, TermMonths: 12, OrganizationName: "Example Hosting K.K.",
			Recipient: events.Recipient{Email: "ops@example.jp", Language: "en"}, CommonName: "www.example.jp", PlacedAt: time.Now()}
		e.publish(o)
		inv, err := events.Decode[events.InvoiceIssued](e.waitEvent(events.TypeInvoiceIssued, o.OrderID))
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	card, bank := placed(), placed()
	if card.RegistrationNumber != app.DevInvoiceRegistrationNumber || card.Total != 52800 || card.Tax != 4800 {
		t.Fatalf("invoice %+v", card)
	}

	tok := e.customerSession(customer)
	r := e.do("GET", "/v1/invoices/"+card.InvoiceID+".pdf", nil, "Authorization", "Bearer "+tok)
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("PDF: %d %s", r.Status, r.Body)
	}
	if bin, err := exec.LookPath("pdftotext"); err == nil {
		path := filepath.Join(t.TempDir(), "invoice.pdf")
		if err := os.WriteFile(path, r.Body, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-layout", path, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{app.DevInvoiceRegistrationNumber, card.Number, "JPY 4,800", "JPY 52,800"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the PDF does not state %q:\n%s", want, out)
			}
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("pdftotext (poppler-utils) is required under CI: %v", err)
	}

	body, _ := json.Marshal(map[string]any{"id": "evt_" + uuid.NewString(), "type": "payment.succeeded", "created": time.Now().Unix(),
		"data": map[string]any{"invoice": card.Number, "amount": card.Total, "currency": "JPY", "payment_id": "pay_1"}})
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", signWebhook(e2eWebhookSecret, body)); r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", signWebhook("not-the-secret", body)); r.Status != 401 {
		t.Errorf("forged webhook: %d", r.Status)
	}
	pc, err := events.Decode[events.PaymentConfirmed](e.waitEvent(events.TypePaymentConfirmed, card.OrderID))
	if err != nil || pc.Method != "card" || pc.InvoiceID != card.InvoiceID {
		t.Fatalf("card PaymentConfirmed %+v %v", pc, err)
	}

	csv := "date,payer_name,amount,reference\n2026-11-30,ｴｸｻﾝﾌﾟﾙﾎｽﾃｨﾝｸﾞ,52800," + bank.PaymentReference + "\n"
	r = e.ops("POST", "/ops/v1/bank-statements", csv, "Content-Type", "text/csv")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"outcome":"matched"`) {
		t.Fatalf("statement: %d %s", r.Status, r.Body)
	}
	pc, err = events.Decode[events.PaymentConfirmed](e.waitEvent(events.TypePaymentConfirmed, bank.OrderID))
	if err != nil || pc.Method != "bank_transfer" || pc.Reference != bank.PaymentReference {
		t.Fatalf("bank PaymentConfirmed %+v %v", pc, err)
	}
	var view map[string]any
	r = e.do("GET", "/v1/invoices/"+bank.InvoiceID, nil, "Authorization", "Bearer "+tok)
	if err := json.Unmarshal(r.Body, &view); err != nil || view["status"] != "paid" {
		t.Errorf("invoice after the transfer: %d %s", r.Status, r.Body)
	}
}
