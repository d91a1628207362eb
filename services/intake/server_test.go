package intake_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/intake"
)

// subject is the DN of a test CSR or certificate.
type subject struct {
	CN, O, L, ST, C, OU string
}

var exampleDN = subject{CN: "www.example.co.jp", O: "Example K.K.", L: "Chiyoda-ku", ST: "Tokyo", C: "JP"}

func (s subject) name() pkix.Name {
	n := pkix.Name{CommonName: s.CN}
	add := func(dst *[]string, v string) {
		if v != "" {
			*dst = []string{v}
		}
	}
	add(&n.Organization, s.O)
	add(&n.Locality, s.L)
	add(&n.Province, s.ST)
	add(&n.Country, s.C)
	add(&n.OrganizationalUnit, s.OU)
	return n
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrPEM(t testing.TB, s subject, key any) string {
	t.Helper()
	if key == nil {
		key = ecKey(t)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: s.name()}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// certPEM is a server certificate "bought elsewhere": issued by a
// throwaway CA, valid from notBefore to notAfter.
func certPEM(t testing.TB, s subject, notBefore, notAfter time.Time) string {
	t.Helper()
	caKey := ecKey(t)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other Vendor CA", Organization: []string{"Other Vendor"}},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	leaf := &x509.Certificate{SerialNumber: serial, Subject: s.name(), DNSNames: []string{s.CN, "example.co.jp"},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &ecKey(t).PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func serverOrg(s subject) map[string]any {
	return map[string]any{"duns": "123456789", "name_en": s.O,
		"address": map[string]any{"street": "1-1 Marunouchi", "city": s.L, "state": s.ST, "postal_code": "100-0005", "country": s.C}}
}

// serverBody is a server application (SPEC §5) for a new customer.
func serverBody(t testing.TB, email string, s subject) map[string]any {
	return map[string]any{
		"product":           "server",
		"term_months":       12,
		"password":          "a customer password",
		"language":          "ja",
		"organization":      serverOrg(s),
		"csr":               csrPEM(t, s, nil),
		"domains":           []string{"example.co.jp", "shop.example.co.jp"},
		"dcv":               map[string]any{"method": "dns"},
		"technical_contact": map[string]any{"name": "Tech Taro", "email": email, "phone": "+81312345678"},
	}
}

// customerLogin opens a customer session.
func (r *rig) customerLogin(t testing.TB, email, password string) string {
	t.Helper()
	resp := r.Do("POST", "/v1/sessions", map[string]any{"email": email, "password": password})
	if resp.Status != 201 {
		t.Fatalf("customer login: %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	claims, err := r.verifier.Verify(s.Token, r.Clock.Now())
	if err != nil || !claims.Customer {
		t.Fatalf("not a customer session: %+v %v", claims, err)
	}
	return s.Token
}

type orderView struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	Status        string    `json:"status"`
	Source        string    `json:"source"`
	CertificateID string    `json:"certificate_id"`
	InvoiceID     string    `json:"invoice_id"`
	ApplicationID string    `json:"application_id"`
	RenewalOf     string    `json:"renewal_of"`
	CarryOverDays *int      `json:"carry_over_days"`
	Decision      string    `json:"decision"`
	CoverageEnd   time.Time `json:"coverage_end"`
	Steps         []step    `json:"steps"`
	// IS-4 (coverage_test.go).
	CoverageReissue *struct {
		CertificateID string     `json:"certificate_id"`
		ApplicationID string     `json:"application_id"`
		ReuseKey      bool       `json:"reuse_key"`
		Status        string     `json:"status"`
		CSRDue        time.Time  `json:"csr_due"`
		CSRReceivedAt *time.Time `json:"csr_received_at"`
		// OP-5: the replacement of a certificate a mass revocation took.
		MassRevocationID string `json:"mass_revocation_id"`
		RevocationReason string `json:"revocation_reason"`
	} `json:"coverage_reissue"`
}

type step struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

func (o orderView) step(name, domain string) step {
	for _, s := range o.Steps {
		if s.Name == name && s.Domain == domain {
			return s
		}
	}
	return step{Status: "absent"}
}

func (r *rig) order(t testing.TB, tok, id string) orderView {
	t.Helper()
	resp := r.Do("GET", "/v1/orders/"+id, nil, bearer(tok)...)
	if resp.Status != 200 {
		t.Fatalf("order: %d %s", resp.Status, resp.Body)
	}
	var o orderView
	resp.JSON(t, &o)
	return o
}

func (r *rig) orders(t testing.TB, tok string) []orderView {
	t.Helper()
	resp := r.Do("GET", "/v1/orders", nil, bearer(tok)...)
	if resp.Status != 200 {
		t.Fatalf("orders: %d %s", resp.Status, resp.Body)
	}
	var l struct {
		Orders []orderView `json:"orders"`
	}
	resp.JSON(t, &l)
	return l.Orders
}

func (r *rig) waitOrder(t testing.TB, tok, id string, what string, cond func(orderView) bool) orderView {
	t.Helper()
	var o orderView
	testenv.Eventually(t, 10*time.Second, what, func() bool {
		o = r.order(t, tok, id)
		return cond(o)
	})
	return o
}

func decode[T events.Payload](t testing.TB, env events.Envelope) T {
	t.Helper()
	v, err := events.Decode[T](env)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// SV-12, SPEC §5: a server application without "order" creates the
// customer, a new order (OrderPlaced for billing) and a provisional
// application whose events carry the server part; the customer's session
// sees the order with every step — pending until reported — and the
// reports of billing and validation as they come.
func TestServerApplication_NewOrderAndSteps_SV12(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, serverBody(t, "tech@example.co.jp", exampleDN))
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	srv := prov.Application.Server
	if srv == nil || prov.Application.Product != "server" || prov.Application.Kind != "new" || srv.CommonName != "www.example.co.jp" ||
		len(srv.Domains) != 2 || srv.Decision != "new: no previous certificate" || srv.OrderID == "" || srv.CoverageEnd.IsZero() {
		t.Fatalf("application event %+v %+v", prov.Application, srv)
	}
	placed := decode[events.OrderPlaced](t, r.WaitEvent(events.TypeOrderPlaced, srv.OrderID, 10*time.Second))
	if placed.Source != "application" || placed.Kind != "new" || placed.ApplicationID != a.ID || placed.TermMonths != 12 ||
		placed.Recipient.Email != "tech@example.co.jp" {
		t.Fatalf("OrderPlaced %+v", placed)
	}
	tok := r.customerLogin(t, "tech@example.co.jp", "a customer password")
	list := r.orders(t, tok)
	if len(list) != 1 || list[0].ID != srv.OrderID {
		t.Fatalf("orders %+v", list)
	}
	o := list[0]
	if o.Status != "awaiting_payment" || o.Kind != "new" || o.ApplicationID != a.ID {
		t.Fatalf("order %+v", o)
	}
	want := []string{"payment/", "domain_validation/www.example.co.jp", "domain_validation/example.co.jp",
		"domain_validation/shop.example.co.jp", "organization/", "phone/", "review/", "issuance/"}
	if len(o.Steps) != len(want) {
		t.Fatalf("steps %+v", o.Steps)
	}
	for i, s := range o.Steps {
		if s.Name+"/"+s.Domain != want[i] || s.Status != "pending" {
			t.Fatalf("step %d: %+v, want %s pending", i, s, want[i])
		}
	}

	now := r.Clock.Now()
	r.Publish(events.InvoiceIssued{InvoiceID: "inv-1", Number: "INV-0001", PaymentReference: "R1", OrderID: o.ID,
		CustomerID: placed.CustomerID, Recipient: placed.Recipient, Currency: "JPY",
		Lines: []events.InvoiceLine{{Description: "OV", Quantity: 1, UnitPrice: 10000, Amount: 10000, TaxRate: 10}},
		Total: 11000, IssuedAt: now, DueAt: now.Add(30 * 24 * time.Hour)}, o.ID)
	o = r.waitOrder(t, tok, o.ID, "invoice on the order", func(o orderView) bool { return o.InvoiceID == "inv-1" })
	if s := o.step("payment", ""); s.Status != "pending" || !strings.Contains(s.Detail, "INV-0001") {
		t.Fatalf("payment step %+v", s)
	}
	r.Publish(events.PaymentConfirmed{OrderID: o.ID, InvoiceID: "inv-1", CustomerID: placed.CustomerID, Method: "card",
		Reference: "pay_1", Amount: 11000, Currency: "JPY", PaidAt: now}, o.ID)
	r.Publish(events.DomainValidated{ApplicationID: a.ID, OrderID: o.ID, ValidationID: "v1", Domain: "www.example.co.jp",
		Method: "dns", ValidatedAt: now, ValidUntil: now.Add(200 * 24 * time.Hour)}, a.ID)
	r.Publish(events.DomainValidationFailed{ApplicationID: a.ID, ValidationID: "v2", Domain: "shop.example.co.jp",
		Method: "dns", Detail: "expected TXT abc, found nothing", Final: true, FailedAt: now}, a.ID)
	r.Publish(events.OrganizationVerified{ApplicationID: a.ID, DUNS: "123456789", VerifiedAt: now}, a.ID)
	o = r.waitOrder(t, tok, o.ID, "steps reported", func(o orderView) bool {
		return o.step("payment", "").Status == "done" && o.step("domain_validation", "www.example.co.jp").Status == "done" &&
			o.step("domain_validation", "shop.example.co.jp").Status == "failed" && o.step("organization", "").Status == "done"
	})
	if o.Status != "in_progress" || o.step("phone", "").Status != "pending" || o.step("review", "").Status != "pending" ||
		o.step("domain_validation", "example.co.jp").Status != "pending" {
		t.Fatalf("order %+v", o)
	}
	if d := o.step("domain_validation", "shop.example.co.jp").Detail; !strings.Contains(d, "expected TXT abc") {
		t.Fatalf("failure detail %q", d)
	}
	// GET /v1/applications/{id} shows the same steps (SV-12).
	resp := r.Do("GET", "/v1/applications/"+a.ID, nil, bearer(tok)...)
	if resp.Status != 200 {
		t.Fatalf("application: %d %s", resp.Status, resp.Body)
	}
	var av struct {
		Product string `json:"product"`
		OrderID string `json:"order_id"`
		Steps   []step `json:"steps"`
	}
	resp.JSON(t, &av)
	if av.Product != "server" || av.OrderID != o.ID || len(av.Steps) != len(o.Steps) {
		t.Fatalf("application view %s", resp.Body)
	}
	// Basic with the customer's e-mail and password works on the application too.
	if resp := r.Do("GET", "/v1/applications/"+a.ID, nil, basic("tech@example.co.jp", "a customer password")...); resp.Status != 200 {
		t.Fatalf("basic: %d %s", resp.Status, resp.Body)
	}

	// Another customer sees neither the order nor the application: 404.
	r.submit(t, serverBody(t, "other@example.co.jp", subject{CN: "www.other.co.jp", O: "Other K.K.", L: "Minato-ku", ST: "Tokyo", C: "JP"}))
	other := r.customerLogin(t, "other@example.co.jp", "a customer password")
	if resp := r.Do("GET", "/v1/orders/"+o.ID, nil, bearer(other)...); resp.Status != 404 {
		t.Fatalf("another's order: %d", resp.Status)
	}
	if resp := r.Do("GET", "/v1/applications/"+a.ID, nil, bearer(other)...); resp.Status != 404 {
		t.Fatalf("another's application: %d", resp.Status)
	}
	if l := r.orders(t, other); len(l) != 1 || l[0].ID == o.ID {
		t.Fatalf("other's orders %+v", l)
	}
	// An applicant's session is not a customer's: 403; none at all: 401.
	r.submit(t, body("applicant@example.co.jp"))
	resp = r.Do("POST", "/v1/sessions", map[string]any{"email": "applicant@example.co.jp", "password": "an application password"})
	var as struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &as)
	if resp := r.Do("GET", "/v1/orders", nil, bearer(as.Token)...); resp.Status != 403 {
		t.Fatalf("applicant session on orders: %d", resp.Status)
	}
	if resp := r.Do("GET", "/v1/orders", nil); resp.Status != 401 {
		t.Fatalf("no session: %d", resp.Status)
	}
	if resp := r.Do("GET", "/v1/orders/not-a-uuid", nil, bearer(tok)...); resp.Status != 404 {
		t.Fatalf("bad order id: %d", resp.Status)
	}
	if resp := r.Do("GET", "/v1/orders?x=1", nil, bearer(tok)...); resp.Status != 422 {
		t.Fatalf("unknown parameter: %d", resp.Status)
	}
}

// SV-6, SE-4: every bad field of a server application is a 422 naming
// it, and nothing is stored.
func TestServerApplication_BadInput_SV6(t *testing.T) {
	r := newRig(t, testenv.Options{})
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	cases := []struct {
		name  string
		edit  func(b map[string]any)
		field string
	}{
		{"OU in the subject", func(b map[string]any) {
			b["csr"] = csrPEM(t, subject{CN: "www.example.co.jp", OU: "IT"}, nil)
		}, "csr"},
		{"RSA 1024", func(b map[string]any) { b["csr"] = csrPEM(t, exampleDN, weak) }, "csr"},
		{"P-224", func(b map[string]any) { b["csr"] = csrPEM(t, exampleDN, p224) }, "csr"},
		{"no CN", func(b map[string]any) { b["csr"] = csrPEM(t, subject{O: "Example K.K."}, nil) }, "csr"},
		{"CN not a domain", func(b map[string]any) { b["csr"] = csrPEM(t, subject{CN: "Example Server"}, nil) }, "csr"},
		{"garbage CSR", func(b map[string]any) {
			b["csr"] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
		}, "csr"},
		{"tampered CSR", func(b map[string]any) {
			blk, _ := pem.Decode([]byte(b["csr"].(string)))
			blk.Bytes[len(blk.Bytes)-3] ^= 0xff
			b["csr"] = string(pem.EncodeToMemory(blk))
		}, "csr"},
		{"coupon", func(b map[string]any) { b["coupon"] = "12345678-87654321" }, "coupon"},
		{"term zero", func(b map[string]any) { b["term_months"] = 0 }, "term_months"},
		{"term missing", func(b map[string]any) { delete(b, "term_months") }, "term_months"},
		{"short password", func(b map[string]any) { b["password"] = "short" }, "password"},
		{"bad duns", func(b map[string]any) { b["organization"].(map[string]any)["duns"] = "12ab" }, "organization.duns"},
		{"client org field", func(b map[string]any) { b["organization"].(map[string]any)["name_ja"] = "株式会社" }, "organization.name_ja"},
		{"bad country", func(b map[string]any) {
			b["organization"].(map[string]any)["address"].(map[string]any)["country"] = "Japan"
		}, "organization.address.country"},
		{"no address", func(b map[string]any) { delete(b["organization"].(map[string]any), "address") }, "organization.address"},
		{"bad domain", func(b map[string]any) { b["domains"] = []string{"not a domain"} }, "domains[0]"},
		{"bad dcv method", func(b map[string]any) { b["dcv"] = map[string]any{"method": "carrier-pigeon"} }, "dcv.method"},
		{"approver not constructed", func(b map[string]any) {
			b["dcv"] = map[string]any{"method": "email", "approver_email": "ceo@example.co.jp"}
		}, "dcv.approver_email"},
		{"no contact", func(b map[string]any) { delete(b, "technical_contact") }, "technical_contact"},
		{"bad contact e-mail", func(b map[string]any) {
			b["technical_contact"] = map[string]any{"name": "T", "email": "nope", "phone": "+81312345678"}
		}, "technical_contact.email"},
		{"bad order", func(b map[string]any) { b["order"] = "x" }, "order"},
		{"unknown order", func(b map[string]any) { b["order"] = uuid.NewString() }, "order"},
		{"bad language", func(b map[string]any) { b["language"] = "fr" }, "language"},
	}
	for _, c := range cases {
		b := serverBody(t, "bad@example.co.jp", exampleDN)
		c.edit(b)
		resp := r.Do("POST", "/v1/applications", b)
		if resp.Status != 422 {
			t.Fatalf("%s: %d %s", c.name, resp.Status, resp.Body)
		}
		if p := asProblem(t, resp); !strings.Contains(","+p.fields()+",", ","+c.field+",") {
			t.Fatalf("%s: fields %q, want %s", c.name, p.fields(), c.field)
		}
	}
	// Unknown fields and client fields are refused, not ignored.
	b := serverBody(t, "bad@example.co.jp", exampleDN)
	b["surprise"] = true
	if resp := r.Do("POST", "/v1/applications", b); resp.Status/100 != 4 {
		t.Fatalf("unknown field: %d", resp.Status)
	}
	cb := body("client@example.co.jp")
	cb["csr"] = "x"
	if resp := r.Do("POST", "/v1/applications", cb); resp.Status != 422 || asProblem(t, resp).fields() != "csr" {
		t.Fatalf("client with csr: %d %s", resp.Status, resp.Body)
	}
	if n := r.count(t, "orders") + r.count(t, "customers") + r.count(t, "applications"); n != 0 {
		t.Fatalf("bad input stored %d rows", n)
	}
	// A wrong password for an existing customer is the generic 401.
	r.submit(t, serverBody(t, "known@example.co.jp", exampleDN))
	b = serverBody(t, "known@example.co.jp", exampleDN)
	b["password"] = "not the password"
	if resp := r.Do("POST", "/v1/applications", b); resp.Status != 401 {
		t.Fatalf("wrong password: %d %s", resp.Status, resp.Body)
	}
}

// SE-6: a server application repeated with its Idempotency-Key answers
// the same and places one order.
func TestServerApplication_IdempotencyKey_SE6(t *testing.T) {
	r := newRig(t, testenv.Options{})
	b := serverBody(t, "idem@example.co.jp", exampleDN)
	key := []string{"Idempotency-Key", uuid.NewString()}
	first := r.Do("POST", "/v1/applications", b, key...)
	second := r.Do("POST", "/v1/applications", b, key...)
	if first.Status != 202 || second.Status != 202 || string(first.Body) != string(second.Body) {
		t.Fatalf("%d %s / %d %s", first.Status, first.Body, second.Status, second.Body)
	}
	if n := r.count(t, "orders"); n != 1 {
		t.Fatalf("%d orders", n)
	}
}

// importCert imports a certificate expiring at notAfter for a new customer.
func (r *rig) importCert(t testing.TB, email string, s subject, notAfter time.Time, headers ...string) (certID, customerID string) {
	t.Helper()
	resp := r.Ops("POST", "/ops/v1/certificates/import", map[string]any{
		"pem":          certPEM(t, s, r.Clock.Now().Add(-300*24*time.Hour), notAfter),
		"customer":     map[string]any{"email": email, "name": "Example K.K.", "language": "en"},
		"organization": serverOrg(s),
	}, headers...)
	if resp.Status != 201 {
		t.Fatalf("import: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		CertificateID string `json:"certificate_id"`
		CustomerID    string `json:"customer_id"`
	}
	resp.JSON(t, &out)
	return out.CertificateID, out.CustomerID
}

// setupPassword opens the sealed setup link and sets the password with it.
func (r *rig) setupPassword(t testing.TB, sealed []byte, password string) {
	t.Helper()
	link, err := r.key.Open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(string(link))
	if err != nil {
		t.Fatal(err)
	}
	resp := r.Do("POST", "/v1/customers/password", map[string]any{"token": u.Query().Get("token"), "password": password})
	if resp.Status != 200 {
		t.Fatalf("set password: %d %s", resp.Status, resp.Body)
	}
}

// SV-1: an operator imports a certificate bought elsewhere with its
// customer; CertificateImported carries the sealed one-time link to set
// the password, which then opens a customer session. Expired, garbage
// and repeated imports are refused; the Idempotency-Key replays (SE-6).
func TestImportCertificate_SV1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	notAfter := r.Clock.Now().Add(89 * 24 * time.Hour).Truncate(time.Second)
	key := []string{"Idempotency-Key", uuid.NewString()}
	pemText := certPEM(t, exampleDN, r.Clock.Now().Add(-300*24*time.Hour), notAfter)
	reqBody := map[string]any{"pem": pemText,
		"customer":     map[string]any{"email": "Buyer@Example.co.jp", "name": "Example K.K.", "language": "en"},
		"organization": serverOrg(exampleDN)}
	first := r.Ops("POST", "/ops/v1/certificates/import", reqBody, key...)
	again := r.Ops("POST", "/ops/v1/certificates/import", reqBody, key...)
	if first.Status != 201 || again.Status != 201 || string(first.Body) != string(again.Body) {
		t.Fatalf("import: %d %s / %d %s", first.Status, first.Body, again.Status, again.Body)
	}
	if resp := r.Ops("POST", "/ops/v1/certificates/import", reqBody); resp.Status != 409 {
		t.Fatalf("second import: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		CertificateID string `json:"certificate_id"`
		CustomerID    string `json:"customer_id"`
	}
	first.JSON(t, &out)
	ev := decode[events.CertificateImported](t, r.WaitEvent(events.TypeCertificateImported, out.CertificateID, 10*time.Second))
	if ev.CustomerID != out.CustomerID || ev.CommonName != "www.example.co.jp" || !ev.NotAfter.Equal(notAfter) ||
		ev.Recipient.Email != "buyer@example.co.jp" || len(ev.SealedSetupLink) == 0 || ev.Organization.DUNS != "123456789" {
		t.Fatalf("CertificateImported %+v", ev)
	}
	if strings.Contains(string(r.WaitEvent(events.TypeCertificateImported, out.CertificateID, time.Second).Data), "token=") {
		t.Fatal("the setup token travelled in clear")
	}
	// No password yet: no session.
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "buyer@example.co.jp", "password": "whatever123"}); resp.Status != 401 {
		t.Fatalf("session before setup: %d", resp.Status)
	}
	r.setupPassword(t, ev.SealedSetupLink, "the new password")
	tok := r.customerLogin(t, "buyer@example.co.jp", "the new password")
	if l := r.orders(t, tok); len(l) != 0 {
		t.Fatalf("orders %+v", l)
	}
	// The link works once.
	link, _ := r.key.Open(ev.SealedSetupLink)
	u, _ := url.Parse(string(link))
	if resp := r.Do("POST", "/v1/customers/password", map[string]any{"token": u.Query().Get("token"), "password": "another password"}); resp.Status != 422 {
		t.Fatalf("link used twice: %d", resp.Status)
	}

	bad := []struct {
		name string
		body map[string]any
		want int
	}{
		{"expired", map[string]any{"pem": certPEM(t, exampleDN, r.Clock.Now().Add(-400*24*time.Hour), r.Clock.Now().Add(-time.Hour)),
			"customer": reqBody["customer"], "organization": reqBody["organization"]}, 422},
		{"garbage", map[string]any{"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
			"customer": reqBody["customer"], "organization": reqBody["organization"]}, 422},
		{"not PEM", map[string]any{"pem": "hello", "customer": reqBody["customer"], "organization": reqBody["organization"]}, 422},
		{"no customer", map[string]any{"pem": pemText, "organization": reqBody["organization"]}, 422},
		{"bad e-mail", map[string]any{"pem": pemText, "organization": reqBody["organization"],
			"customer": map[string]any{"email": "x", "name": "n", "language": "en"}}, 422},
		{"no organization", map[string]any{"pem": pemText, "customer": reqBody["customer"]}, 422},
		{"unknown field", map[string]any{"pem": pemText, "customer": reqBody["customer"], "organization": reqBody["organization"], "x": 1}, 422},
	}
	for _, c := range bad {
		if resp := r.Ops("POST", "/ops/v1/certificates/import", c.body); resp.Status != c.want {
			t.Fatalf("%s: %d %s", c.name, resp.Status, resp.Body)
		}
	}
	if resp := r.Do("POST", "/ops/v1/certificates/import", reqBody); resp.Status != 401 {
		t.Fatalf("no token: %d", resp.Status)
	}
	if n := r.count(t, "server_certificates"); n != 1 {
		t.Fatalf("%d certificates stored", n)
	}
	// OP-4: the import is audited in its transaction, once.
	var audited int
	if err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE action = 'certificate.imported' AND subject = $1`, out.CertificateID).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("audit entries %d %v", audited, err)
	}
	// Bad setup requests.
	for _, b := range []map[string]any{{"token": "nope", "password": "long enough"}, {"password": "long enough"},
		{"token": "x", "password": "short"}, {"token": strings.Repeat("a", 500), "password": "long enough"}} {
		if resp := r.Do("POST", "/v1/customers/password", b); resp.Status != 422 {
			t.Fatalf("setup %v: %d %s", b, resp.Status, resp.Body)
		}
	}
}

// notice publishes the notifier's RenewalDue for a server certificate.
func (r *rig) notice(t testing.TB, certID, customerID string, notAfter time.Time, days int) {
	t.Helper()
	r.Publish(events.RenewalDue{CertificateID: certID, ApplicantID: customerID, Product: "server",
		Recipient: events.Recipient{Email: "x@example.co.jp"}, NotAfter: notAfter, DaysBefore: days}, certID)
}

// noticeOrder waits for the notice's OrderPlaced of the certificate.
func (r *rig) noticeOrder(t testing.TB, certID string) events.OrderPlaced {
	t.Helper()
	var found events.OrderPlaced
	testenv.Eventually(t, 10*time.Second, "notice order", func() bool {
		for _, e := range r.Events(events.TypeOrderPlaced) {
			ev := decode[events.OrderPlaced](t, e)
			if ev.RenewalOf == certID && ev.Source == "notice" {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// SV-1, SV-2: the notice of an imported certificate makes one renewal
// order per cycle (a repeated notice makes none) with sealed signed
// one-click links; the decline link records the intent, cancels the
// order and emits RenewalDeclined with the hosting advice; a tampered
// link is refused.
func TestRenewalNotice_OrderAndIntentLinks_SV1_SV2(t *testing.T) {
	r := newRig(t, testenv.Options{})
	notAfter := r.Clock.Now().Add(89 * 24 * time.Hour).Truncate(time.Second)
	certID, custID := r.importCert(t, "notice@example.co.jp", exampleDN, notAfter)
	r.notice(t, certID, custID, notAfter, 90)
	placed := r.noticeOrder(t, certID)
	if placed.Kind != "renewal" || placed.Notice == nil || !placed.Notice.Imported || placed.Notice.DaysBefore != 90 ||
		placed.TermMonths != 12 || placed.CustomerID != custID || placed.Recipient.Email != "notice@example.co.jp" {
		t.Fatalf("OrderPlaced %+v", placed)
	}
	raw, err := r.key.Open(placed.Notice.SealedLinks)
	if err != nil {
		t.Fatal(err)
	}
	var links map[string]string
	if err := json.Unmarshal(raw, &links); err != nil || links["renew"] == "" || links["decline"] == "" || links["setup"] == "" {
		t.Fatalf("links %s", raw)
	}
	// Redelivery and a second notice of the same cycle: still one order.
	r.notice(t, certID, custID, notAfter, 60)
	r.Settle("intake-applications", 10*time.Second)
	if n := r.count(t, "orders"); n != 1 {
		t.Fatalf("%d orders after a second notice", n)
	}
	path := func(link string) string {
		u, _ := url.Parse(link)
		return u.Path + "?" + u.RawQuery
	}
	// Tampered: 403 and nothing recorded.
	tampered := strings.Replace(path(links["decline"]), "renew=false", "renew=true", 1)
	if resp := r.Do("POST", tampered, nil); resp.Status != 403 {
		t.Fatalf("tampered link: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/renewal-intents?certificate=x", nil); resp.Status != 403 {
		t.Fatalf("garbage link: %d", resp.Status)
	}
	// GET shows the confirmation and changes nothing.
	if resp := r.Do("GET", path(links["decline"]), nil); resp.Status != 200 || !strings.Contains(string(resp.Body), "<form") {
		t.Fatalf("GET link: %d %s", resp.Status, resp.Body)
	}
	if len(r.Events(events.TypeRenewalDeclined)) != 0 {
		t.Fatal("GET declined")
	}
	resp := r.Do("POST", path(links["decline"]), nil)
	if resp.Status != 200 {
		t.Fatalf("decline: %d %s", resp.Status, resp.Body)
	}
	dec := decode[events.RenewalDeclined](t, r.WaitEvent(events.TypeRenewalDeclined, certID, 10*time.Second))
	if dec.OrderID != placed.OrderID || dec.CustomerID != custID || !strings.Contains(dec.Advice, "dedicated SSL") {
		t.Fatalf("RenewalDeclined %+v", dec)
	}
	if oc := decode[events.OrderCancelled](t, r.WaitEvent(events.TypeOrderCancelled, placed.OrderID, 10*time.Second)); oc.Reason != "renewal_declined" {
		t.Fatalf("OrderCancelled %+v", oc)
	}
	// Declining twice: one event. A notice after declining: no order.
	if resp := r.Do("POST", path(links["decline"]), nil); resp.Status != 200 {
		t.Fatalf("decline again: %d", resp.Status)
	}
	r.notice(t, certID, custID, notAfter, 30)
	r.Settle("intake-applications", 10*time.Second)
	if n := len(r.Events(events.TypeRenewalDeclined)); n != 1 {
		t.Fatalf("%d RenewalDeclined", n)
	}
	r.setupPassword(t, func() []byte {
		ev := decode[events.CertificateImported](t, r.WaitEvent(events.TypeCertificateImported, certID, time.Second))
		return ev.SealedSetupLink
	}(), "customer password")
	tok := r.customerLogin(t, "notice@example.co.jp", "customer password")
	l := r.orders(t, tok)
	if len(l) != 1 || l[0].Status != "cancelled" {
		t.Fatalf("orders after decline %+v", l)
	}
}

// SV-2: the intent through the customer's session; bad input of the route.
func TestRenewalIntent_Session_SV2(t *testing.T) {
	r := newRig(t, testenv.Options{})
	notAfter := r.Clock.Now().Add(50 * 24 * time.Hour)
	certID, custID := r.importCert(t, "intent@example.co.jp", exampleDN, notAfter)
	ev := decode[events.CertificateImported](t, r.WaitEvent(events.TypeCertificateImported, certID, 10*time.Second))
	r.setupPassword(t, ev.SealedSetupLink, "customer password")
	tok := r.customerLogin(t, "intent@example.co.jp", "customer password")
	p := "/v1/certificates/" + certID + "/renewal-intent"
	if resp := r.Do("POST", p, map[string]any{"renew": true}, bearer(tok)...); resp.Status != 200 {
		t.Fatalf("renew: %d %s", resp.Status, resp.Body)
	}
	for _, c := range []struct {
		body any
		want int
	}{{map[string]any{}, 422}, {map[string]any{"renew": "yes"}, 422}, {"not json", 400}, {map[string]any{"renew": true, "x": 1}, 422}} {
		resp := r.Do("POST", p, c.body, bearer(tok)...)
		if resp.Status/100 != 4 {
			t.Fatalf("%v: %d %s", c.body, resp.Status, resp.Body)
		}
	}
	if resp := r.Do("POST", p, map[string]any{"renew": false}); resp.Status != 401 {
		t.Fatalf("no session: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/certificates/"+uuid.NewString()+"/renewal-intent", map[string]any{"renew": false}, bearer(tok)...); resp.Status != 404 {
		t.Fatalf("unknown certificate: %d", resp.Status)
	}
	// Another customer's certificate: 404.
	r.submit(t, serverBody(t, "someone@example.co.jp", exampleDN))
	other := r.customerLogin(t, "someone@example.co.jp", "a customer password")
	if resp := r.Do("POST", p, map[string]any{"renew": false}, bearer(other)...); resp.Status != 404 {
		t.Fatalf("another's certificate: %d", resp.Status)
	}
	key := append(bearer(tok), "Idempotency-Key", uuid.NewString())
	resp := r.Do("POST", p, map[string]any{"renew": false}, key...)
	if resp.Status != 200 || !strings.Contains(string(resp.Body), "advice") {
		t.Fatalf("decline: %d %s", resp.Status, resp.Body)
	}
	// SE-6: the same key replays the answer.
	if again := r.Do("POST", p, map[string]any{"renew": false}, key...); again.Status != 200 || string(again.Body) != string(resp.Body) {
		t.Fatalf("replay: %d %s", again.Status, again.Body)
	}
	dec := decode[events.RenewalDeclined](t, r.WaitEvent(events.TypeRenewalDeclined, certID, 10*time.Second))
	if dec.CustomerID != custID || dec.Recipient.Language != "en" {
		t.Fatalf("%+v", dec)
	}
}

// payOrder publishes billing's PaymentConfirmed of an order.
func (r *rig) payOrder(t testing.TB, orderID, customerID string) {
	t.Helper()
	r.Publish(events.PaymentConfirmed{OrderID: orderID, InvoiceID: "inv-" + orderID[:8], CustomerID: customerID, Method: "bank_transfer",
		Reference: "ref", Amount: 11000, Currency: "JPY", PaidAt: r.Clock.Now()}, orderID)
}

// SV-5, SV-11: applying for the notice's order with the same DN is a
// renewal: coverage ends at the previous coverage end + term, and the
// remaining days are carried over; a changed organization name makes it
// a new certificate with nothing carried over; so does an expired one.
func TestRenewalOrNew_SV5_SV11(t *testing.T) {
	r := newRig(t, testenv.Options{})
	start := r.Clock.Now()
	notAfter := start.Add(89 * 24 * time.Hour).Truncate(time.Second)
	certID, custID := r.importCert(t, "renew@example.co.jp", exampleDN, notAfter)
	ev := decode[events.CertificateImported](t, r.WaitEvent(events.TypeCertificateImported, certID, 10*time.Second))
	r.setupPassword(t, ev.SealedSetupLink, "customer password")
	tok := r.customerLogin(t, "renew@example.co.jp", "customer password")
	r.notice(t, certID, custID, notAfter, 90)
	placed := r.noticeOrder(t, certID)
	r.payOrder(t, placed.OrderID, custID)
	r.waitOrder(t, tok, placed.OrderID, "paid", func(o orderView) bool { return o.Status == "awaiting_application" })

	apply := func(s subject, term int) accepted {
		b := serverBody(t, "renew@example.co.jp", s)
		delete(b, "password")
		b["order"] = placed.OrderID
		b["term_months"] = term
		resp := r.Do("POST", "/v1/applications", b, bearer(tok)...)
		if resp.Status != 202 {
			t.Fatalf("apply: %d %s", resp.Status, resp.Body)
		}
		var a accepted
		resp.JSON(t, &a)
		return a
	}
	// The order's term is binding.
	b := serverBody(t, "renew@example.co.jp", exampleDN)
	delete(b, "password")
	b["order"], b["term_months"] = placed.OrderID, 24
	if resp := r.Do("POST", "/v1/applications", b, bearer(tok)...); resp.Status != 422 {
		t.Fatalf("other term: %d %s", resp.Status, resp.Body)
	}
	// A changed organization name: new, nothing carried over (SV-5).
	changed := exampleDN
	changed.O = "Example Holdings K.K."
	a := apply(changed, 12)
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if prov.Application.Kind != "new" || prov.Application.Server.RenewalOf != "" || prov.Application.Server.CarryOverDays != 0 ||
		!strings.Contains(prov.Application.Server.Decision, "organization name changed") {
		t.Fatalf("changed DN: %+v %+v", prov.Application, prov.Application.Server)
	}
	o := r.order(t, tok, placed.OrderID)
	if o.Kind != "new" || !strings.Contains(o.Decision, "organization name changed") || o.Status != "in_progress" {
		t.Fatalf("order %+v", o)
	}
	// The order is taken; cancelling frees it for another application.
	if resp := r.Do("POST", "/v1/applications", b, bearer(tok)...); resp.Status/100 != 4 {
		t.Fatalf("second application: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, bearer(tok)...); resp.Status != 200 {
		t.Fatalf("cancel: %d %s", resp.Status, resp.Body)
	}
	// Same DN: renewal (SV-11).
	r.Advance(10 * 24 * time.Hour)
	tok = r.customerLogin(t, "renew@example.co.jp", "customer password")
	a = apply(exampleDN, 12)
	prov = decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	srv := prov.Application.Server
	wantEnd := notAfter.AddDate(0, 12, 0)
	if prov.Application.Kind != "renewal" || srv.RenewalOf != certID || prov.Application.PreviousCertificateID != certID ||
		srv.Decision != "renewal" || !srv.CoverageEnd.Equal(wantEnd) || srv.CarryOverDays != 78 {
		t.Fatalf("renewal: kind %s %+v (want end %s, 78 days)", prov.Application.Kind, srv, wantEnd)
	}
	o = r.order(t, tok, placed.OrderID)
	if o.Kind != "renewal" || o.CarryOverDays == nil || *o.CarryOverDays != 78 || o.RenewalOf != certID || !o.CoverageEnd.Equal(wantEnd) {
		t.Fatalf("order %+v", o)
	}
}

// SV-5: an expired certificate's renewal is a new certificate: coverage
// from issuance + term, nothing carried over.
func TestRenewalOfExpiredIsNew_SV5_SV11(t *testing.T) {
	r := newRig(t, testenv.Options{})
	notAfter := r.Clock.Now().Add(20 * 24 * time.Hour).Truncate(time.Second)
	certID, custID := r.importCert(t, "late@example.co.jp", exampleDN, notAfter)
	ev := decode[events.CertificateImported](t, r.WaitEvent(events.TypeCertificateImported, certID, 10*time.Second))
	r.setupPassword(t, ev.SealedSetupLink, "customer password")
	r.notice(t, certID, custID, notAfter, 90)
	placed := r.noticeOrder(t, certID)
	r.Advance(21 * 24 * time.Hour)
	tok := r.customerLogin(t, "late@example.co.jp", "customer password")
	b := serverBody(t, "late@example.co.jp", exampleDN)
	delete(b, "password")
	b["order"] = placed.OrderID
	resp := r.Do("POST", "/v1/applications", b, bearer(tok)...)
	if resp.Status != 202 {
		t.Fatalf("apply: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	srv := prov.Application.Server
	if prov.Application.Kind != "new" || srv.CarryOverDays != 0 || !strings.Contains(srv.Decision, "expired") ||
		srv.CoverageEnd.Sub(r.Clock.Now().AddDate(0, 12, 0)).Abs() > time.Minute {
		t.Fatalf("expired: %+v", srv)
	}
}

// issue publishes the issuer's CertificateIssued of a server application.
func (r *rig) issue(t testing.TB, app events.Application, notAfter time.Time) string {
	t.Helper()
	certID := uuid.NewString()
	r.Publish(events.CertificateIssued{CertificateID: certID, ApplicationID: app.ID, ApplicantID: app.ApplicantID,
		Product: "server", Kind: app.Kind, Recipient: events.Recipient{Email: app.Server.TechnicalContact.Email},
		Serial: strings.ReplaceAll(certID, "-", ""), Issuer: "CN=Certlife TLS CA", NotBefore: r.Clock.Now(), NotAfter: notAfter,
		CustomerID: app.Server.CustomerID, OrderID: app.Server.OrderID, DNSNames: app.Server.Names()}, app.ID)
	return certID
}

// SV-4 (with SV-11, SV-12): a certificate we issued is recorded with its
// coverage; its notice makes a renewal order; when the paid order gets
// no application within AUTO_REAPPLY_AFTER, intake applies with the
// previous application's data and CSR, marked AutoReapplied. Not before.
func TestAutoReapplyAfterPayment_SV4(t *testing.T) {
	r := newRigWith(t, testenv.Options{}, intake.Options{AutoReapplyAfter: 14 * 24 * time.Hour})
	a := r.submit(t, serverBody(t, "auto@example.co.jp", exampleDN))
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	tok := r.customerLogin(t, "auto@example.co.jp", "a customer password")
	notAfter := r.Clock.Now().Add(200 * 24 * time.Hour).Truncate(time.Second)
	certID := r.issue(t, prov.Application, notAfter)
	first := r.waitOrder(t, tok, prov.Application.Server.OrderID, "issued", func(o orderView) bool { return o.Status == "issued" })
	if first.CertificateID != certID || first.step("issuance", "").Status != "done" {
		t.Fatalf("issued order %+v", first)
	}
	r.Advance(141 * 24 * time.Hour) // 59 days before expiry
	tok = r.customerLogin(t, "auto@example.co.jp", "a customer password")
	r.notice(t, certID, prov.Application.ApplicantID, notAfter, 60)
	placed := r.noticeOrder(t, certID)
	if placed.Notice.Imported {
		t.Fatal("our certificate announced as imported")
	}
	r.payOrder(t, placed.OrderID, prov.Application.ApplicantID)
	r.waitOrder(t, tok, placed.OrderID, "paid", func(o orderView) bool { return o.Status == "awaiting_application" })
	r.Advance(13 * 24 * time.Hour)
	tok = r.customerLogin(t, "auto@example.co.jp", "a customer password")
	if o := r.order(t, tok, placed.OrderID); o.ApplicationID != "" {
		t.Fatalf("re-applied early: %+v", o)
	}
	r.Advance(24*time.Hour + time.Minute)
	tok = r.customerLogin(t, "auto@example.co.jp", "a customer password")
	o := r.order(t, tok, placed.OrderID)
	if o.ApplicationID == "" || o.Kind != "renewal" || o.Status != "in_progress" {
		t.Fatalf("not re-applied: %+v", o)
	}
	auto := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, o.ApplicationID, 10*time.Second))
	srv := auto.Application.Server
	if !srv.AutoReapplied || srv.CSR != prov.Application.Server.CSR || srv.RenewalOf != certID ||
		srv.CoverageEnd.Sub(prov.Application.Server.CoverageEnd.AddDate(0, 12, 0)).Abs() > time.Millisecond || len(srv.Domains) != 2 {
		t.Fatalf("auto application %+v", srv)
	}
	// The application view says so.
	resp := r.Do("GET", "/v1/applications/"+o.ApplicationID, nil, bearer(tok)...)
	if !strings.Contains(string(resp.Body), `"auto_reapplied":true`) {
		t.Fatalf("view %s", resp.Body)
	}
}

// SV-3 with client applications unchanged: a PaymentConfirmed of an
// order (no application ID) does not disturb intake's consumer, and one
// naming an unknown order is ignored.
func TestOrderPaymentIgnoredForClientFlow(t *testing.T) {
	r := newRig(t, testenv.Options{})
	r.Publish(events.PaymentConfirmed{OrderID: uuid.NewString(), InvoiceID: "i", CustomerID: uuid.NewString(), Method: "card", Reference: "r"}, "x")
	r.Publish(events.RenewalDue{CertificateID: uuid.NewString(), ApplicantID: uuid.NewString(), Product: "server",
		Recipient: events.Recipient{Email: "a@example.co.jp"}}, "y")
	r.Settle("intake-applications", 10*time.Second)
	var failures int
	if err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(), `SELECT count(*) FROM consumer_failures`).Scan(&failures); err != nil {
		t.Fatal(err)
	}
	if failures != 0 {
		t.Fatalf("%d consumer failures", failures)
	}
}

// SE-3, SE-7 for customers: every customer sign-in costs exactly one
// argon2id whatever is wrong (unknown e-mail, wrong password, an imported
// customer without a password), and ten failures lock the e-mail (429)
// even for the right password.
func TestCustomerSignInOneHashAndLockout_SE3_SE7(t *testing.T) {
	r := newRig(t, testenv.Options{})
	r.submit(t, serverBody(t, "lock@example.co.jp", exampleDN))
	r.importCert(t, "nopass@example.co.jp", exampleDN, r.Clock.Now().Add(80*24*time.Hour))
	for _, c := range []struct{ email, password string }{
		{"nobody@example.co.jp", "whatever password"},
		{"lock@example.co.jp", "wrong password"},
		{"nopass@example.co.jp", "whatever password"},
	} {
		before := r.metric(t, "argon2_evaluations_total")
		resp := r.Do("POST", "/v1/sessions", map[string]any{"email": c.email, "password": c.password})
		if resp.Status != 401 {
			t.Fatalf("%s: %d %s", c.email, resp.Status, resp.Body)
		}
		if n := r.metric(t, "argon2_evaluations_total") - before; n != 1 {
			t.Fatalf("%s: %v argon2id evaluations", c.email, n)
		}
	}
	before := r.metric(t, "argon2_evaluations_total")
	r.customerLogin(t, "lock@example.co.jp", "a customer password")
	if n := r.metric(t, "argon2_evaluations_total") - before; n != 1 {
		t.Fatalf("success: %v argon2id evaluations", n)
	}
	for i := 0; i < 10; i++ {
		if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "lock@example.co.jp", "password": "wrong password"}); resp.Status != 401 {
			t.Fatalf("failure %d: %d", i, resp.Status)
		}
	}
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "lock@example.co.jp", "password": "a customer password"}); resp.Status != 429 {
		t.Fatalf("after ten failures: %d", resp.Status)
	}
	// The application path with the existing customer's password is
	// throttled the same way.
	if resp := r.Do("POST", "/v1/applications", serverBody(t, "lock@example.co.jp", exampleDN)); resp.Status != 429 {
		t.Fatalf("application while locked: %d %s", resp.Status, resp.Body)
	}
}

// SV-12: the later steps — phone, review, issuance — and payment
// failures and refunds show on the order as they are reported.
func TestOrderStepsReviewIssuancePayment_SV12(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, serverBody(t, "steps@example.co.jp", exampleDN))
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	app := prov.Application
	orderID := app.Server.OrderID
	tok := r.customerLogin(t, "steps@example.co.jp", "a customer password")
	r.Publish(events.PaymentFailed{InvoiceID: "i", OrderID: orderID, CustomerID: app.ApplicantID, Reason: "card declined"}, orderID)
	o := r.waitOrder(t, tok, orderID, "payment failed", func(o orderView) bool { return o.step("payment", "").Status == "failed" })
	if !strings.Contains(o.step("payment", "").Detail, "card declined") || o.Status != "awaiting_payment" {
		t.Fatalf("%+v", o)
	}
	r.Advance(time.Minute)
	r.payOrder(t, orderID, app.ApplicantID)
	r.waitOrder(t, tok, orderID, "paid", func(o orderView) bool { return o.step("payment", "").Status == "done" })
	r.Advance(time.Minute)
	r.Publish(events.PaymentRefunded{InvoiceID: "i", OrderID: orderID, CustomerID: app.ApplicantID, Amount: 11000, Currency: "JPY"}, orderID)
	o = r.waitOrder(t, tok, orderID, "refunded", func(o orderView) bool { return o.step("payment", "").Status == "refunded" })
	if o.Status != "refunded" {
		t.Fatalf("status %s", o.Status)
	}
	r.Advance(time.Minute)
	r.payOrder(t, orderID, app.ApplicantID)
	r.Publish(events.PhoneVerified{ApplicationID: app.ID, CheckID: "c1", Confirmed: true, Operator: "op", At: r.Clock.Now()}, app.ID)
	r.Publish(events.ReviewApproved{ReviewID: "rv", Application: app, Reviewer: "auto"}, app.ID)
	r.Publish(events.CertificateIssuanceFailed{CertificateID: uuid.NewString(), ApplicationID: app.ID, Product: "server",
		Stage: "ct", Detail: "1 SCT of 2", Attempt: 1, NextAttemptAt: r.Clock.Now().Add(time.Minute), FailedAt: r.Clock.Now()}, app.ID)
	o = r.waitOrder(t, tok, orderID, "later steps", func(o orderView) bool {
		return o.step("phone", "").Status == "done" && o.step("review", "").Status == "done" &&
			strings.Contains(o.step("issuance", "").Detail, "1 SCT of 2") && o.step("payment", "").Status == "done"
	})
	if o.step("issuance", "").Status != "pending" || o.Status != "in_progress" {
		t.Fatalf("%+v", o)
	}
	r.Advance(time.Minute)
	certID := r.issue(t, app, r.Clock.Now().Add(199*24*time.Hour))
	o = r.waitOrder(t, tok, orderID, "issued", func(o orderView) bool { return o.Status == "issued" })
	if o.CertificateID != certID || o.step("issuance", "").Status != "done" {
		t.Fatalf("%+v", o)
	}
	v := r.Do("GET", "/v1/applications/"+app.ID, nil, bearer(tok)...)
	var av struct {
		Status        string `json:"status"`
		CertificateID string `json:"certificate_id"`
	}
	v.JSON(t, &av)
	if av.Status != "issued" || av.CertificateID != certID {
		t.Fatalf("application %s", v.Body)
	}
	// A redelivered CertificateIssued changes nothing (EV inbox).
	r.Settle("intake-applications", 10*time.Second)
	if n := r.count(t, "server_certificates"); n != 1 {
		t.Fatalf("%d certificates", n)
	}
}

// PC-4 for server applications: cancelling in the window cancels the
// order it placed (OrderCancelled, for billing's invoice).
func TestServerApplicationCancelCancelsItsOrder_PC4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, serverBody(t, "cancel@example.co.jp", exampleDN))
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	tok := r.customerLogin(t, "cancel@example.co.jp", "a customer password")
	if resp := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, bearer(tok)...); resp.Status != 200 {
		t.Fatalf("cancel: %d %s", resp.Status, resp.Body)
	}
	oc := decode[events.OrderCancelled](t, r.WaitEvent(events.TypeOrderCancelled, prov.Application.Server.OrderID, 10*time.Second))
	if oc.Reason != "application_cancelled" {
		t.Fatalf("%+v", oc)
	}
	if o := r.order(t, tok, oc.OrderID); o.Status != "cancelled" {
		t.Fatalf("order %+v", o)
	}
	// The cancelled order cannot be applied for.
	b := serverBody(t, "cancel@example.co.jp", exampleDN)
	delete(b, "password")
	b["order"] = oc.OrderID
	if resp := r.Do("POST", "/v1/applications", b, bearer(tok)...); resp.Status != 409 {
		t.Fatalf("apply to a cancelled order: %d %s", resp.Status, resp.Body)
	}
}

// Password-setup links are pruned a day after they expire (30 days).
func TestSetupTokensArePruned(t *testing.T) {
	r := newRig(t, testenv.Options{})
	r.importCert(t, "prune-setup@example.co.jp", exampleDN, r.Clock.Now().Add(80*24*time.Hour))
	if r.count(t, "customer_setup_tokens") != 1 {
		t.Fatal("no setup token")
	}
	r.Advance(30 * 24 * time.Hour)
	if r.count(t, "customer_setup_tokens") != 1 {
		t.Fatal("a live token was pruned")
	}
	r.Advance(25 * time.Hour)
	testenv.Eventually(t, 10*time.Second, "setup token pruned", func() bool {
		r.Advance(time.Minute)
		return r.count(t, "customer_setup_tokens") == 0
	})
}
