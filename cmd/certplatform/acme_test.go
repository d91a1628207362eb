package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation"
)

// acmeE2E is the all-in-one behind an HTTPS front (a certificate of the
// dev TLS hierarchy for 127.0.0.1; X-Forwarded-Proto and -Host), with a small
// Internet for validation: an authoritative DNS server for
// certlife-test.com (A records on 127.0.0.1), five validation agents in
// three regions (VA-7), and DCV_HTTP_PORT where the ACME client answers
// http-01.
type acmeE2E struct {
	*e2e
	dns      *testenv.DNSServer
	httpPort int
	front    *httptest.Server
	roots    *x509.CertPool
	rootsPEM string
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startACMEE2E(t *testing.T) *acmeE2E {
	t.Helper()
	t.Setenv("LEGO_DISABLE_CNAME_SUPPORT", "true")
	a := &acmeE2E{dns: testenv.StartDNS(t), httpPort: freeTCPPort(t)}
	a.dns.AddZone(t, "com.", testenv.Unsigned)
	a.dns.AddZone(t, "certlife-test.com.", testenv.Unsigned)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agents := []string{"arin-1@arin", "arin-2@arin", "ripe-1@ripe", "ripe-2@ripe", "apnic-1@apnic"}
	a.e2e = startE2E(t, func(c *app.Config) {
		c.DCVDNSServer, c.DCVHTTPPort = a.dns.Addr, a.httpPort
		c.DCVTimeout, c.MPICTimeout = 5*time.Second, 8*time.Second
		c.MPICAgents = strings.Join(agents, ",")
	}, nil)
	log := slog.New(slog.DiscardHandler)
	for _, spec := range agents {
		name, region, _ := strings.Cut(spec, "@")
		nc, err := nats.Connect(a.p.NATSURL, nats.Name("agent-"+name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		stop, err := validation.StartAgent(nc, validation.AgentConfig{Name: name, Region: region, DNSServer: a.dns.Addr,
			HTTPPort: a.httpPort, Timeout: 5 * time.Second}, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	// The HTTPS front, as the operator's proxy would be.
	target, _ := url.Parse(a.p.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}}
	a.front = httptest.NewUnstartedServer(proxy)
	a.front.Listener.Close()
	a.front.Listener = ln
	a.front.TLS = a.devTLS(t)
	a.front.StartTLS()
	t.Cleanup(a.front.Close)
	return a
}

// devTLS is a server certificate for 127.0.0.1 from the dev TLS issuing
// CA, and the dev roots for the clients.
func (a *acmeE2E) devTLS(t *testing.T) *tls.Config {
	t.Helper()
	dir := filepath.Join(a.cfg.DataDir, "ca")
	ca := readCert(t, filepath.Join(dir, "tls1.pem"))
	raw, err := os.ReadFile(filepath.Join(dir, "tls1.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	a.roots = x509.NewCertPool()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	for _, f := range files {
		c := readCert(t, f)
		if c.IsCA && c.CheckSignatureFrom(c) == nil {
			a.roots.AddCert(c)
			a.rootsPEM += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature},
		ca, &key.PublicKey, k.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, ca.Raw}, PrivateKey: key}}}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (a *acmeE2E) client() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.roots}}}
}

// customer makes a server customer in intake's schema (the orders flow
// makes them from a server application or an import) and returns its ID.
func (a *acmeE2E) customer(t *testing.T, name string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), a.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	id := uuid.NewString()
	if _, err := conn.Exec(context.Background(), `INSERT INTO intake.customers (id, email, name, language, created_at)
		VALUES ($1, $2, $3, 'en', now())`, id, "billing@"+name+".example", "Customer "+name); err != nil {
		t.Fatal(err)
	}
	return id
}

// eabKey issues an EAB key for a new customer with its verified
// organization.
func (a *acmeE2E) eabKey(t *testing.T, name string) (string, string) {
	t.Helper()
	customer := a.customer(t, name)
	r := a.ops("POST", "/ops/v1/acme/eab-keys", map[string]any{"customer": customer,
		"organization": map[string]any{"duns": "690000001", "name_en": "Certlife Test K.K.",
			"address": map[string]any{"city": "Chuo-ku", "state": "Tokyo", "country": "JP"}},
		"contact": map[string]any{"name": "Tech Contact", "email": "tech@" + name + ".example"}, "term_months": 12})
	if r.Status != 201 {
		t.Fatalf("eab key: %d %s", r.Status, r.Body)
	}
	var out struct {
		KID     string `json:"kid"`
		HMACKey string `json:"hmac_key"`
	}
	r.JSON(t, &out)
	return out.KID, out.HMACKey
}

type e2eUser struct {
	email string
	reg   *acme.ExtendedAccount
	key   crypto.Signer
}

func (u *e2eUser) GetEmail() string                       { return u.email }
func (u *e2eUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *e2eUser) GetPrivateKey() crypto.Signer           { return u.key }

func (a *acmeE2E) lego(t *testing.T, customer string) *lego.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u := &e2eUser{email: "ops@" + customer + ".example", key: key}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = a.front.URL + "/acme/directory"
	cfg.HTTPClient = a.client()
	cfg.Certificate.Timeout = 3 * time.Minute
	c, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kid, hmac := a.eabKey(t, customer)
	reg, err := c.Registration.RegisterWithExternalAccountBinding(context.Background(),
		registration.RegisterEABOptions{TermsOfServiceAgreed: true, Kid: kid, HmacEncoded: hmac})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	u.reg = reg
	return c
}

type e2eDNSProvider struct {
	t   *testing.T
	dns *testenv.DNSServer
	mu  sync.Mutex
	txt map[string][]string
}

func (p *e2eDNSProvider) Present(ctx context.Context, domain, token, keyAuth string) error {
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

func (p *e2eDNSProvider) CleanUp(context.Context, string, string, string) error { return nil }
func (p *e2eDNSProvider) Timeout() (time.Duration, time.Duration) {
	return 3 * time.Minute, 500 * time.Millisecond
}

// checkIssued checks a chain from the platform: the leaf from the dev
// TLS CA, chaining to the dev root, for the names, OV subject with the
// EAB customer's organization, embedded SCTs.
func (a *acmeE2E) checkIssued(t *testing.T, chain []byte, names ...string) *x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := chain; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("chain of %d certificates", len(certs))
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter, DNSName: names[0],
		CurrentTime: a.p.Clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	got := strings.Join(leaf.DNSNames, ",")
	for _, n := range names {
		if !strings.Contains(","+got+",", ","+n+",") {
			t.Fatalf("names %s, want %v", got, names)
		}
	}
	if len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != "Certlife Test K.K." {
		t.Fatalf("subject %s: not the customer's organization (OV, AC-2)", leaf.Subject)
	}
	sct := false
	for _, x := range leaf.Extensions {
		sct = sct || x.Id.String() == "1.3.6.1.4.1.11129.2.4.2"
	}
	if !sct {
		t.Fatal("no embedded SCTs")
	}
	return leaf
}

// TestAllInOneACMELego_AC1_AC5: lego against the all-in-one, through
// the whole pipeline — intake's ACME server, validation's checks at the
// primary and five remote perspectives with CAA (accounturi), the
// issuer's TLS CA with CT — gets real certificates by http-01 (lego's
// own HTTP provider on DCV_HTTP_PORT) and by dns-01 for a wildcard (the
// in-test authoritative server); a CAA record naming another account
// refuses issuance with the caa problem.
func TestAllInOneACMELego_AC1_AC5(t *testing.T) {
	a := startACMEE2E(t)
	ctx := context.Background()
	a.dns.A(t, "www.acme-e2e.certlife-test.com.", "127.0.0.1")
	a.dns.A(t, "acme-e2e.certlife-test.com.", "127.0.0.1")

	c := a.lego(t, "cust-e2e")
	if err := c.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(a.httpPort))); err != nil {
		t.Fatal(err)
	}
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: []string{"www.acme-e2e.certlife-test.com", "acme-e2e.certlife-test.com"}, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain http-01: %v", err)
	}
	leaf := a.checkIssued(t, res.Certificate, "www.acme-e2e.certlife-test.com", "acme-e2e.certlife-test.com")
	info, err := c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil || !info.SuggestedWindow.Start.After(a.p.Clock.Now()) {
		t.Fatalf("ARI: %+v %v", info, err)
	}
	// Revocation by the account (RFC 8555 §7.6): the issuer revokes it,
	// and its ARI window moves into the past (AC-3).
	if err := c.Certificate.Revoke(ctx, res.Certificate); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	a.waitEvent(events.TypeCertificateRevoked, res.CertURL[strings.LastIndex(res.CertURL, "/")+1:])
	if info, err = c.Certificate.GetRenewalInfo(ctx, leaf); err != nil || info.SuggestedWindow.End.After(a.p.Clock.Now()) {
		t.Fatalf("ARI after revocation: %+v %v", info, err)
	}

	// dns-01, a wildcard.
	c2 := a.lego(t, "cust-e2e-dns")
	if err := c2.Challenge.SetDNS01Provider(&e2eDNSProvider{t: t, dns: a.dns}, dns01.PropagationWait(0, true)); err != nil {
		t.Fatal(err)
	}
	res2, err := c2.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: []string{"*.wild-e2e.certlife-test.com", "wild-e2e.certlife-test.com"}, Bundle: true, KeyType: certcrypto.EC256})
	if err != nil {
		t.Fatalf("obtain dns-01: %v", err)
	}
	a.checkIssued(t, res2.Certificate, "*.wild-e2e.certlife-test.com", "wild-e2e.certlife-test.com")

	// CAA accounturi naming another account: the caa problem (VA-4).
	a.dns.A(t, "caa-e2e.certlife-test.com.", "127.0.0.1")
	a.dns.CAA(t, "caa-e2e.certlife-test.com.", `0 issue "certlife.example; accounturi=`+a.front.URL+`/acme/acct/someone-else"`)
	_, err = c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{"caa-e2e.certlife-test.com"}, KeyType: certcrypto.EC256})
	if err == nil || !strings.Contains(err.Error(), "urn:ietf:params:acme:error:caa") {
		t.Fatalf("CAA for another account: %v", err)
	}
}

// TestAllInOneACMECertbot_AC5: Debian's certbot with EAB against the
// all-in-one (the dev root trusted through REQUESTS_CA_BUNDLE): standalone
// http-01 on DCV_HTTP_PORT, and dns-01 for a wildcard through a manual
// auth hook that publishes in the in-test DNS server; each certificate it
// saves chains to the dev root. Under CI a missing certbot fails; elsewhere the test is skipped.
func TestAllInOneACMECertbot_AC5(t *testing.T) {
	bin, err := exec.LookPath("certbot")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("certbot is not installed (.ci/run installs it)")
		}
		t.Skip("certbot is not installed")
	}
	a := startACMEE2E(t)
	a.dns.A(t, "certbot-e2e.certlife-test.com.", "127.0.0.1")
	kid, hmac := a.eabKey(t, "cust-certbot")
	dir := t.TempDir()
	bundle := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(bundle, []byte(a.rootsPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	common := func(name string) []string {
		d := filepath.Join(dir, name)
		return []string{"certonly", "--non-interactive", "--agree-tos",
			"--server", a.front.URL + "/acme/directory", "--eab-kid", kid, "--eab-hmac-key", hmac,
			"-m", "ops@cust-certbot.example", "--key-type", "ecdsa",
			"--config-dir", filepath.Join(d, "config"), "--work-dir", filepath.Join(d, "work"), "--logs-dir", filepath.Join(d, "logs")}
	}
	run := func(name, domain string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(append(common(name), args...), "-d", domain)...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+bundle)
		out, err := cmd.CombinedOutput()
		if err != nil {
			logs, _ := os.ReadFile(filepath.Join(dir, name, "logs", "letsencrypt.log"))
			t.Fatalf("certbot %s: %v\n%s\n%s", name, err, out, tail(string(logs), 4000))
		}
		live := strings.TrimPrefix(domain, "*.")
		chain, err := os.ReadFile(filepath.Join(dir, name, "config", "live", live, "fullchain.pem"))
		if err != nil {
			t.Fatalf("certbot %s saved no chain: %v\n%s", name, err, out)
		}
		a.checkIssued(t, chain, domain)
	}
	// http-01: certbot's standalone server on DCV_HTTP_PORT.
	run("http", "certbot-e2e.certlife-test.com", "--standalone", "--preferred-challenges", "http",
		"--http-01-address", "127.0.0.1", "--http-01-port", strconv.Itoa(a.httpPort))

	// dns-01 for a wildcard: certbot's manual hook hands the TXT value to
	// the in-test authoritative server (through a loopback HTTP endpoint).
	var mu sync.Mutex
	txt := map[string][]string{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		name := "_acme-challenge." + strings.TrimPrefix(r.URL.Query().Get("domain"), "*.") + "."
		txt[name] = append(txt[name], r.URL.Query().Get("value"))
		a.dns.TXT(t, name, txt[name]...)
	}))
	defer hook.Close()
	script := filepath.Join(dir, "auth-hook.py")
	if err := os.WriteFile(script, []byte("import os, urllib.parse, urllib.request\n"+
		"q = urllib.parse.urlencode({'domain': os.environ['CERTBOT_DOMAIN'], 'value': os.environ['CERTBOT_VALIDATION']})\n"+
		"urllib.request.urlopen('"+hook.URL+"/?' + q).read()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kid, hmac = a.eabKey(t, "cust-certbot-dns")
	run("dns", "*.certbot-dns.certlife-test.com", "--manual", "--preferred-challenges", "dns",
		"--manual-auth-hook", "python3 "+script)
	version, _ := exec.Command(bin, "--version").CombinedOutput()
	t.Logf("%s: http-01 and dns-01 certificates saved", strings.TrimSpace(string(version)))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
