package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	ctutil "github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/ctlog"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// dcvInstructions is GET /v1/applications/{id}/dcv, as a customer reads it.
type dcvInstructions struct {
	Domains []struct {
		Domain      string   `json:"domain"`
		Method      string   `json:"method"`
		Status      string   `json:"status"`
		RecordType  string   `json:"record_type"`
		RecordNames []string `json:"record_names"`
		Value       string   `json:"value"`
		URL         string   `json:"url"`
		LastFailure *struct {
			Expected     string            `json:"expected"`
			Found        string            `json:"found"`
			Perspectives []json.RawMessage `json:"perspectives"`
		} `json:"last_failure"`
	} `json:"domains"`
	Organization struct {
		Status     string            `json:"status"`
		Detail     string            `json:"detail"`
		Mismatches []json.RawMessage `json:"mismatches"`
	} `json:"organization"`
	Phone struct {
		Status string `json:"status"`
	} `json:"phone"`
}

// login opens a fresh customer session (the injected clock moves on by
// hours in these tests; a session lasts less).
func (w *serverWorld) login(email string) string {
	w.t.Helper()
	r := w.do("POST", "/v1/sessions", map[string]any{"email": email, "password": serverPassword})
	if r.Status != 201 {
		w.t.Fatalf("customer session: %d %s", r.Status, r.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	r.JSON(w.t, &s)
	return s.Token
}

func (w *serverWorld) dcv(email, applicationID string) (dcvInstructions, int) {
	w.t.Helper()
	r := w.do("GET", "/v1/applications/"+applicationID+"/dcv", nil, "Authorization", "Bearer "+w.login(email))
	var st dcvInstructions
	if r.Status == 200 {
		r.JSON(w.t, &st)
	}
	return st, r.Status
}

// customerReady imports a certificate bought elsewhere expiring in days,
// waits for its notice, sets the customer's password with the mail's
// link, pays the notice's invoice by the signed webhook and waits for the
// guidance mail; it returns the paid renewal order.
func (w *serverWorld) customerReady(email, cn string, days int) serverOrder {
	w.t.Helper()
	now := w.p.Clock.Now()
	certID, _ := w.importCertificate(boughtElsewhere(w.t, cn, nil, now.AddDate(0, 0, -300), now.AddDate(0, 0, days)), email)
	w.advance("1h")
	notice := w.waitMail(email, "renewal notice and invoice")
	if len(attachment(w.t, notice, "application/pdf")) == 0 {
		w.t.Fatal("an empty invoice PDF")
	}
	tok := w.setPassword(notice, email)
	o := w.waitOrder(tok, "the renewal order", func(o serverOrder) bool { return o.RenewalOf == certID && o.InvoiceID != "" })
	w.payByCard(w.invoice(tok, o.InvoiceID))
	w.waitMail(email, "payment received for order "+o.ID)
	return o
}

// apply submits a server application and returns its ID.
func (w *serverWorld) apply(email string, body map[string]any) string {
	w.t.Helper()
	r := w.do("POST", "/v1/applications", body, "Authorization", "Bearer "+w.login(email))
	if r.Status != 202 {
		w.t.Fatalf("application: %d %s", r.Status, r.Body)
	}
	var a struct {
		ID string `json:"id"`
	}
	r.JSON(w.t, &a)
	return a.ID
}

// closeWindows moves the injected clock past the cancel window (1 h in
// these tests) and waits for the validation of each application to begin.
func (w *serverWorld) closeWindows(email string, ids ...string) {
	w.t.Helper()
	w.advance("61m")
	for _, id := range ids {
		w.await(events.TypeCancelWindowClosed, id)
		testenv.Eventually(w.t, 45*time.Second, "the checks of "+id, func() bool {
			_, status := w.dcv(email, id)
			return status == 200
		})
	}
}

// recheckedUntil waits for cond, moving the injected clock on by the
// re-check interval now and then so that the durable re-check timers fire.
func (w *serverWorld) recheckedUntil(what string, cond func() bool, state func() string) {
	w.t.Helper()
	last, deadline := time.Now(), time.Now().Add(60*time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s; state: %s", what, state())
		}
		if time.Since(last) > 500*time.Millisecond {
			w.advance("5m")
			last = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *serverWorld) validated(applicationID string) map[string]string {
	out := map[string]string{}
	for _, env := range w.seen(events.TypeDomainValidated, applicationID) {
		if env.SubjectID != applicationID {
			continue
		}
		if v, err := events.Decode[events.DomainValidated](env); err == nil {
			out[v.Domain] = v.Method
		}
	}
	return out
}

func (w *serverWorld) failures(applicationID string) []events.DomainValidationFailed {
	var out []events.DomainValidationFailed
	for _, env := range w.seen(events.TypeDomainValidationFailed, applicationID) {
		if env.SubjectID != applicationID {
			continue
		}
		if v, err := events.Decode[events.DomainValidationFailed](env); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// devCTLogs are the all-in-one's dev CT logs, loaded from their keys.
func (w *serverWorld) devCTLogs() []*ctlog.Log {
	w.t.Helper()
	var out []*ctlog.Log
	for i := range w.p.DevCTLogs {
		l, err := ctlog.LoadOrCreate(fmt.Sprintf("certlife-dev-log-%d", i+1), filepath.Join(w.cfg.DataDir, "ct", fmt.Sprintf("log%d.key", i+1)))
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// verifySCTs checks every SCT embedded in leaf with ctutil.VerifySCT
// against the key of the dev log that made it; it returns how many.
func verifySCTs(t *testing.T, leaf, issuer *x509.Certificate, logs []*ctlog.Log) int {
	t.Helper()
	chain := make([]*ctx509.Certificate, 2)
	for i, der := range [][]byte{leaf.Raw, issuer.Raw} {
		c, err := ctx509.ParseCertificate(der)
		if err != nil && ctx509.IsFatal(err) {
			t.Fatal(err)
		}
		chain[i] = c
	}
	seen := map[[32]byte]bool{}
	for _, s := range chain[0].SCTList.SCTList {
		var sct ctgo.SignedCertificateTimestamp
		if rest, err := cttls.Unmarshal(s.Val, &sct); err != nil || len(rest) != 0 {
			t.Fatalf("embedded SCT: %v", err)
		}
		var log *ctlog.Log
		for _, l := range logs {
			if l.ID() == sct.LogID.KeyID {
				log = l
			}
		}
		if log == nil {
			t.Fatalf("an embedded SCT of an unknown log %x", sct.LogID.KeyID)
		}
		if err := ctutil.VerifySCT(log.PublicKey(), chain, &sct, true); err != nil {
			t.Fatalf("an embedded SCT does not verify: %v", err)
		}
		seen[sct.LogID.KeyID] = true
	}
	return len(seen)
}

// zlintFindings runs every zlint v3.7.3 lint on der and returns the
// warnings, errors and fatals that services/issuer/lints-accepted.txt
// does not accept (dev scope included: the all-in-one runs in dev mode).
func zlintFindings(t *testing.T, der []byte) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "services", "issuer", "lints-accepted.txt"))
	if err != nil {
		t.Fatal(err)
	}
	accepted := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		accepted[strings.Fields(line)[0]] = true
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("zlint cannot parse: %v", err)
	}
	var out []string
	for name, r := range zlint.LintCertificateEx(zc, lint.GlobalRegistry()).Results {
		if r.Status >= lint.Warn && !accepted[name] {
			out = append(out, fmt.Sprintf("%s: %s %s", name, r.Status, r.Details))
		}
	}
	return out
}

// tlsHandshake serves chain from a loopback TLS server and connects to it
// with the dev root as the only trusted root, at the platform's time.
func tlsHandshake(t *testing.T, root *x509.Certificate, chain []*x509.Certificate, key crypto.Signer, serverName string, now time.Time) error {
	t.Helper()
	var raw [][]byte
	for _, c := range chain {
		raw = append(raw, c.Raw)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: raw, PrivateKey: key, Leaf: chain[0]}},
		Time:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	roots := x509.NewCertPool()
	roots.AddCert(root)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		RootCAs: roots, ServerName: serverName, Time: func() time.Time { return now }, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		<-done
		return err
	}
	defer conn.Close()
	buf := make([]byte, 2)
	if _, err := conn.Read(buf); err != nil || string(buf) != "ok" {
		return fmt.Errorf("read after the handshake: %v %q", err, buf)
	}
	return <-done
}

// Issue 9 end to end through the HTTP API of the all-in-one (SV-6, SV-7,
// SV-8, SV-9, SV-10, VA-1 … VA-9, IS-4, IS-9): a certificate bought
// elsewhere expiring in 59 days → notice and invoice → signed webhook
// payment → renewal application with a CSR of a new key whose O/L/ST/C
// are the registry's → GET …/dcv says what to publish → a DNS TXT in the
// DNSSEC-signed zone for one name, an HTTP file (DCV_HTTP_PORT) for the
// other → validated through Unbound and the 5 in-process agents with CAA
// → registry match → phone check recorded by an operator → the review
// approved by an operator → the certificate: its chain verifies against
// the dev root, validity 199 days (IS-4 before 2027-03-15, one day under
// the cap), serverAuth only, ≥ 2 embedded SCTs verified against the dev
// logs' keys, zlint clean, a crypto/tls handshake with the dev root as
// the only root; the order shows every step done.
func TestServerIssuanceEndToEnd_SV6_SV7_SV8_SV9_SV10_VA1_VA2_VA3_VA4_VA5_VA6_VA7_VA8_VA9_IS4_IS9(t *testing.T) {
	serverIssuanceFlow(t, "")
}

// IS-4 by the injected date: the same flow with the platform's clock
// moved past 2027-03-15, where the cap is 100 days (99 issued).
func TestServerIssuanceAfter20270315_IS4(t *testing.T) {
	serverIssuanceFlow(t, "2027-03-16T00:00:00Z")
}

// serverIssuanceFlow runs issue 9's flow, on the injected clock moved to
// at (RFC 3339) first when given.
func serverIssuanceFlow(t *testing.T, at string) {
	w := startServerWorld(t, func(c *app.Config) { c.ReviewAutoApprove = false })
	if at != "" {
		target, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		if d := target.Sub(w.p.Clock.Now()); d > 0 {
			w.advance(d.Round(time.Second).String())
		}
	}
	w.setPrices()
	if r := w.ops("POST", "/ops/v1/registry", serverRegistry, "Content-Type", "text/csv"); r.Status != 200 {
		t.Fatalf("registry: %d %s", r.Status, r.Body)
	}
	email := "issuance@example.co.jp"
	cn, other := "www.e2e9.signed.e2e-test.com", "api.e2e9.plain.e2e-test.com"
	o := w.customerReady(email, cn, 59)

	key := p256(t)
	id := w.apply(email, serverApplicationBody(o.ID, serverCSR(t, serverDN, cn, key), "tech9@example.co.jp", []string{other}, "dns"))
	w.closeWindows(email, id)

	// What to publish, per name (SV-8); the second name moves to HTTP.
	st, _ := w.dcv(email, id)
	if len(st.Domains) != 2 {
		t.Fatalf("dcv: %+v", st)
	}
	for _, d := range st.Domains {
		if d.Domain == cn {
			if d.Method != "dns" || d.RecordType != "TXT" || len(d.RecordNames) == 0 || d.Value == "" {
				t.Fatalf("DNS instructions: %+v", d)
			}
			w.dns.TXT(t, d.RecordNames[0], d.Value)
		}
	}
	r := w.do("PUT", "/v1/applications/"+id+"/dcv", map[string]any{"method": "http", "domains": []string{other}},
		"Authorization", "Bearer "+w.login(email))
	if r.Status != 200 {
		t.Fatalf("switch to HTTP: %d %s", r.Status, r.Body)
	}
	st, _ = w.dcv(email, id)
	for _, d := range st.Domains {
		if d.Domain == other {
			if d.Method != "http" || !strings.Contains(d.URL, "/.well-known/pki-validation/") || d.Value == "" {
				t.Fatalf("HTTP instructions: %+v", d)
			}
			w.dns.A(t, other, "127.0.0.1")
			w.web.page(other, d.URL[strings.Index(d.URL, "/.well-known/"):], d.Value)
		}
	}
	w.recheckedUntil("both names validated", func() bool {
		v := w.validated(id)
		return v[cn] == "dns" && v[other] == "http"
	}, func() string { st, _ := w.dcv(email, id); raw, _ := json.Marshal(st); return string(raw) })
	// VA-9: the record names every perspective's observation.
	r = w.ops("GET", "/ops/v1/validations?domain="+cn, nil)
	if r.Status != 200 || strings.Count(string(r.Body), "dev-agent-") < 5 {
		t.Errorf("validations of %s: %d %s", cn, r.Status, r.Body)
	}

	// Registry match (SV-7) and the operator's phone check (SV-9).
	w.await(events.TypeOrganizationVerified, id)
	var check string
	testenv.Eventually(t, 45*time.Second, "the pending phone check", func() bool {
		r := w.ops("GET", "/ops/v1/phone-checks?status=pending", nil)
		var l struct {
			PhoneChecks []struct {
				ID            string `json:"id"`
				ApplicationID string `json:"application_id"`
				Phone         string `json:"phone"`
			} `json:"phone_checks"`
		}
		r.JSON(t, &l)
		for _, p := range l.PhoneChecks {
			if p.ApplicationID == id {
				if p.Phone != "+81 3-5000-2222" {
					t.Errorf("phone check to %q, not the registry's number", p.Phone)
				}
				check = p.ID
				return true
			}
		}
		return false
	})
	if r := w.ops("POST", "/ops/v1/phone-checks/"+check, map[string]string{"result": "confirmed", "note": "called the main number"}); r.Status != 200 {
		t.Fatalf("phone check: %d %s", r.Status, r.Body)
	}

	// The operator approves (OP-1).
	var review string
	testenv.Eventually(t, 45*time.Second, "the review in the queue", func() bool {
		r := w.ops("GET", "/ops/v1/reviews?status=pending", nil)
		var l struct {
			Reviews []struct {
				ID            string `json:"id"`
				ApplicationID string `json:"application_id"`
			} `json:"reviews"`
		}
		r.JSON(t, &l)
		for _, rv := range l.Reviews {
			if rv.ApplicationID == id {
				review = rv.ID
				return true
			}
		}
		return false
	})
	if r := w.ops("POST", "/ops/v1/reviews/"+review+"/approve", nil); r.Status != 200 {
		t.Fatalf("approve: %d %s", r.Status, r.Body)
	}
	issued, err := events.Decode[events.CertificateIssued](w.await(events.TypeCertificateIssued, id))
	if err != nil {
		t.Fatal(err)
	}
	r = w.do("GET", "/v1/certificates/"+issued.CertificateID+"/chain", nil, "Authorization", "Bearer "+w.login(email))
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("chain: %d %s", r.Status, r.Body)
	}
	// Another customer does not see it.
	w.newCustomer("stranger@example.co.jp", serverApplicationBody("", serverCSR(t, serverDN, "www.stranger.plain.e2e-test.com", p256(t)),
		"stranger@example.co.jp", nil, "dns"))
	if r := w.do("GET", "/v1/certificates/"+issued.CertificateID+"/chain", nil, "Authorization", "Bearer "+w.login("stranger@example.co.jp")); r.Status != 404 {
		t.Errorf("another customer's GET chain: %d", r.Status)
	}
	var chain []*x509.Certificate
	for rest := r.Body; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("a chain of %d", len(chain))
	}
	leaf, root, now := chain[0], w.root(), w.p.Clock.Now()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: other, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("verify against the dev root: %v", err)
	}
	// IS-4: the cap by issuance date (200 days before 2027-03-15, 100
	// before 2029-03-15, then 47); the issuer's default is one day under.
	capDays := 47
	switch {
	case leaf.NotBefore.Before(time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)):
		capDays = 200
	case leaf.NotBefore.Before(time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC)):
		capDays = 100
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != time.Duration(capDays-1)*24*time.Hour {
		t.Errorf("validity %s issued %s, want %d days", got, leaf.NotBefore, capDays-1)
	}
	if names := strings.Join(leaf.DNSNames, ","); names != cn+","+other && names != other+","+cn {
		t.Errorf("SANs %v", leaf.DNSNames)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU %v %v, want serverAuth only", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage)
	}
	if leaf.Subject.CommonName != cn || strings.Join(leaf.Subject.Organization, "") != "Certlife Hosting K.K." ||
		len(leaf.Subject.OrganizationalUnit) != 0 || !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Errorf("subject %v", leaf.Subject)
	}
	if n := verifySCTs(t, leaf, chain[1], w.devCTLogs()); n < 2 {
		t.Errorf("%d logs' SCTs embedded, want at least 2 (IS-9)", n)
	}
	if f := zlintFindings(t, leaf.Raw); len(f) != 0 {
		t.Errorf("zlint: %v", f)
	}
	if err := tlsHandshake(t, root, chain, key, cn, now); err != nil {
		t.Errorf("TLS handshake with the dev root as the only root: %v", err)
	}

	// SV-10: the certificate and its chain mailed to the technical contact.
	testenv.Eventually(t, 45*time.Second, "the certificate mailed to the technical contact", func() bool {
		for _, m := range w.smtp.To("tech9@example.co.jp") {
			if strings.Contains(string(m.Raw), "application/pem-certificate-chain") {
				return true
			}
		}
		return false
	})

	// The order's steps are all done (SV-12).
	testenv.Eventually(t, 45*time.Second, "every step of the order done", func() bool {
		ord := w.order(w.login(email), o.ID)
		for _, s := range ord.Steps {
			if s.Status != "done" {
				return false
			}
		}
		return len(ord.Steps) > 0 && ord.CertificateID == issued.CertificateID
	})
	if ord := w.order(w.login(email), o.ID); ord.CoverageEnd == nil || leaf.NotAfter.After(*ord.CoverageEnd) {
		t.Errorf("the certificate ends %s, after the coverage %v (IS-4)", leaf.NotAfter, ord.CoverageEnd)
	}
	testenv.Eventually(t, 45*time.Second, "the application issued", func() bool {
		r := w.do("GET", "/v1/applications/"+id, nil, "Authorization", "Bearer "+w.login(email))
		var v struct {
			Status        string `json:"status"`
			CertificateID string `json:"certificate_id"`
		}
		r.JSON(t, &v)
		return r.Status == 200 && v.Status == "issued" && v.CertificateID == issued.CertificateID
	})
	// VA-5, SV-9: a second application of the customer for the same
	// names reuses the validations and the verified organization: no
	// phone call, no new value to publish.
	again := w.apply(email, serverApplicationBody("", serverCSR(t, serverDN, cn, p256(t)), "tech9@example.co.jp", []string{other}, "dns"))
	w.closeWindows(email, again)
	ov, err := events.Decode[events.OrganizationVerified](w.await(events.TypeOrganizationVerified, again))
	if err != nil || !ov.Reused {
		t.Errorf("the organization not reused: %+v %v", ov, err)
	}
	testenv.Eventually(t, 45*time.Second, "the second application's checks reused", func() bool {
		st, _ := w.dcv(email, again)
		for _, d := range st.Domains {
			if d.Status != "validated" {
				return false
			}
		}
		return len(st.Domains) == 2 && st.Phone.Status != "pending"
	})
	if raw, _ := json.Marshal(w.order(w.login(email), o.ID)); testing.Verbose() {
		t.Logf("order: %s", raw)
	}
}

// newCustomer makes a server customer with a first application (which
// carries the password, SPEC §5) and returns the application's ID.
func (w *serverWorld) newCustomer(email string, body map[string]any) string {
	w.t.Helper()
	body["password"] = serverPassword
	r := w.do("POST", "/v1/applications", body)
	if r.Status != 202 {
		w.t.Fatalf("first application: %d %s", r.Status, r.Body)
	}
	var a struct {
		ID string `json:"id"`
	}
	r.JSON(w.t, &a)
	return a.ID
}

// The refusals of issue 9 through the HTTP API of the all-in-one: a CSR
// with an OU and a weak key are 422s at the application (SV-6); a CAA
// record forbidding this CA, a CAA accounturi of someone else (VA-4)
// and a bogus DNSSEC signature (VA-8) each fail their name's validation
// with the published TXT record in place (VA-6: the failure says what was
// expected and found); an organization that differs from the registry is
// refused with both values (SV-7). Nothing is issued. Too few
// corroborating perspectives: TestServerRefusalTooFewPerspectives_VA7.
func TestServerRefusals_SV6_SV7_VA4_VA6_VA8(t *testing.T) {
	w := startServerWorld(t, nil)
	w.setPrices()
	if r := w.ops("POST", "/ops/v1/registry", serverRegistry, "Content-Type", "text/csv"); r.Status != 200 {
		t.Fatalf("registry: %d %s", r.Status, r.Body)
	}
	email := "refusals@example.co.jp"
	caa, acct, bogus := "www.caa.plain.e2e-test.com", "www.acct.plain.e2e-test.com", "www.x.bogus.e2e-test.com"
	w.dns.CAA(t, "caa.plain.e2e-test.com", `0 issue "other-ca.example"`)
	w.dns.CAA(t, "acct.plain.e2e-test.com", `0 issue "certlife.example; accounturi=acct:someone-else@certlife.example"`)
	dcvApp := w.newCustomer(email, serverApplicationBody("", serverCSR(t, serverDN, caa, p256(t)), email, []string{acct, bogus}, "dns"))

	// SV-6 at the application: 422 naming the CSR, nothing created.
	withOU := serverDN
	withOU.OrganizationalUnit = []string{"Web Team"}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, csr := range map[string]string{
		"an OU":                 serverCSR(t, withOU, "www.ou.plain.e2e-test.com", p256(t)),
		"a weak key (RSA 1024)": serverCSR(t, serverDN, "www.weak.plain.e2e-test.com", weak),
	} {
		r := w.do("POST", "/v1/applications", serverApplicationBody("", csr, email, nil, "dns"), "Authorization", "Bearer "+w.login(email))
		if r.Status != 422 || !strings.Contains(string(r.Body), `"csr"`) {
			t.Errorf("a CSR with %s: %d %s", name, r.Status, r.Body)
		}
	}

	// SV-7: the CSR and the application say Minato-ku, the registry Chuo-ku.
	moved := serverDN
	moved.Locality = []string{"Minato-ku"}
	body := serverApplicationBody("", serverCSR(t, moved, "www.moved.plain.e2e-test.com", p256(t)), email, nil, "dns")
	body["organization"].(map[string]any)["address"].(map[string]any)["city"] = "Minato-ku"
	orgApp := w.apply(email, body)

	w.closeWindows(email, dcvApp, orgApp)
	st, _ := w.dcv(email, dcvApp)
	for _, d := range st.Domains {
		w.dns.TXT(t, d.RecordNames[0], d.Value)
	}
	want := map[string]string{caa: "other-ca.example", acct: "acct:someone-else@certlife.example", bogus: "SERVFAIL"}
	refused := func() map[string]string {
		out := map[string]string{}
		for _, f := range w.failures(dcvApp) {
			if strings.Contains(f.Detail, want[f.Domain]) {
				out[f.Domain] = f.Detail
			}
		}
		return out
	}
	w.recheckedUntil("the published values checked and refused", func() bool { return len(refused()) == len(want) },
		func() string { st, _ := w.dcv(email, dcvApp); raw, _ := json.Marshal(st); return string(raw) })
	for n, detail := range refused() {
		if !strings.Contains(detail, n) || !strings.Contains(detail, "expected") {
			t.Errorf("%s: %q does not say the name, what was expected and what was found", n, detail)
		}
	}
	if v := w.validated(dcvApp); len(v) != 0 {
		t.Errorf("validated despite the refusals: %v", v)
	}

	fail, err := events.Decode[events.OrganizationVerificationFailed](w.await(events.TypeOrganizationVerificationFailed, orgApp))
	if err != nil || len(fail.Mismatches) != 1 || fail.Mismatches[0].Applied != "Minato-ku" || fail.Mismatches[0].Registry != "Chuo-ku" {
		t.Errorf("OrganizationVerificationFailed %+v %v", fail, err)
	}
	ost, _ := w.dcv(email, orgApp)
	shown, _ := json.Marshal(ost.Organization.Mismatches)
	if ost.Organization.Status != "mismatch" || !strings.Contains(string(shown), "Minato-ku") || !strings.Contains(string(shown), "Chuo-ku") {
		t.Errorf("the customer's view of the organization: %+v", ost.Organization)
	}
	if len(w.seen(events.TypeOrganizationVerified, orgApp)) != 0 || len(w.seen(events.TypeCertificateIssued, "")) != 0 {
		t.Error("verified or issued despite the refusals")
	}
}
