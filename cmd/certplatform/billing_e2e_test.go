package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
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
	"github.com/certlife/platform/pkg/testenv"
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
// independently of billing's code; at is the processor's clock (the
// platform's, which the dev clock may have moved ahead).
func signWebhook(secret string, at time.Time, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
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
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", signWebhook(e2eWebhookSecret, e.p.Clock.Now(), body)); r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", signWebhook("not-the-secret", e.p.Clock.Now(), body)); r.Status != 401 {
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

// importedPEM is a certificate of another vendor for cn, expiring at notAfter.
func importedPEM(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other Vendor CA", Organization: []string{"Other Vendor"}},
		NotBefore: notAfter.Add(-400 * 24 * time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	leaf := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Hosting K.K."},
		Locality: []string{"Chiyoda-ku"}, Province: []string{"Tokyo"}, Country: []string{"JP"}}, DNSNames: []string{cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// pdfAttachment returns the first application/pdf part of a message.
func pdfAttachment(t *testing.T, raw []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ct string, h map[string][]string, body io.Reader) []byte
	walk = func(ct string, h map[string][]string, body io.Reader) []byte {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err != nil {
					return nil
				}
				if b := walk(p.Header.Get("Content-Type"), p.Header, p); b != nil {
					return b
				}
			}
		}
		if mt != "application/pdf" {
			return nil
		}
		data, _ := io.ReadAll(body)
		if strings.EqualFold(textproto.MIMEHeader(h).Get("Content-Transfer-Encoding"), "base64") {
			out, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(data)), ""))
			if err != nil {
				t.Fatalf("attachment: %v", err)
			}
			return out
		}
		return data
	}
	return walk(msg.Header.Get("Content-Type"), msg.Header, msg.Body)
}

// SV-1, SV-3, BI-2, BI-3, BI-4 through every service of the all-in-one:
// a certificate bought elsewhere expiring in 89 days is imported; the
// renewal notice mail carries the invoice PDF, which states the
// registration number and the tax; a signed card payment brings the
// application guidance mail. A second one is paid by a bank statement.
func TestImportedRenewalInvoicedAndPaidEndToEnd_SV1_SV3_BI2_BI3_BI4(t *testing.T) {
	e := startE2E(t, func(c *app.Config) { c.WebhookSecret = e2eWebhookSecret }, nil)
	if r := e.ops("PUT", "/ops/v1/prices", map[string]any{"prices": []map[string]any{
		{"product": "server", "term_months": 12, "currency": "JPY", "amount": 48000, "tax_rate": 10}}}); r.Status != 200 {
		t.Fatalf("prices: %d %s", r.Status, r.Body)
	}
	noticed := func(email, cn string) (events.InvoiceIssued, []byte) {
		t.Helper()
		r := e.ops("POST", "/ops/v1/certificates/import", map[string]any{
			"pem":      importedPEM(t, cn, time.Now().Add(89*24*time.Hour).Truncate(time.Second)),
			"customer": map[string]any{"email": email, "name": "Example Hosting K.K.", "language": "ja"},
			"organization": map[string]any{"duns": "123456789", "name_en": "Example Hosting K.K.",
				"address": map[string]any{"street": "1-1 Marunouchi", "city": "Chiyoda-ku", "state": "Tokyo", "postal_code": "100-0005", "country": "JP"}},
		})
		if r.Status != 201 {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
		var inv events.InvoiceIssued
		testenv.Eventually(t, 60*time.Second, "the invoice of "+email, func() bool {
			e.advance("1h") // the notifier's reminder sweep runs on the platform clock
			for _, env := range e.events(events.TypeInvoiceIssued) {
				if v, err := events.Decode[events.InvoiceIssued](env); err == nil && v.Recipient.Email == email {
					inv = v
					return true
				}
			}
			return false
		})
		if inv.Notice == nil || inv.RegistrationNumber != app.DevInvoiceRegistrationNumber || inv.Tax != 4800 || inv.Total != 52800 {
			t.Fatalf("invoice %+v", inv)
		}
		var pdf []byte
		testenv.Eventually(t, 30*time.Second, "the notice mail with its invoice to "+email, func() bool {
			for _, m := range e.smtp.To(email) {
				if pdf = pdfAttachment(t, m.Raw); pdf != nil {
					return true
				}
			}
			return false
		})
		return inv, pdf
	}

	cardEmail := "card-" + uuid.NewString()[:8] + "@example.co.jp"
	inv, pdf := noticed(cardEmail, "www.card-example.co.jp")
	if bin, err := exec.LookPath("pdftotext"); err == nil {
		path := filepath.Join(t.TempDir(), "invoice.pdf")
		if err := os.WriteFile(path, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", path, "-").Output()
		if err != nil {
			t.Fatalf("the attached PDF does not open: %v", err)
		}
		for _, want := range []string{app.DevInvoiceRegistrationNumber, inv.Number, "消費税（10%）", "4,800", "52,800"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the attached invoice does not state %q:\n%s", want, out)
			}
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("pdftotext (poppler-utils) is required under CI: %v", err)
	}
	before := len(e.smtp.To(cardEmail))
	body, _ := json.Marshal(map[string]any{"id": "evt_" + uuid.NewString(), "type": "payment.succeeded", "created": time.Now().Unix(),
		"data": map[string]any{"invoice": inv.Number, "amount": inv.Total, "currency": inv.Currency, "payment_id": "pay_e2e"}})
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", signWebhook(e2eWebhookSecret, e.p.Clock.Now(), body)); r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	guidance := func(email, orderID string, after int) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, "the application guidance mail to "+email, func() bool {
			ms := e.smtp.To(email)
			for _, m := range ms[min(after, len(ms)):] {
				if strings.Contains(m.Body, orderID) && pdfAttachment(t, m.Raw) == nil {
					return true
				}
			}
			return false
		})
	}
	guidance(cardEmail, inv.OrderID, before)

	bankEmail := "bank-" + uuid.NewString()[:8] + "@example.co.jp"
	binv, _ := noticed(bankEmail, "www.bank-example.co.jp")
	before = len(e.smtp.To(bankEmail))
	csv := "date,payer_name,amount,reference\n2026-11-30," + binv.PaymentReference + " ｶ)ｴｸｻﾝﾌﾟﾙﾎｽﾃｨﾝｸﾞ,\"52,800\",\n"
	if r := e.ops("POST", "/ops/v1/bank-statements", csv, "Content-Type", "text/csv"); r.Status != 200 || !strings.Contains(string(r.Body), `"matched":1`) {
		t.Fatalf("statement: %d %s", r.Status, r.Body)
	}
	guidance(bankEmail, binv.OrderID, before)
}
