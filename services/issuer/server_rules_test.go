package issuer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// issueNew approves a server application for a fresh key and returns the
// issued certificate (from the event's PEM chain) and the event.
func (e *env) issueNew(customer, cn string, coverageEnd time.Time) (*x509.Certificate, events.CertificateIssued) {
	e.t.Helper()
	a := serverApp(customer, cn, nil, csrFor(e.t, ecKey(e.t), pkix.Name{CommonName: cn}), coverageEnd)
	e.approveServer(a)
	ev := e.waitIssued(a.ID)
	return parsePEMCerts(e.t, []byte(ev.PEMChain))[0], ev
}

// IS-4 on the injected clock, through the whole issuance: the validity
// at each edge of the SC-081 schedule is one day under the maximum for
// the issuance date (397, 199, 99, 46 days, counted inclusively), never
// past the coverage; and IS-9's count follows the lifetime: 3 embedded
// SCTs beyond 180 days, 2 within.
func TestServerValidityCapsByIssuanceDate_IS4_IS9(t *testing.T) {
	clk := frozenAt(time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC))
	logs, entries := startLogs(t, 3, clk)
	e := startTLS(t, entries, clk, nil)
	tls1 := e.caCert("tls1")
	for i, tc := range []struct {
		at   time.Time
		days int
		scts int
	}{
		{time.Date(2026, 3, 14, 23, 59, 59, 0, time.UTC), 397, 3},
		{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), 199, 3},
		{time.Date(2027, 3, 14, 23, 59, 59, 0, time.UTC), 199, 3},
		{time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC), 99, 2},
		{time.Date(2029, 3, 14, 23, 59, 59, 0, time.UTC), 99, 2},
		{time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC), 46, 2},
	} {
		if err := clk.Set(tc.at); err != nil {
			t.Fatal(err)
		}
		leaf, _ := e.issueNew("customer-v", "www.certlife-test.com", tc.at.AddDate(3, 0, 0))
		if !leaf.NotBefore.Equal(tc.at) {
			t.Fatalf("%s: notBefore %s", tc.at, leaf.NotBefore)
		}
		if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != time.Duration(tc.days)*24*time.Hour {
			t.Fatalf("%s: validity %s, want %d days", tc.at, got, tc.days)
		}
		if n := len(verifyEmbeddedSCTs(t, leaf, tls1, logs)); n != tc.scts {
			t.Fatalf("%s: %d embedded SCTs, want %d", tc.at, n, tc.scts)
		}
		t.Logf("case %d: issued %s, %d days, %d SCTs", i, tc.at.Format(time.RFC3339), tc.days, tc.scts)
	}
	// The coverage ends in 10 days: so does the certificate.
	now := e.Clock.Now()
	end := now.Add(10 * 24 * time.Hour)
	leaf, _ := e.issueNew("customer-v", "www.certlife-test.com", end)
	if !leaf.NotAfter.Equal(end.Add(-time.Second)) {
		t.Fatalf("notAfter %s, want one second before the coverage ends (%s)", leaf.NotAfter, end)
	}
	// A coverage already over: no certificate, a final failure.
	a := serverApp("customer-v", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{}), now.Add(-time.Hour))
	e.approveServer(a)
	f := e.waitFailure(a.ID)
	if f.Stage != events.IssuanceStageRequest || !f.Final || !strings.Contains(f.Detail, "coverage") {
		t.Fatalf("expired coverage: %+v", f)
	}
}

func (e *env) waitFailure(applicationID string) events.CertificateIssuanceFailed {
	e.t.Helper()
	p, err := events.Decode[events.CertificateIssuanceFailed](e.WaitEvent(events.TypeCertificateIssuanceFailed, applicationID, wait))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// IS-5: ReviewApproved delivered three times — twice under new event IDs,
// once the same envelope again — makes one certificate, one
// precertificate submitted once to each log, one CertificateIssued.
func TestServerApprovalRedeliveredIssuesOnce_IS5(t *testing.T) {
	logs, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	a := serverApp("customer-5", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{}), e.Clock.Now().AddDate(1, 0, 0))
	first := e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:one"}, a.ID)
	e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:two"}, a.ID)
	e.PublishAgain(first)
	e.waitIssued(a.ID)
	testenv.Eventually(t, wait, "every delivery handled", func() bool {
		return e.count(`SELECT count(*) FROM inbox WHERE consumer = 'issuer-certificates'`) == 2
	})
	e.Advance(time.Hour) // any timer left would fire now
	if n := e.count(`SELECT count(*) FROM certificates WHERE application_id = $1`, a.ID); n != 1 {
		t.Fatalf("%d certificates for one application", n)
	}
	if n := e.count(`SELECT count(*) FROM precertificates`); n != 1 {
		t.Fatalf("%d precertificates", n)
	}
	if got := e.eventsFor(events.TypeCertificateIssued, a.ID); len(got) != 1 {
		t.Fatalf("%d CertificateIssued events", len(got))
	}
	for _, l := range logs {
		if l.Requests() != 1 {
			t.Fatalf("log %s got %d submissions, want 1", l.Name, l.Requests())
		}
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'certificate.issued' AND subject = $1`, a.ID); n != 1 {
		t.Fatalf("%d audit entries", n)
	}
}

// IS-9: a log that fails (503) is retried within its bound, then
// another is used: the certificate embeds SCTs of the three working logs
// and none of the failing one, and the failure is counted by log.
func TestFailingCTLogReplaced_IS9(t *testing.T) {
	logs, entries := startLogs(t, 4)
	logs[0].SetFailing(http.StatusServiceUnavailable)
	e := startTLS(t, entries, nil, nil)
	leaf, ev := e.issueNew("customer-9", "www.certlife-test.com", e.Clock.Now().AddDate(1, 0, 0))
	by := verifyEmbeddedSCTs(t, leaf, e.caCert("tls1"), logs)
	if len(by) != 3 {
		t.Fatalf("%d SCTs, want 3", len(by))
	}
	for _, l := range by {
		if l == logs[0] {
			t.Fatal("an SCT of the failing log")
		}
	}
	if logs[0].Requests() < 1 {
		t.Fatal("the failing log was never asked")
	}
	if f := e.failures("?application_id=" + ev.ApplicationID); len(f) != 0 {
		t.Fatalf("an issuance that got its SCTs recorded failures: %+v", f)
	}
	if v := e.metricLine("ct_submissions_total", `log="`+logs[0].URL+`"`, `result="failed"`); v != "1" {
		t.Fatalf("failed submissions counted for %s: %q, want 1", logs[0].URL, v)
	}
}

// IS-9: every log failing — no certificate, and the failure is visible:
// listed for operators with the logs' errors, CertificateIssuanceFailed,
// an audit entry, the certificate still pending with its retry timer.
// The timer retries (never the consumer) after each of the bounded
// delays, submitting the same precertificate; after the last attempt
// the failure is final. When the logs are back, an operator's retry
// issues the certificate on that same precertificate and serial.
func TestNoSCTsNoIssuanceRetriedByTimer_IS9(t *testing.T) {
	clk := frozenAt(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	logs, entries := startLogs(t, 3, clk)
	for _, l := range logs {
		l.SetFailing(http.StatusServiceUnavailable)
	}
	e := startTLS(t, entries, clk, nil)
	a := serverApp("customer-ct", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{}), clk.Now().AddDate(1, 0, 0))
	e.approveServer(a)
	f := e.waitFailure(a.ID)
	if f.Stage != events.IssuanceStageCT || f.Final || f.Attempt != 1 || !f.NextAttemptAt.Equal(clk.Now().Add(time.Minute)) ||
		!strings.Contains(f.Detail, "0 SCTs") {
		t.Fatalf("first failure %+v", f)
	}
	id := e.certificateOf(a.ID)
	listed := e.failures("?certificate_id=" + id)
	if len(listed) != 1 || listed[0].Stage != "ct" || listed[0].Final || listed[0].NextAttemptAt == nil ||
		!strings.Contains(string(listed[0].Logs), logs[0].URL) || !strings.Contains(string(listed[0].Logs), "503") {
		t.Fatalf("listed failures %+v (logs %s)", listed, listed[0].Logs)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND status = 'pending' AND der IS NULL`, id); n != 1 {
		t.Fatal("the certificate is not pending without a DER")
	}
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-tls-issue' AND key = $1`, id); n != 1 {
		t.Fatal("no retry timer")
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'certificate.issuance_failed' AND subject = $1`, a.ID); n != 1 {
		t.Fatalf("%d audit entries for the failure", n)
	}
	// The retries, one per delay, by the timer on the injected clock.
	for _, d := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour} {
		e.Advance(d)
	}
	all := e.failures("?certificate_id=" + id)
	if len(all) != 7 || !all[0].Final || all[0].Attempt != 7 || all[0].NextAttemptAt != nil || all[1].Final {
		t.Fatalf("%d failures; newest %+v", len(all), all[0])
	}
	if got := e.failures("?final=true&application_id=" + a.ID); len(got) != 1 || got[0].ID != all[0].ID {
		t.Fatalf("final failures %+v", got)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND status = 'failed'`, id); n != 1 {
		t.Fatal("not failed after the last attempt")
	}
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-tls-issue'`); n != 0 {
		t.Fatal("a retry timer after the final failure")
	}
	if n := e.count(`SELECT count(DISTINCT serial) FROM precertificates`); n != 1 {
		t.Fatalf("%d precertificates: the retries did not resubmit the same one", n)
	}
	if v := e.metricLine("issuance_failures_total", `final="false"`, `stage="ct"`); v != "6" {
		t.Fatalf("non-final CT failures counted: %q, want 6", v)
	}
	if v := e.metricLine("issuance_failures_total", `final="true"`, `stage="ct"`); v != "1" {
		t.Fatalf("final CT failures counted: %q, want 1", v)
	}

	// The logs are back; an operator retries.
	for _, l := range logs {
		l.SetFailing(0)
	}
	if r := e.Ops("POST", "/ops/v1/issuance-failures/"+id+"/retry", nil); r.Status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	ev := e.waitIssued(a.ID)
	var serial string
	if err := e.pool().QueryRow(t.Context(), `SELECT serial FROM precertificates`).Scan(&serial); err != nil || ev.Serial != serial {
		t.Fatalf("issued serial %s, precertificate %s (%v)", ev.Serial, serial, err)
	}
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'certificate.issuance_retried' AND subject = $1`, a.ID); n != 1 {
		t.Fatal("the operator's retry is not audited")
	}
	// A retry of an issued certificate, of nothing, of a malformed ID.
	for path, status := range map[string]int{
		"/ops/v1/issuance-failures/" + id + "/retry":               http.StatusConflict,
		"/ops/v1/issuance-failures/" + uuid.NewString() + "/retry": http.StatusNotFound,
		"/ops/v1/issuance-failures/nope/retry":                     http.StatusNotFound,
	} {
		problem(t, e.Ops("POST", path, nil), status)
	}
}

// IS-9 with the browsers' lifetime rule: two logs give two SCTs, too
// few for a 199-day certificate (3 needed): no issuance, visible. Once
// the issuance date reaches 2027-03-15, certificates run 99 days and two
// SCTs suffice: the pending one is issued at its retry — on a new
// precertificate, the old one being over a day old — and a new one too.
func TestTwoLogsTooFewForLongLifetime_IS9_IS4(t *testing.T) {
	clk := frozenAt(time.Date(2027, 3, 13, 12, 0, 0, 0, time.UTC))
	logs, entries := startLogs(t, 2, clk)
	e := startTLS(t, entries, clk, nil)
	a := serverApp("customer-2", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{}), clk.Now().AddDate(1, 0, 0))
	e.approveServer(a)
	f := e.waitFailure(a.ID)
	if f.Stage != events.IssuanceStageCT || f.Final || !strings.Contains(f.Detail, "2 SCTs from 2 log operators; 3 from at least 2") {
		t.Fatalf("failure %+v", f)
	}
	if err := clk.Set(time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	e.Advance(time.Second) // fires the retry, due since long
	ev := e.waitIssued(a.ID)
	leaf := parsePEMCerts(t, []byte(ev.PEMChain))[0]
	if leaf.NotAfter.Sub(leaf.NotBefore)+time.Second != 99*24*time.Hour {
		t.Fatalf("validity %s, want 99 days", leaf.NotAfter.Sub(leaf.NotBefore)+time.Second)
	}
	if n := len(verifyEmbeddedSCTs(t, leaf, e.caCert("tls1"), logs)); n != 2 {
		t.Fatalf("%d SCTs, want 2", n)
	}
	if n := e.count(`SELECT count(*) FROM precertificates`); n != 2 {
		t.Fatalf("%d precertificates, want a new one for the retry after a day", n)
	}
	leaf2, _ := e.issueNew("customer-2", "www.certlife-test.com", clk.Now().AddDate(1, 0, 0))
	if n := len(verifyEmbeddedSCTs(t, leaf2, e.caCert("tls1"), logs)); n != 2 {
		t.Fatalf("%d SCTs, want 2", n)
	}
}

// fermatSigner holds an RSA-2048 key whose primes are adjacent: Fermat's
// method factors it at once (CVE-2022-26320). Go refuses to sign with
// such a key, so this signs its CSR itself: PKCS #1 v1.5 over SHA-256,
// m^d mod n.
type fermatSigner struct {
	pub *rsa.PublicKey
	d   *big.Int
}

func fermatWeakKey(t *testing.T) crypto.Signer {
	t.Helper()
	p, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	q := new(big.Int).Add(p, big.NewInt(2))
	for !q.ProbablyPrime(20) {
		q.Add(q, big.NewInt(2))
	}
	phi := new(big.Int).Mul(new(big.Int).Sub(p, big.NewInt(1)), new(big.Int).Sub(q, big.NewInt(1)))
	d := new(big.Int).ModInverse(big.NewInt(65537), phi)
	if d == nil {
		return fermatWeakKey(t)
	}
	return fermatSigner{pub: &rsa.PublicKey{N: new(big.Int).Mul(p, q), E: 65537}, d: d}
}

func (s fermatSigner) Public() crypto.PublicKey { return s.pub }

func (s fermatSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("fermatSigner signs SHA-256 only, not %v", opts.HashFunc())
	}
	// DigestInfo of SHA-256 (RFC 8017 §9.2 note 1), then the digest.
	t := append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest...)
	k := (s.pub.N.BitLen() + 7) / 8
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(t):], t)
	sig := new(big.Int).Exp(new(big.Int).SetBytes(em), s.d, s.pub.N)
	return sig.FillBytes(make([]byte, k)), nil
}

// SV-6 again at signing (defense in depth): a CSR with an OU, a key too
// small, or a Fermat-weak key reaches the issuer approved — it is refused
// before any serial, precertificate or log submission, as a final failure
// operators see (list, event, audit), with no retry.
func TestBadCSRRefusedAtSigning_SV6(t *testing.T) {
	logs, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		csr  string
		want string
	}{
		"OU":          {csrFor(t, ecKey(t), pkix.Name{CommonName: "www.certlife-test.com", OrganizationalUnit: []string{"IT"}}), "organizational unit"},
		"RSA 1024":    {csrFor(t, small, pkix.Name{CommonName: "www.certlife-test.com"}), "at least 2048"},
		"Fermat-weak": {csrFor(t, fermatWeakKey(t), pkix.Name{CommonName: "www.certlife-test.com"}), "primes are so close"},
		"not a CSR":   {"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "cannot be parsed"},
	} {
		a := serverApp("customer-csr", "www.certlife-test.com", nil, tc.csr, e.Clock.Now().AddDate(1, 0, 0))
		e.approveServer(a)
		f := e.waitFailure(a.ID)
		if f.Stage != events.IssuanceStageCSR || !f.Final || !strings.Contains(f.Detail, tc.want) {
			t.Fatalf("%s: %+v, want a final csr failure saying %q", name, f, tc.want)
		}
		id := e.certificateOf(a.ID)
		if l := e.failures("?final=true&certificate_id=" + id); len(l) != 1 || l[0].Stage != "csr" {
			t.Fatalf("%s: listed %+v", name, l)
		}
		if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND status = 'failed' AND der IS NULL`, id); n != 1 {
			t.Fatalf("%s: not failed", name)
		}
		if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'certificate.issuance_failed' AND subject = $1`, a.ID); n != 1 {
			t.Fatalf("%s: %d audit entries", name, n)
		}
		// The customer's chain download says it was not issued.
		tok := e.token("customer-csr", false, e.Clock.Now().Add(time.Hour))
		problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/chain", nil), http.StatusConflict)
	}
	if n := e.count(`SELECT count(*) FROM serials`) + e.count(`SELECT count(*) FROM precertificates`); n != 0 {
		t.Fatalf("%d serials or precertificates made for refused CSRs", n)
	}
	for _, l := range logs {
		if l.Requests() != 0 {
			t.Fatal("a refused CSR reached a CT log")
		}
	}
	if n := e.count(`SELECT count(*) FROM timers WHERE kind = 'issuer-tls-issue'`); n != 0 {
		t.Fatal("a refused CSR is retried")
	}
}

// SV-10: the chain is the owner's only: another customer's session gets
// 404, no session 401, a malformed ID 404. A client certificate's chain
// still needs a session opened with the certificate code (403). The ops
// list of failures takes only its parameters, and an admin token.
func TestServerChainAndFailureListAccess_SV10_SE4(t *testing.T) {
	_, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	_, ev := e.issueNew("customer-own", "www.certlife-test.com", e.Clock.Now().AddDate(1, 0, 0))
	path := "/v1/certificates/" + ev.CertificateID + "/chain"
	if r := e.as(e.token("customer-own", false, e.Clock.Now().Add(time.Hour)), "GET", path, nil); r.Status != http.StatusOK {
		t.Fatalf("owner: %d", r.Status)
	}
	if r := e.as(e.token("applicant-customer-own", false, e.Clock.Now().Add(time.Hour)), "GET", path, nil); r.Status != http.StatusOK {
		t.Fatalf("the application's applicant: %d", r.Status)
	}
	problem(t, e.as(e.token("customer-other", true, e.Clock.Now().Add(time.Hour)), "GET", path, nil), http.StatusNotFound)
	problem(t, e.Do("GET", path, nil), http.StatusUnauthorized)
	problem(t, e.as(e.token("customer-own", false, e.Clock.Now().Add(time.Hour)), "GET", "/v1/certificates/nope/chain", nil), http.StatusNotFound)
	// A client certificate: the code-verified session gets it, a
	// password-only one is refused.
	tok := e.session("applicant-cl")
	cid := e.approve(application("applicant-cl", events.KindNew, "", ""))
	e.issueCSR(tok, cid, newKey(t))
	p := problem(t, e.as(e.token("applicant-cl", false, e.Clock.Now().Add(time.Hour)), "GET", "/v1/certificates/"+cid+"/chain", nil),
		http.StatusForbidden)
	if !strings.HasSuffix(p["type"].(string), "certificate-code-required") {
		t.Fatalf("problem %v", p)
	}

	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x", "?final=maybe", "?certificate_id=x", "?before=-1",
		"?color=red", "?final=true&final=false"} {
		problem(t, e.Ops("GET", "/ops/v1/issuance-failures"+q, nil), http.StatusUnprocessableEntity)
	}
	problem(t, e.Do("GET", "/ops/v1/issuance-failures", nil), http.StatusUnauthorized)
	if got := e.failures("?limit=5"); len(got) != 0 {
		t.Fatalf("failures %+v", got)
	}
}

// metricLine is the value of the sample of name whose labels include all of
// labels ("" when there is none), from /metrics.
func (e *env) metricLine(name string, labels ...string) string {
	e.t.Helper()
	m := e.Do("GET", "/metrics", nil)
	for _, line := range strings.Split(string(m.Body), "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if all {
			return line[strings.LastIndexByte(line, ' ')+1:]
		}
	}
	return ""
}

// PC-13 (S/MIME BR 6.1.1.3): a client retrieval's CSR gets the same
// known-weak-key checks (pkg/goodkey): a Fermat-weak key is a 422 that
// says why, and nothing is issued.
func TestClientCSRWeakKeyRefused_PC13(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-wk")
	id := e.approve(application("applicant-wk", events.KindNew, "", ""))
	r := e.as(tok, "POST", "/v1/certificates/"+id+"/retrieval",
		map[string]any{"accept_terms": true, "csr": csrFor(t, fermatWeakKey(t), pkix.Name{CommonName: "x"})})
	p := problem(t, r, http.StatusUnprocessableEntity)
	if !fieldNamed(p, "csr") || !strings.Contains(string(r.Body), "primes are so close") {
		t.Fatalf("problem %s", r.Body)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE der IS NOT NULL`); n != 0 {
		t.Fatal("a certificate was issued")
	}
}

// IS-3: zlint lints the precertificate on a throwaway-key copy before
// tls1 signs anything; an error stops the issuance as a final failure
// operators see — here a country code that is no ISO 3166 code and a
// name under no public suffix. The serial was committed first (IS-2)
// and is never used; no precertificate reaches a log.
func TestLintErrorStopsServerIssuance_IS3(t *testing.T) {
	logs, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	for name, tc := range map[string]struct {
		edit func(*events.Application)
		lint string
	}{
		"country JA":  {func(a *events.Application) { a.Server.Organization.Address.Country = "JA" }, "e_subject_country_not_iso"},
		"unknown TLD": {func(a *events.Application) { a.Server.CommonName = "www.certlife.notatld" }, "e_dnsname_not_valid_tld"},
	} {
		a := serverApp("customer-lint", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{}), e.Clock.Now().AddDate(1, 0, 0))
		tc.edit(&a)
		e.approveServer(a)
		f := e.waitFailure(a.ID)
		if f.Stage != events.IssuanceStageLint || !f.Final || !strings.Contains(f.Detail, tc.lint) {
			t.Fatalf("%s: %+v, want a final lint failure naming %s", name, f, tc.lint)
		}
		if l := e.failures("?application_id=" + a.ID); len(l) != 1 || l[0].Stage != "lint" || !l[0].Final {
			t.Fatalf("%s: listed %+v", name, l)
		}
	}
	if n := e.count(`SELECT count(*) FROM serials`); n != 2 {
		t.Fatalf("%d serials recorded, want 2 (one per attempt, before signing)", n)
	}
	if n := e.count(`SELECT count(*) FROM precertificates`) + e.count(`SELECT count(*) FROM certificates WHERE der IS NOT NULL`); n != 0 {
		t.Fatal("something was signed despite the lint error")
	}
	for _, l := range logs {
		if l.Requests() != 0 {
			t.Fatal("a log was asked")
		}
	}
	if v := e.metricLine("certificate_lint_failures_total"); v != "2" {
		t.Fatalf("lint failures counted %q, want 2", v)
	}
}

// TLS BR 6.1.1.3 (SV-6, IS-6): once a certificate of a key is revoked for
// key compromise, no certificate is issued for that key again — for any
// customer — while a key revoked for another reason may be certified anew.
func TestCompromisedKeyNeverCertifiedAgain_SV6_IS6(t *testing.T) {
	_, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	coverage := e.Clock.Now().AddDate(1, 0, 0)
	compromised, superseded := ecKey(t), ecKey(t)
	issue := func(customer string, key *ecdsa.PrivateKey) (events.Application, *x509.Certificate) {
		a := serverApp(customer, "www.certlife-test.com", nil, csrFor(t, key, pkix.Name{CommonName: "www.certlife-test.com"}), coverage)
		e.approveServer(a)
		return a, parsePEMCerts(t, []byte(e.waitIssued(a.ID).PEMChain))[0]
	}
	_, first := issue("customer-kc", compromised)
	_, other := issue("customer-kc", superseded)
	for c, reason := range map[*x509.Certificate]string{first: "keyCompromise", other: "superseded"} {
		if r := e.Ops("POST", "/ops/v1/revocations", map[string]any{"serial": hexSerial(c), "reason": reason}); r.Status != 200 {
			t.Fatalf("revoke %s: %d %s", reason, r.Status, r.Body)
		}
	}
	for _, customer := range []string{"customer-kc", "customer-other"} {
		a := serverApp(customer, "www.certlife-test.com", nil, csrFor(t, compromised, pkix.Name{CommonName: "www.certlife-test.com"}), coverage)
		e.approveServer(a)
		f := e.waitFailure(a.ID)
		if f.Stage != events.IssuanceStageCSR || !f.Final || !strings.Contains(f.Detail, "revoked for key compromise") {
			t.Fatalf("%s: %+v, want a final csr failure for the compromised key", customer, f)
		}
	}
	// A key whose certificate was merely superseded is not compromised.
	if _, again := issue("customer-kc", superseded); again == nil {
		t.Fatal("no certificate for a superseded key")
	}
}
