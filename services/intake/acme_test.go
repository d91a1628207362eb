package intake_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/challenge/http01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/miekg/dns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// The ACME server (SPEC §4.10) driven by lego, a client nobody here wrote
// (AC-5). Intake runs alone: the validation service's and the issuer's
// parts of the contract are played by stand-ins on the same NATS — the
// challenge is really fetched (http-01) or looked up (dns-01), and a
// throwaway CA signs the CSR — while cmd/certplatform's test runs the
// real pipeline.

// acmeRig is intake with an authoritative DNS server for dns-01 and the
// stand-ins.
type acmeRig struct {
	*rig
	dns      *testenv.DNSServer
	httpPort int
	ca       *testCA
	// tls serves the same handler over HTTPS: lego requires it.
	tls       *httptest.Server
	customers map[string]string // name → customer ID
}

func startACME(t *testing.T, edit func(*app.Config)) *acmeRig {
	t.Helper()
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true")
	r := &acmeRig{dns: testenv.StartDNS(t), httpPort: freePort(t), ca: newTestCA(t)}
	r.dns.AddZone(t, "test.", testenv.Unsigned)
	r.rig = newRig(t, testenv.Options{Config: func(c *app.Config) {
		c.OpsTokens = testenv.OpsToken + ":admin,billing-token-0123456789:billing,reviewer-token-0123456789:reviewer"
		if edit != nil {
			edit(c)
		}
	}})
	r.tls = httptest.NewTLSServer(r.Server.Config.Handler)
	t.Cleanup(r.tls.Close)
	r.standIns(t)
	return r
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// standIns answer ACMEChallengeReady as the validation service does
// (the key authorization fetched over HTTP, or its digest looked up in
// DNS) and ACMEOrderFinalized as validation and issuer do together (a
// certificate for the CSR, CertificateIssued with its chain).
func (r *acmeRig) standIns(t *testing.T) {
	publish := func(p events.Payload) {
		env, err := events.New(p, r.Clock.Now(), "")
		if err != nil {
			t.Error(err)
			return
		}
		raw, _ := env.Marshal()
		if _, err := r.JS.Publish(context.Background(), events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
			t.Error(err)
		}
	}
	sub1, err := r.NC.Subscribe(events.Subject(events.TypeACMEChallengeReady), func(m *nats.Msg) {
		env, _ := events.Parse(m.Data)
		ev, err := events.Decode[events.ACMEChallengeReady](env)
		if err != nil {
			t.Error(err)
			return
		}
		found := ""
		if ev.Method == events.DCVMethodHTTP01 {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(r.httpPort)+"/.well-known/acme-challenge/"+ev.Token, nil)
			req.Host = ev.Domain
			if resp, err := http.DefaultClient.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				found = strings.TrimSpace(string(b))
			}
		} else {
			msg := new(dns.Msg)
			msg.SetQuestion("_acme-challenge."+strings.TrimPrefix(ev.Domain, "*.")+".", dns.TypeTXT)
			if in, err := dns.Exchange(msg, r.dns.Addr); err == nil {
				want := dns01.GetChallengeInfo(context.Background(), ev.Domain, ev.KeyAuthorization).Value
				for _, rr := range in.Answer {
					if txt, ok := rr.(*dns.TXT); ok {
						if found = strings.Join(txt.Txt, ""); found == want {
							found = ev.KeyAuthorization
							break
						}
					}
				}
			}
		}
		if found == ev.KeyAuthorization {
			publish(events.ACMEChallengeValidated{AuthzID: ev.AuthzID, Domain: ev.Domain, Method: ev.Method, ValidatedAt: r.Clock.Now()})
			return
		}
		publish(events.ACMEChallengeFailed{AuthzID: ev.AuthzID, Domain: ev.Domain, Method: ev.Method,
			ErrorType: "urn:ietf:params:acme:error:unauthorized", Detail: "expected " + ev.KeyAuthorization + ", found " + found, FailedAt: r.Clock.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	sub2, err := r.NC.Subscribe(events.Subject(events.TypeACMEOrderFinalized), func(m *nats.Msg) {
		env, _ := events.Parse(m.Data)
		ev, err := events.Decode[events.ACMEOrderFinalized](env)
		if err != nil {
			t.Error(err)
			return
		}
		srv := ev.Application.Server
		if strings.HasPrefix(srv.CommonName, "caa-late.") {
			// Validation's CAA recheck before approval refuses it.
			publish(events.ReviewRejected{ReviewID: uuid.NewString(), ApplicationID: ev.Application.ID, Reviewer: events.ReviewerACME,
				Reason: "urn:ietf:params:acme:error:caa: CAA forbids issuance: " + srv.CommonName, Recipient: ev.Application.Recipient()})
			return
		}
		chain, serial, leaf := r.ca.sign(t, srv.CSR, srv.Names(), r.Clock.Now())
		publish(events.CertificateIssued{CertificateID: uuid.NewString(), ApplicationID: ev.Application.ID,
			ApplicantID: ev.Application.ApplicantID, Product: events.ProductServer, Kind: ev.Application.Kind,
			Recipient: events.Recipient{Email: srv.TechnicalContact.Email}, Serial: serial, Issuer: "test",
			NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, CustomerID: srv.CustomerID, OrderID: srv.OrderID,
			DNSNames: srv.Names(), PEMChain: chain})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub1.Unsubscribe(); _ = sub2.Unsubscribe() })
}

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ACME test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: cert}
}

func (c *testCA) sign(t *testing.T, csrPEM string, names []string, now time.Time) (string, string, *x509.Certificate) {
	block, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Error(err)
		return "", "", nil
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(90 * 24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		t.Error(err)
		return "", "", nil
	}
	leaf, _ := x509.ParseCertificate(der)
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw}))
	return chain, serial.Text(16), leaf
}

// customer makes a server customer (intake's customers; the orders
// flow makes them from a server application or an import) and returns its
// ID; one per name.
func (r *acmeRig) customer(t *testing.T, name string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.customers == nil {
		r.customers = map[string]string{}
	}
	if id, ok := r.customers[name]; ok {
		return id
	}
	id := uuid.NewString()
	if _, err := r.Unit("intake").Deps.Pool.Exec(context.Background(), `INSERT INTO customers (id, email, name, language, created_at)
		VALUES ($1, $2, $3, 'en', now())`, id, "billing@"+name+".example", "Customer "+name); err != nil {
		t.Fatal(err)
	}
	r.customers[name] = id
	return id
}

// eabKey issues an EAB key for a customer (AC-2) through the ops route.
func (r *acmeRig) eabKey(t *testing.T, name string, coverageEnd time.Time) (string, string) {
	t.Helper()
	customer := r.customer(t, name)
	body := map[string]any{"customer": customer,
		"organization": map[string]any{"duns": "690000001", "name_en": "Certlife Test K.K.",
			"address": map[string]any{"city": "Chuo-ku", "state": "Tokyo", "country": "JP"}},
		"contact": map[string]any{"name": "Tech Contact", "email": "tech@" + name + ".example"}, "term_months": 12}
	if !coverageEnd.IsZero() {
		body["coverage_end"] = coverageEnd
	}
	resp := r.Do("POST", "/ops/v1/acme/eab-keys", body, "Authorization", "Bearer billing-token-0123456789")
	if resp.Status != 201 {
		t.Fatalf("eab key: %d %s", resp.Status, resp.Body)
	}
	var out struct {
		KID     string `json:"kid"`
		HMACKey string `json:"hmac_key"`
	}
	resp.JSON(t, &out)
	if out.KID == "" || len(out.HMACKey) < 40 {
		t.Fatalf("eab key: %s", resp.Body)
	}
	return out.KID, out.HMACKey
}

type legoUser struct {
	email string
	reg   *acme.ExtendedAccount
	key   crypto.Signer
}

func (u *legoUser) GetEmail() string                       { return u.email }
func (u *legoUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.Signer           { return u.key }

func (r *acmeRig) directory() string { return r.tls.URL + "/acme/directory" }

func (r *acmeRig) legoClient(t *testing.T, u *legoUser) *lego.Client {
	t.Helper()
	cfg := lego.NewConfig(u)
	cfg.CADirURL = r.directory()
	cfg.HTTPClient = r.tls.Client()
	cfg.Certificate.Timeout = 10 * time.Second // lego polls an invalid order until this ends
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// register makes a lego account bound by EAB.
func (r *acmeRig) register(t *testing.T, customer string) (*lego.Client, *legoUser) {
	t.Helper()
	return r.registerWith(t, customer, time.Time{})
}

func (r *acmeRig) registerWith(t *testing.T, customer string, coverageEnd time.Time) (*lego.Client, *legoUser) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &legoUser{email: "ops@" + customer + ".example", key: key}
	c := r.legoClient(t, u)
	kid, hmac := r.eabKey(t, customer, coverageEnd)
	reg, err := c.Registration.RegisterWithExternalAccountBinding(context.Background(),
		registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmac})
	if err != nil {
		t.Fatalf("register with EAB: %v", err)
	}
	u.reg = reg
	return c, u
}

// dnsProvider publishes dns-01 records in the in-test authoritative
// server.
type dnsProvider struct {
	t   *testing.T
	dns *testenv.DNSServer
	mu  sync.Mutex
	txt map[string][]string
}

func (p *dnsProvider) Present(ctx context.Context, domain, token, keyAuth string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := dns01.GetChallengeInfo(ctx, domain, keyAuth)
	if p.txt == nil {
		p.txt = map[string][]string{}
	}
	p.txt[info.FQDN] = append(p.txt[info.FQDN], info.Value)
	p.dns.TXT(p.t, info.FQDN, p.txt[info.FQDN]...)
	return nil
}

func (p *dnsProvider) CleanUp(context.Context, string, string, string) error { return nil }

func (p *dnsProvider) Timeout() (time.Duration, time.Duration) {
	return 30 * time.Second, 200 * time.Millisecond
}

// TestACME_AC1_AC2_AC3_AC5_Lego: lego registers with EAB (AC-2), obtains
// a certificate by http-01 with its own HTTP provider and one for a
// wildcard by dns-01 (AC-1), asks for its ARI window (the last third,
// AC-3), sees it moved into the past by an operator, and renews with
// replaces, recorded (AC-3); every order is an order of part 1 (AC-4).
func TestACME_AC1_AC2_AC3_AC5_Lego(t *testing.T) {
	r := startACME(t, nil)
	ctx := context.Background()

	c, _ := r.register(t, "cust-lego")
	if err := c.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(r.httpPort))); err != nil {
		t.Fatal(err)
	}
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"www.acme1.test", "acme1.test"}, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain http-01: %v", err)
	}
	leaf := parseLeaf(t, res.Certificate)
	if strings.Join(leaf.DNSNames, ",") != "www.acme1.test,acme1.test" {
		t.Fatalf("names %v", leaf.DNSNames)
	}
	if !strings.Contains(string(res.Certificate), "BEGIN CERTIFICATE") || strings.Count(string(res.Certificate), "BEGIN CERTIFICATE") != 2 {
		t.Fatalf("chain: %s", res.Certificate)
	}
	placed := r.WaitEvent(events.TypeOrderPlaced, "", 10*time.Second)
	op, _ := events.Decode[events.OrderPlaced](placed)
	if op.Source != events.OrderSourceACME || op.CustomerID != r.customer(t, "cust-lego") || op.Product != events.ProductServer {
		t.Fatalf("OrderPlaced %+v", op)
	}
	// AC-4: the ACME order is one of the customer's orders, issued, and
	// its certificate one of the customer's server certificates.
	var orders, certs int
	pool := r.Unit("intake").Deps.Pool
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer_id = $1 AND source = 'acme' AND certificate_id IS NOT NULL
		AND application_id IS NOT NULL AND paid_at IS NOT NULL`, op.CustomerID).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM server_certificates WHERE customer_id = $1 AND organization = 'Certlife Test K.K.'
		AND dns_names @> '["www.acme1.test"]'`, op.CustomerID).Scan(&certs); err != nil {
		t.Fatal(err)
	}
	if orders != 1 || certs != 1 {
		t.Fatalf("orders of part 1: %d issued ACME orders, %d server certificates", orders, certs)
	}

	// dns-01 for a wildcard and its base, lego's dns-01 solver against the
	// in-test authoritative server.
	c2, _ := r.register(t, "cust-dns")
	if err := c2.Challenge.SetDNS01Provider(&dnsProvider{t: t, dns: r.dns}, dns01.PropagationWait(0, true)); err != nil {
		t.Fatal(err)
	}
	res2, err := c2.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"*.wild.test", "wild.test"}, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain dns-01: %v", err)
	}
	if l := parseLeaf(t, res2.Certificate); !strings.Contains(strings.Join(l.DNSNames, ","), "*.wild.test") {
		t.Fatalf("names %v", l.DNSNames)
	}

	// ARI (AC-3): the last third of the validity.
	info, err := c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatalf("renewal info: %v", err)
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if d := info.SuggestedWindow.Start.Sub(leaf.NotBefore.Add(life * 2 / 3)); d < -time.Second || d > time.Second {
		t.Fatalf("window starts %s, want %s", info.SuggestedWindow.Start, leaf.NotBefore.Add(life*2/3))
	}
	if at := info.ShouldRenewAt(r.Clock.Now(), time.Hour); at != nil {
		t.Fatalf("renew at %s already", at)
	}
	// An operator marks it for early replacement (e.g. OP-5).
	resp := r.Ops("POST", "/ops/v1/acme/early-renewals", map[string]any{"certificates": []string{leaf.SerialNumber.Text(16)}, "reason": "mass revocation drill"})
	if resp.Status != 200 || !strings.Contains(string(resp.Body), strings.Split(res.CertURL, "/cert/")[1]) {
		t.Fatalf("early renewal: %d %s", resp.Status, resp.Body)
	}
	info, err = c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	if !info.SuggestedWindow.End.Before(r.Clock.Now().Add(time.Second)) {
		t.Fatalf("window %v not in the past", info.SuggestedWindow)
	}
	if at := info.ShouldRenewAt(r.Clock.Now(), time.Hour); at == nil || at.After(r.Clock.Now().Add(time.Second)) {
		t.Fatalf("lego does not renew now: %v", at)
	}
	// lego renews with replaces (RFC 9773 §5).
	renewed, err := c.Certificate.Renew(ctx, *res, &certificate.RenewOptions{Bundle: true, UseARICertID: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if parseLeaf(t, renewed.Certificate).SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("renewal returned the same certificate")
	}
	var replaces, replacedBy string
	if err := r.Unit("intake").Deps.Pool.QueryRow(ctx, `SELECT o.replaces, c.replaced_by::text FROM acme_orders o
		JOIN acme_certificates c ON c.cert_id = o.replaces WHERE o.replaces IS NOT NULL`).Scan(&replaces, &replacedBy); err != nil {
		t.Fatalf("replaces not recorded: %v", err)
	}
	certID, _ := certIDOf(leaf)
	if replaces != certID || replacedBy == "" {
		t.Fatalf("replaces %q (want %q), replaced by %q", replaces, certID, replacedBy)
	}
	renewal := r.WaitEvent(events.TypeOrderPlaced, "", 10*time.Second)
	_ = renewal
	found := false
	for _, e := range r.Events(events.TypeOrderPlaced) {
		if p, _ := events.Decode[events.OrderPlaced](e); p.Kind == events.OrderKindRenewal && p.RenewalOf == strings.Split(res.CertURL, "/cert/")[1] {
			found = true
		}
	}
	if !found {
		t.Fatal("no renewal OrderPlaced naming the replaced certificate")
	}
	// A second replacement of the same certificate is refused.
	_, err = c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"www.acme1.test"}, ReplacesCertID: certID, KeyType: certcrypto.EC256})
	var pd *acme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:conflict" {
		t.Fatalf("second replacement: %v", err)
	}

	// OP-3: three orders (http-01, dns-01, the renewal reusing the
	// authorizations) created, ready, finalized and valid; four
	// challenges answered valid; nonces issued (the second replacement,
	// refused, created no order).
	r.acmeCounts(t, map[string]float64{
		`acme_orders_total{service="intake",status="created"}`:                    3,
		`acme_orders_total{service="intake",status="ready"}`:                      3,
		`acme_orders_total{service="intake",status="processing"}`:                 3,
		`acme_orders_total{service="intake",status="valid"}`:                      3,
		`acme_orders_total{service="intake",status="invalid"}`:                    0,
		`acme_challenges_total{result="valid",service="intake",type="http-01"}`:   2,
		`acme_challenges_total{result="valid",service="intake",type="dns-01"}`:    2,
		`acme_challenges_total{result="invalid",service="intake",type="http-01"}`: 0,
	})
	if n := r.metric(t, "acme_nonces_issued_total"); n < 10 {
		t.Errorf("acme_nonces_issued_total %v", n)
	}
	if n, _ := r.series(t, `http_requests_total{code="201",method="POST",route="/acme/new-order"}`); n != 3 {
		t.Errorf("new-order requests by route pattern: %v, want 3", n)
	}

	// Revocation by the account (RFC 8555 §7.6) asks the issuer.
	if err := c.Certificate.Revoke(ctx, renewed.Certificate); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	r.WaitEvent(events.TypeACMERevocationRequested, "", 10*time.Second)
}

func parseLeaf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatalf("no PEM: %s", chain)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certIDOf(c *x509.Certificate) (string, error) {
	der, err := asn1Serial(c.SerialNumber)
	return base64.RawURLEncoding.EncodeToString(c.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(der), err
}

func asn1Serial(n *big.Int) ([]byte, error) {
	b := n.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b, nil
}

// --- bad input (issue 10 item 6): raw JWS requests ---

type jwsClient struct {
	t    *testing.T
	r    *acmeRig
	key  *ecdsa.PrivateKey
	kid  string
	http *http.Client
}

func (r *acmeRig) nonce(t *testing.T) string {
	resp, err := r.tls.Client().Head(r.tls.URL + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		t.Fatal("no nonce")
	}
	return n
}

type jwsOpts struct {
	alg      jose.SignatureAlgorithm
	key      any
	kid      string
	embedJWK bool
	nonce    string
	url      string
}

func signJWS(t *testing.T, o jwsOpts, payload []byte) []byte {
	t.Helper()
	sk := jose.SigningKey{Algorithm: o.alg, Key: o.key}
	opts := &jose.SignerOptions{EmbedJWK: o.embedJWK, ExtraHeaders: map[jose.HeaderKey]any{"url": o.url}}
	if o.nonce != "" {
		opts.ExtraHeaders[jose.HeaderKey("nonce")] = o.nonce
	}
	switch {
	case o.kid != "" && o.embedJWK:
		opts.ExtraHeaders[jose.HeaderKey("kid")] = o.kid
	case o.kid != "":
		sk.Key = jose.JSONWebKey{Key: o.key, KeyID: o.kid}
	}
	s, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(obj.FullSerialize())
}

type acmeResp struct {
	status int
	header http.Header
	body   []byte
}

func (a acmeResp) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(a.body, &p)
	return p.Type
}

func (r *acmeRig) postJWS(t *testing.T, path string, body []byte) acmeResp {
	t.Helper()
	resp, err := r.tls.Client().Post(r.tls.URL+path, "application/jose+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return acmeResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestACME_AC1_AC2_BadInput: each bad request gets its RFC 8555 problem
// and stores nothing: no EAB, a wrong EAB MAC, a bad or replayed nonce, a
// bad signature, a wrong url, kid and jwk together, an unsupported
// algorithm, an oversized JWS, an unknown account, IP and internal
// names, finalize before the order is ready.
func TestACME_AC1_AC2_BadInput(t *testing.T) {
	r := startACME(t, nil)
	ctx := context.Background()
	base := r.tls.URL + "/acme/"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newAcct := []byte(`{"termsOfServiceAgreed":true}`)

	// No EAB (ACME_EAB_REQUIRED defaults to true).
	u := &legoUser{email: "x@cust-bad.example", key: key}
	_, err := r.legoClient(t, u).Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	var pd *acme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:externalAccountRequired" {
		t.Fatalf("no EAB: %v", err)
	}
	// A wrong MAC key.
	kid, _ := r.eabKey(t, "cust-bad", time.Time{})
	wrong := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	_, err = r.legoClient(t, u).Registration.RegisterWithExternalAccountBinding(ctx,
		registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: wrong})
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("wrong EAB MAC: %v", err)
	}
	// An unknown EAB kid.
	_, err = r.legoClient(t, u).Registration.RegisterWithExternalAccountBinding(ctx,
		registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: "eab_unknown", HmacEncoded: wrong})
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("unknown EAB kid: %v", err)
	}
	if n := r.count(t, "acme_accounts"); n != 0 {
		t.Fatalf("%d accounts stored", n)
	}

	jwk := jwsOpts{alg: jose.ES256, key: key, embedJWK: true, url: base + "new-account"}
	badNonces := r.metric(t, "acme_bad_nonces_total")
	// A made-up nonce: badNonce, with a fresh nonce to retry with.
	o := jwk
	o.nonce = "bm90LWEtbm9uY2U"
	a := r.postJWS(t, "/acme/new-account", signJWS(t, o, newAcct))
	if a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:badNonce" || a.header.Get("Replay-Nonce") == "" {
		t.Fatalf("bad nonce: %d %s %v", a.status, a.body, a.header)
	}
	// A replayed nonce.
	o.nonce = r.nonce(t)
	first := r.postJWS(t, "/acme/new-account", signJWS(t, o, newAcct))
	if first.problemType() != "urn:ietf:params:acme:error:externalAccountRequired" {
		t.Fatalf("first use: %d %s", first.status, first.body)
	}
	if a := r.postJWS(t, "/acme/new-account", signJWS(t, o, newAcct)); a.problemType() != "urn:ietf:params:acme:error:badNonce" {
		t.Fatalf("replayed nonce: %d %s", a.status, a.body)
	}
	if n := r.metric(t, "acme_bad_nonces_total") - badNonces; n != 2 {
		t.Errorf("acme_bad_nonces_total moved by %v, want 2 (OP-3)", n)
	}
	// A bad signature.
	o.nonce = r.nonce(t)
	raw := signJWS(t, o, newAcct)
	var f map[string]string
	_ = json.Unmarshal(raw, &f)
	sig, _ := base64.RawURLEncoding.DecodeString(f["signature"])
	sig[5] ^= 0xff
	f["signature"] = base64.RawURLEncoding.EncodeToString(sig)
	raw, _ = json.Marshal(f)
	if a := r.postJWS(t, "/acme/new-account", raw); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:malformed" {
		t.Fatalf("bad signature: %d %s", a.status, a.body)
	}
	// A url that is not the request's.
	o.nonce, o.url = r.nonce(t), base+"new-order"
	if a := r.postJWS(t, "/acme/new-account", signJWS(t, o, newAcct)); a.status != 403 || a.problemType() != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("wrong url: %d %s", a.status, a.body)
	}
	// kid and jwk together.
	o = jwsOpts{alg: jose.ES256, key: key, embedJWK: true, kid: base + "acct/x", url: base + "new-account", nonce: r.nonce(t)}
	if a := r.postJWS(t, "/acme/new-account", signJWS(t, o, newAcct)); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:malformed" {
		t.Fatalf("kid and jwk: %d %s", a.status, a.body)
	}
	// An algorithm not accepted (HS256).
	o = jwsOpts{alg: jose.HS256, key: bytes.Repeat([]byte{1}, 32), kid: base + "acct/x", url: base + "new-order", nonce: r.nonce(t)}
	if a := r.postJWS(t, "/acme/new-order", signJWS(t, o, []byte(`{}`))); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:badSignatureAlgorithm" {
		t.Fatalf("HS256: %d %s", a.status, a.body)
	}
	// An oversized JWS.
	o = jwk
	o.nonce = r.nonce(t)
	big := signJWS(t, o, []byte(`{"contact":["mailto:`+strings.Repeat("a", 70000)+`@x.example"]}`))
	if a := r.postJWS(t, "/acme/new-account", big); a.status != 413 || a.problemType() != "urn:ietf:params:acme:error:malformed" {
		t.Fatalf("oversized: %d %s", a.status, a.body)
	}
	// An unknown account.
	o = jwsOpts{alg: jose.ES256, key: key, kid: base + "acct/0193a7f0-0000-7000-8000-000000000000", url: base + "new-order", nonce: r.nonce(t)}
	if a := r.postJWS(t, "/acme/new-order", signJWS(t, o, []byte(`{"identifiers":[{"type":"dns","value":"a.test"}]}`))); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:accountDoesNotExist" {
		t.Fatalf("unknown account: %d %s", a.status, a.body)
	}
	// onlyReturnExisting for an unknown key.
	o = jwk
	o.nonce = r.nonce(t)
	if a := r.postJWS(t, "/acme/new-account", signJWS(t, o, []byte(`{"onlyReturnExisting":true}`))); a.problemType() != "urn:ietf:params:acme:error:accountDoesNotExist" {
		t.Fatalf("onlyReturnExisting: %d %s", a.status, a.body)
	}
	if n := r.count(t, "acme_accounts"); n != 0 {
		t.Fatalf("%d accounts stored", n)
	}

	// A real account, then orders it may not make.
	c, user := r.register(t, "cust-bad2")
	acct := user.reg.Location
	order := func(ids string) acmeResp {
		o := jwsOpts{alg: jose.ES256, key: user.key, kid: acct, url: base + "new-order", nonce: r.nonce(t)}
		return r.postJWS(t, "/acme/new-order", signJWS(t, o, []byte(`{"identifiers":`+ids+`}`)))
	}
	for _, ids := range []string{`[{"type":"ip","value":"192.0.2.1"}]`, `[{"type":"dns","value":"192.0.2.1"}]`,
		`[{"type":"dns","value":"intranet"}]`, `[{"type":"dns","value":"host.corp"}]`, `[{"type":"dns","value":"a.local"}]`,
		`[{"type":"dns","value":"a.*.test"}]`, `[{"type":"dns","value":"ok.test"},{"type":"dns","value":"x.internal"}]`} {
		if a := order(ids); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:rejectedIdentifier" {
			t.Fatalf("order %s: %d %s", ids, a.status, a.body)
		}
	}
	if n := r.count(t, "acme_orders"); n != 0 {
		t.Fatalf("%d orders stored", n)
	}
	// A jwk-signed new-order is refused (kid required).
	o = jwsOpts{alg: jose.ES256, key: user.key, embedJWK: true, url: base + "new-order", nonce: r.nonce(t)}
	if a := r.postJWS(t, "/acme/new-order", signJWS(t, o, []byte(`{"identifiers":[{"type":"dns","value":"a.test"}]}`))); a.problemType() != "urn:ietf:params:acme:error:malformed" {
		t.Fatalf("jwk on new-order: %d %s", a.status, a.body)
	}
	// Finalize before the order is ready.
	a = order(`[{"type":"dns","value":"notready.test"}]`)
	if a.status != 201 || a.header.Get("Location") == "" || a.header.Get("Retry-After") == "" {
		t.Fatalf("order: %d %s", a.status, a.body)
	}
	var ord struct {
		Finalize string `json:"finalize"`
		Status   string `json:"status"`
	}
	_ = json.Unmarshal(a.body, &ord)
	csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"notready.test"}}, csrKey)
	o = jwsOpts{alg: jose.ES256, key: user.key, kid: acct, url: ord.Finalize, nonce: r.nonce(t)}
	fin := r.postJWS(t, strings.TrimPrefix(ord.Finalize, r.tls.URL), signJWS(t, o, []byte(`{"csr":"`+base64.RawURLEncoding.EncodeToString(csr)+`"}`)))
	if fin.status != 403 || fin.problemType() != "urn:ietf:params:acme:error:orderNotReady" {
		t.Fatalf("finalize before ready: %d %s", fin.status, fin.body)
	}
	_ = c
	// Deactivated account: further requests are unauthorized.
	if err := c.Registration.DeleteRegistration(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if a := order(`[{"type":"dns","value":"after.test"}]`); a.status != 403 || a.problemType() != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("deactivated: %d %s", a.status, a.body)
	}
}

// TestACME_AC2_EABKeysOpsRoute: the ops route needs the billing (or
// admin) role, validates the customer's verified organization, and the
// key is stored only sealed; ACME_EAB_REQUIRED=false lets an account in
// without binding (it then has no customer and cannot order).
func TestACME_AC2_EABKeysOpsRoute(t *testing.T) {
	r := startACME(t, func(c *app.Config) { c.ACMEEABRequired = false })
	if resp := r.Do("POST", "/ops/v1/acme/eab-keys", map[string]any{"customer": "c1"}, "Authorization", "Bearer reviewer-token-0123456789"); resp.Status != 403 {
		t.Fatalf("reviewer: %d %s", resp.Status, resp.Body)
	}
	if resp := r.Ops("POST", "/ops/v1/acme/eab-keys", map[string]any{"customer": r.customer(t, "c1")}); resp.Status != 422 || !strings.Contains(string(resp.Body), "organization") {
		t.Fatalf("no organization: %d %s", resp.Status, resp.Body)
	}
	if resp := r.Ops("POST", "/ops/v1/acme/eab-keys", map[string]any{"customer": uuid.NewString()}); resp.Status != 422 || !strings.Contains(string(resp.Body), "no such customer") {
		t.Fatalf("unknown customer: %d %s", resp.Status, resp.Body)
	}
	kid, hmac := r.eabKey(t, "c1", time.Time{})
	raw, _ := base64.RawURLEncoding.DecodeString(hmac)
	var sealed []byte
	if err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(), `SELECT sealed_key FROM acme_eab_keys WHERE kid = $1`, kid).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, raw) || strings.Contains(string(sealed), hmac) {
		t.Fatal("the MAC key is stored in clear")
	}
	// Without EAB required, an account without binding is made.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &legoUser{email: "x@c2.example", key: key}
	c := r.legoClient(t, u)
	reg, err := c.Registration.Register(context.Background(), registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("register without EAB: %v", err)
	}
	if reg.Location == "" || reg.Status != "valid" {
		t.Fatalf("account %+v", reg)
	}
	// The directory says whether EAB is required.
	resp := r.Do("GET", "/acme/directory", nil)
	if resp.Status != 200 || !strings.Contains(string(resp.Body), `"externalAccountRequired":false`) {
		t.Fatalf("directory: %s", resp.Body)
	}
}

// TestACME_AC1_AC2_KeyRolloverRevocationCoverage: lego rolls its account
// key over (RFC 8555 §7.3.5) and the new key finds the account; the
// certificate's own key revokes it (§7.6); a second revocation is
// alreadyRevoked; an EAB key used twice is refused; a customer whose
// coverage ended cannot order (AC-2).
func TestACME_AC1_AC2_KeyRolloverRevocationCoverage(t *testing.T) {
	r := startACME(t, nil)
	ctx := context.Background()
	c, u := r.register(t, "cust-roll")
	if err := c.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(r.httpPort))); err != nil {
		t.Fatal(err)
	}
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"roll.test"}, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain: %v", err)
	}
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := c.Registration.KeyRollover(ctx, newKey); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	u2 := &legoUser{email: u.email, key: newKey}
	found, err := r.legoClient(t, u2).Registration.ResolveAccountByKey(ctx)
	if err != nil || found.Location != u.reg.Location {
		t.Fatalf("new key finds %v, %v; want %s", found, err, u.reg.Location)
	}
	// The old key no longer signs for the account.
	o := jwsOpts{alg: jose.ES256, key: u.key, kid: u.reg.Location, url: u.reg.Location, nonce: r.nonce(t)}
	if a := r.postJWS(t, strings.TrimPrefix(u.reg.Location, r.tls.URL), signJWS(t, o, nil)); a.status != 400 || a.problemType() != "urn:ietf:params:acme:error:malformed" {
		t.Fatalf("old key after rollover: %d %s", a.status, a.body)
	}

	// Revocation by the certificate's key.
	block, _ := pem.Decode(res.PrivateKey)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	certKey := k.(*ecdsa.PrivateKey)
	leaf := parseLeaf(t, res.Certificate)
	payload := []byte(`{"certificate":"` + base64.RawURLEncoding.EncodeToString(leaf.Raw) + `","reason":1}`)
	o = jwsOpts{alg: jose.ES256, key: certKey, embedJWK: true, url: r.tls.URL + "/acme/revoke-cert", nonce: r.nonce(t)}
	// A key that is not the certificate's is refused first.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := o
	bad.key = other
	if a := r.postJWS(t, "/acme/revoke-cert", signJWS(t, bad, payload)); a.status != 403 || a.problemType() != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("revoke by another key: %d %s", a.status, a.body)
	}
	o.nonce = r.nonce(t)
	if a := r.postJWS(t, "/acme/revoke-cert", signJWS(t, o, payload)); a.status != 200 {
		t.Fatalf("revoke by the certificate key: %d %s", a.status, a.body)
	}
	ev, _ := events.Decode[events.ACMERevocationRequested](r.WaitEvent(events.TypeACMERevocationRequested, "", 10*time.Second))
	if ev.Reason != "keyCompromise" || ev.Serial != leaf.SerialNumber.Text(16) {
		t.Fatalf("revocation requested %+v", ev)
	}
	// The issuer's CertificateRevoked is recorded.
	r.Publish(events.CertificateRevoked{CertificateID: ev.CertificateID, Serial: ev.Serial, Reason: ev.Reason, RevokedAt: r.Clock.Now()}, "")
	testenv.Eventually(t, 10*time.Second, "revocation recorded", func() bool {
		var n int
		_ = r.Unit("intake").Deps.Pool.QueryRow(ctx, `SELECT count(*) FROM acme_certificates WHERE revoked_at IS NOT NULL`).Scan(&n)
		return n == 1
	})
	o.nonce = r.nonce(t)
	if a := r.postJWS(t, "/acme/revoke-cert", signJWS(t, o, payload)); a.problemType() != "urn:ietf:params:acme:error:alreadyRevoked" {
		t.Fatalf("second revocation: %d %s", a.status, a.body)
	}

	// An EAB key binds one account only.
	kid, hmac := r.eabKey(t, "cust-once", time.Time{})
	for i, want := range []string{"", "urn:ietf:params:acme:error:unauthorized"} {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, err := r.legoClient(t, &legoUser{email: "a@once.example", key: k}).Registration.RegisterWithExternalAccountBinding(ctx,
			registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmac})
		var pd *acme.ProblemDetails
		if (want == "" && err != nil) || (want != "" && (!errors.As(err, &pd) || pd.Type != want)) {
			t.Fatalf("use %d of one EAB key: %v", i+1, err)
		}
	}

	// Validation's CAA recheck at finalization refuses: the order is
	// invalid with the caa problem.
	_, err = c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"caa-late.test"}, KeyType: certcrypto.EC256})
	if err == nil || !strings.Contains(err.Error(), "urn:ietf:params:acme:error:caa") {
		t.Fatalf("CAA refused at finalization: %v", err)
	}
	r.acmeCounts(t, map[string]float64{`acme_orders_total{service="intake",status="invalid"}`: 1})

	// Coverage ended (AC-2): no order.
	c3, _ := r.registerWith(t, "cust-lapsed", r.Clock.Now().Add(-24*time.Hour))
	_, err = c3.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"lapsed.test"}, KeyType: certcrypto.EC256})
	var pd *acme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type != "urn:ietf:params:acme:error:unauthorized" || !strings.Contains(pd.Detail, "coverage") {
		t.Fatalf("order beyond coverage: %v", err)
	}
	// OP-3: roll.test and caa-late.test created; the lapsed one not.
	r.acmeCounts(t, map[string]float64{`acme_orders_total{service="intake",status="created"}`: 2,
		`acme_orders_total{service="intake",status="valid"}`: 1, `acme_orders_total{service="intake",status="invalid"}`: 1})
}

// acmeCounts waits until each series of /metrics has its value (a
// consumer's count lands just after its transaction commits).
func (r *acmeRig) acmeCounts(t *testing.T, want map[string]float64) {
	t.Helper()
	var bad []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		bad = nil
		for k, v := range want {
			if got, _ := r.series(t, k); got != v {
				bad = append(bad, fmt.Sprintf("%s = %v, want %v", k, got, v))
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ACME metrics (OP-3): %s", strings.Join(bad, "; "))
		}
	}
}
