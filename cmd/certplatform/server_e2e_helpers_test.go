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
	"net"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// The server customer's organization as the registry knows it (SV-7):
// the CSRs and the imports of these tests use the same English record.
var serverDN = pkix.Name{Organization: []string{"Certlife Hosting K.K."}, Locality: []string{"Chuo-ku"},
	Province: []string{"Tokyo"}, Country: []string{"JP"}}

const (
	serverDUNS     = "690001234"
	serverPassword = "a customer password 123"
	serverRegistry = "number,name_en,street,city,state,postal_code,country,phone\n" +
		serverDUNS + ",Certlife Hosting K.K.,2-8-1 Yaesu,Chuo-ku,Tokyo,104-0028,JP,+81 3-5000-2222\n"
	serverPriceTotal = 52800
)

func serverOrganization() map[string]any {
	return map[string]any{"duns": serverDUNS, "name_en": "Certlife Hosting K.K.",
		"address": map[string]any{"street": "2-8-1 Yaesu", "city": "Chuo-ku", "state": "Tokyo", "postal_code": "104-0028", "country": "JP"}}
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// boughtElsewhere is a server certificate from a throwaway CA made here,
// valid until notAfter, for cn and names.
func boughtElsewhere(t testing.TB, cn string, names []string, notBefore, notAfter time.Time) string {
	t.Helper()
	caKey := p256(t)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other Vendor CA", Organization: []string{"Other Vendor"}},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	subject := serverDN
	subject.CommonName = cn
	leaf := &x509.Certificate{SerialNumber: serial, Subject: subject, DNSNames: append([]string{cn}, names...),
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &p256(t).PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// serverCSR is a PEM CSR for cn with subject's O/L/ST/C (and OU when
// given), signed by key.
func serverCSR(t testing.TB, subject pkix.Name, cn string, key any) string {
	t.Helper()
	subject.CommonName = cn
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// serverApplicationBody is SPEC §5's server application for an order.
func serverApplicationBody(order, csr, techEmail string, domains []string, method string) map[string]any {
	b := map[string]any{
		"product": "server", "term_months": 12, "language": "en",
		"organization":      serverOrganization(),
		"csr":               csr,
		"domains":           domains,
		"dcv":               map[string]any{"method": method},
		"technical_contact": map[string]any{"name": "Tech Taro", "email": techEmail, "phone": "+81312345678"},
	}
	if order != "" {
		b["order"] = order
	}
	return b
}

// importCertificate registers a certificate bought elsewhere with its
// customer (SV-1) and returns the certificate and customer IDs.
func (e *e2e) importCertificate(pemCert, email string) (certID, customerID string) {
	e.t.Helper()
	return e.importCertificateIn(pemCert, email, "en")
}

func (e *e2e) importCertificateIn(pemCert, email, language string) (certID, customerID string) {
	e.t.Helper()
	r := e.ops("POST", "/ops/v1/certificates/import", map[string]any{
		"pem":          pemCert,
		"customer":     map[string]any{"email": email, "name": "Certlife Hosting K.K.", "language": language},
		"organization": serverOrganization(),
	}, "Idempotency-Key", uuid.NewString())
	if r.Status != 201 {
		e.t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	var out struct {
		CertificateID string `json:"certificate_id"`
		CustomerID    string `json:"customer_id"`
	}
	r.JSON(e.t, &out)
	return out.CertificateID, out.CustomerID
}

func (e *e2e) setPrices() {
	e.t.Helper()
	if r := e.ops("PUT", "/ops/v1/prices", map[string]any{"prices": []map[string]any{
		{"product": "server", "term_months": 12, "currency": "JPY", "amount": 48000, "tax_rate": 10}}}); r.Status != 200 {
		e.t.Fatalf("prices: %d %s", r.Status, r.Body)
	}
}

// waitMail waits for a mail to addr whose text holds every one of want.
func (e *e2e) waitMail(addr string, want ...string) testenv.Mail {
	e.t.Helper()
	var found testenv.Mail
	testenv.Eventually(e.t, 45*time.Second, "mail to "+addr+" with "+strings.Join(want, ", "), func() bool {
		for _, m := range e.smtp.To(addr) {
			ok := true
			for _, w := range want {
				if !strings.Contains(m.Body, w) && !strings.Contains(mailSubject(m), w) {
					ok = false
					break
				}
			}
			if ok {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func mailSubject(m testenv.Mail) string {
	s, err := new(mime.WordDecoder).DecodeHeader(m.Msg.Header.Get("Subject"))
	if err != nil {
		return m.Msg.Header.Get("Subject")
	}
	return s
}

// attachment returns the first MIME part of m with the content type.
func attachment(t testing.TB, m testenv.Mail, contentType string) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ct string, enc string, r io.Reader) []byte
	walk = func(ct, enc string, r io.Reader) []byte {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(r, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err != nil {
					return nil
				}
				if b := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); b != nil {
					return b
				}
			}
		}
		if mt != contentType {
			return nil
		}
		if strings.EqualFold(enc, "base64") {
			r = base64.NewDecoder(base64.StdEncoding, r)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if b == nil {
		t.Fatalf("no %s part in the mail %q", contentType, mailSubject(m))
	}
	return b
}

var setupLinkRe = regexp.MustCompile(`https?://\S+/customers/password\?token=[^\s"<>]+`)

// setPassword follows the one-time setup link of a notice mail (SV-1).
func (e *e2e) setPassword(m testenv.Mail, email string) string {
	e.t.Helper()
	link := setupLinkRe.FindString(m.Body)
	if link == "" {
		e.t.Fatalf("no setup link in the notice:\n%s", m.Body)
	}
	i := strings.Index(link, "token=")
	tok := link[i+len("token="):]
	if r := e.do("POST", "/v1/customers/password", map[string]any{"token": tok, "password": serverPassword}); r.Status != 200 {
		e.t.Fatalf("set password: %d %s", r.Status, r.Body)
	}
	r := e.do("POST", "/v1/sessions", map[string]any{"email": email, "password": serverPassword})
	if r.Status != 201 {
		e.t.Fatalf("customer session: %d %s", r.Status, r.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	r.JSON(e.t, &s)
	return s.Token
}

type orderStep struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

type serverOrder struct {
	ID            string      `json:"id"`
	Kind          string      `json:"kind"`
	Status        string      `json:"status"`
	CertificateID string      `json:"certificate_id"`
	InvoiceID     string      `json:"invoice_id"`
	ApplicationID string      `json:"application_id"`
	RenewalOf     string      `json:"renewal_of"`
	Decision      string      `json:"decision"`
	CarryOverDays *int        `json:"carry_over_days"`
	CoverageEnd   *time.Time  `json:"coverage_end"`
	Steps         []orderStep `json:"steps"`
}

func (e *e2e) orders(tok string) []serverOrder {
	e.t.Helper()
	r := e.do("GET", "/v1/orders", nil, "Authorization", "Bearer "+tok)
	if r.Status != 200 {
		e.t.Fatalf("orders: %d %s", r.Status, r.Body)
	}
	var l struct {
		Orders []serverOrder `json:"orders"`
	}
	r.JSON(e.t, &l)
	return l.Orders
}

func (e *e2e) order(tok, id string) serverOrder {
	e.t.Helper()
	r := e.do("GET", "/v1/orders/"+id, nil, "Authorization", "Bearer "+tok)
	if r.Status != 200 {
		e.t.Fatalf("order: %d %s", r.Status, r.Body)
	}
	var o serverOrder
	r.JSON(e.t, &o)
	return o
}

// waitOrder waits for the customer's order that cond accepts.
func (e *e2e) waitOrder(tok, what string, cond func(serverOrder) bool) serverOrder {
	e.t.Helper()
	var found serverOrder
	testenv.Eventually(e.t, 45*time.Second, what, func() bool {
		for _, o := range e.orders(tok) {
			if cond(o) {
				found = o
				return true
			}
		}
		return false
	})
	return found
}

type invoiceView struct {
	ID                 string `json:"id"`
	Number             string `json:"number"`
	Status             string `json:"status"`
	OrderID            string `json:"order_id"`
	PaymentReference   string `json:"payment_reference"`
	Currency           string `json:"currency"`
	Tax                int64  `json:"tax"`
	Total              int64  `json:"total"`
	RegistrationNumber string `json:"registration_number"`
}

func (e *e2e) invoice(tok, id string) invoiceView {
	e.t.Helper()
	r := e.do("GET", "/v1/invoices/"+id, nil, "Authorization", "Bearer "+tok)
	if r.Status != 200 {
		e.t.Fatalf("invoice: %d %s", r.Status, r.Body)
	}
	var v invoiceView
	r.JSON(e.t, &v)
	return v
}

// payByCard is the payment processor's signed webhook (BI-2).
func (e *e2e) payByCard(inv invoiceView) {
	e.t.Helper()
	// The processor's clock is the platform's (the injected one).
	now := e.p.Clock.Now()
	body, _ := json.Marshal(map[string]any{"id": "evt_" + uuid.NewString(), "type": "payment.succeeded", "created": now.Unix(),
		"data": map[string]any{"invoice": inv.Number, "amount": inv.Total, "currency": inv.Currency, "payment_id": "pay_" + uuid.NewString()[:8]}})
	ts := strconv.FormatInt(now.Unix(), 10)
	m := hmac.New(sha256.New, []byte(e2eWebhookSecret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	sig := "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
	if r := e.do("POST", "/v1/webhooks/payments", body, "Webhook-Signature", sig); r.Status != 200 {
		e.t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
}

// webSites is the customers' web server on 127.0.0.1 (DCV_HTTP_PORT),
// answering by host and path.
type webSites struct {
	port  int
	mu    sync.Mutex
	pages map[string]string
}

func startWebSites(t testing.TB) *webSites {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &webSites{port: ln.Addr().(*net.TCPAddr).Port, pages: map[string]string{}}
	srv := &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

func (w *webSites) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	w.mu.Lock()
	body, ok := w.pages[strings.ToLower(host)+r.URL.Path]
	w.mu.Unlock()
	if !ok {
		http.NotFound(rw, r)
		return
	}
	_, _ = rw.Write([]byte(body))
}

func (w *webSites) page(host, path, body string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pages[host+path] = body
}

// serverWorld is the all-in-one with a small Internet: an authoritative
// DNS server (miekg/dns) with a DNSSEC-signed zone, a zone with broken
// signatures and unsigned ones, Unbound validating in front of it
// (DCV_DNS_SERVER, used by the primary perspective and the five
// in-process agents), and the customers' web server (DCV_HTTP_PORT).
type serverWorld struct {
	*e2e
	dns *testenv.DNSServer
	web *webSites

	mu  sync.Mutex
	all []events.Envelope // every event on the stream, as it comes
}

// collect reads the whole stream with one ordered consumer for the
// test's life (polling with a consumer per look would reach the
// stream's consumer limit).
func (w *serverWorld) collect() {
	w.t.Helper()
	nc, err := nats.Connect(w.p.NATSURL)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		w.t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		env, err := events.Parse(m.Data())
		if err != nil {
			return
		}
		w.mu.Lock()
		w.all = append(w.all, env)
		w.mu.Unlock()
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(cc.Stop)
}

// seen lists the events of a type about subject seen so far.
func (w *serverWorld) seen(eventType, subject string) []events.Envelope {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []events.Envelope
	for _, env := range w.all {
		if env.Type == eventType && (subject == "" || env.SubjectID == subject) {
			out = append(out, env)
		}
	}
	return out
}

// await waits for an event of a type about subject.
func (w *serverWorld) await(eventType, subject string) events.Envelope {
	w.t.Helper()
	var found events.Envelope
	testenv.Eventually(w.t, 45*time.Second, eventType+" for "+subject, func() bool {
		if l := w.seen(eventType, subject); len(l) > 0 {
			found = l[0]
			return true
		}
		return false
	})
	return found
}

func startServerWorld(t testing.TB, edit func(*app.Config)) *serverWorld {
	t.Helper()
	auth := testenv.StartDNS(t)
	// Under a real TLD: the issuer's zlint refuses names under test.
	// CAA's tree climbing (RFC 8659) asks up to com., served here too.
	auth.AddZone(t, "com.", testenv.Unsigned)
	auth.AddZone(t, "e2e-test.com.", testenv.Unsigned)
	auth.AddZone(t, "signed.e2e-test.com.", testenv.Signed)
	auth.AddZone(t, "bogus.e2e-test.com.", testenv.Bogus)
	auth.AddZone(t, "plain.e2e-test.com.", testenv.Unsigned)
	unbound := testenv.StartUnbound(t, auth)
	web := startWebSites(t)
	e := startE2E(t, func(c *app.Config) {
		c.WebhookSecret = e2eWebhookSecret
		c.DCVDNSServer, c.DCVHTTPPort = unbound.Addr, web.port
		c.DCVTimeout, c.MPICTimeout = 5*time.Second, 8*time.Second
		c.MPICAgents = ""
		c.MPICPerspectives = 5
		if edit != nil {
			edit(c)
		}
	}, nil)
	w := &serverWorld{e2e: e, dns: auth, web: web}
	w.collect()
	return w
}
