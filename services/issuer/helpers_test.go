package issuer_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/issuer"
)

const wait = 15 * time.Second

// env is one running issuer and the session signer whose tokens it accepts.
type env struct {
	*testenv.Platform
	t      *testing.T
	signer *session.Signer
}

// start runs the issuer on fresh Postgres and NATS. Intake is not
// running: sessions are tokens minted here with pkg/session, which the
// issuer verifies with the public key alone (issue 6 item 8).
func start(t *testing.T, cfg func(*app.Config)) *env {
	t.Helper()
	return startWith(t, testenv.Options{Config: cfg})
}

func startWith(t *testing.T, opts testenv.Options) *env {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := session.NewSigner(key)
	cfg := opts.Config
	opts.Config = func(c *app.Config) {
		c.SessionPublicKey = session.EncodePublicKey(signer.Public())
		c.DevMode = true // the throwaway CA of the all-in-one, under the test's DATA_DIR
		if cfg != nil {
			cfg(c)
		}
	}
	p := testenv.Start(t, opts, issuer.Definition)
	e := &env{Platform: p, t: t, signer: signer}
	t.Cleanup(func() {
		dir := p.Config.CADir
		if dir == "" {
			dir = filepath.Join(p.Config.DataDir, "ca")
		}
		collectIssued(t, e.pool(), dir)
	})
	return e
}

// startPublic is start with the platform also served at its PUBLIC_URL,
// a loopback listener bound before the CA is made, so that the URLs in
// the certificates (CRL distribution points, caIssuers) answer — for
// clients that fetch them: OpenSSL's test, gpgsm's dirmngr.
func startPublic(t *testing.T, cfg func(*app.Config)) (*env, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	e := start(t, func(c *app.Config) {
		c.PublicURL = public
		if cfg != nil {
			cfg(c)
		}
	})
	srv := &http.Server{Handler: e.Server.Config.Handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return e, public
}

// session makes a bearer token for an applicant, as intake would after a
// sign-in with the certificate code. It outlives the clock jumps of the
// validity tests, standing for the fresh session an applicant opens at
// each step.
func (e *env) session(applicantID string) string {
	return e.token(applicantID, true, e.Clock.Now().Add(10*365*24*time.Hour))
}

func (e *env) token(applicantID string, codeVerified bool, expires time.Time) string {
	e.t.Helper()
	tok, err := e.signer.Sign(session.Claims{SessionID: uuid.NewString(), Subject: applicantID, CodeVerified: codeVerified,
		IssuedAt: e.Clock.Now().Unix(), ExpiresAt: expires.Unix()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) pool() *pgxpool.Pool { return e.Unit("issuer").Deps.Pool }

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) as(token, method, path string, body any, headers ...string) testenv.Response {
	e.t.Helper()
	return e.Do(method, path, body, append([]string{"Authorization", "Bearer " + token}, headers...)...)
}

// application is a client application as intake would describe it.
func application(applicantID, kind, previous, reissueReason string) events.Application {
	return events.Application{
		ID: uuid.NewString(), ApplicantID: applicantID, Product: events.ProductClient, Kind: kind, Language: "ja",
		Coupon: "12345678-87654321",
		Organization: events.Organization{CompanyCode: "984940947", NameJa: "日本ベリサイン株式会社", NameEn: "VeriSign Japan K.K.",
			Identifier: "NTRJP-4010001012345"},
		Applicant: events.Applicant{NameJa: "辺利 太郎", NameEn: "Veri Taro", Email: applicantID + "@example.co.jp",
			Phone: "0350001111", Address: events.Address{PostalCode: "1040028", Prefecture: "東京都", City: "中央区", Street: "八重洲2-8-1"}},
		PreviousCertificateID: previous,
		ReissueReason:         reissueReason,
	}
}

// approve publishes ReviewApproved as validation would and returns the
// certificate ID from the issuer's CertificateReady.
func (e *env) approve(a events.Application) string {
	e.t.Helper()
	e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:test"}, a.ID)
	ready := e.WaitEvent(events.TypeCertificateReady, a.ID, wait)
	p, err := events.Decode[events.CertificateReady](ready)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.CertificateID
}

type retrievalState struct {
	CertificateID string `json:"certificate_id"`
	Status        string `json:"status"`
	Mode          string `json:"mode"`
	Failure       string `json:"failure"`
}

func (e *env) retrieve(token, id string, body any) retrievalState {
	e.t.Helper()
	r := e.as(token, "POST", "/v1/certificates/"+id+"/retrieval", body)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("retrieval: %d %s", r.Status, r.Body)
	}
	var st retrievalState
	r.JSON(e.t, &st)
	return st
}

// issueCSR approves nothing: it retrieves an approved certificate with a
// CSR and returns the issued certificate from its chain.
func (e *env) issueCSR(token, id string, key crypto.Signer) *x509.Certificate {
	e.t.Helper()
	st := e.retrieve(token, id, map[string]any{"accept_terms": true, "csr": csrPEM(e.t, key)})
	if st.Status != "delivered" {
		e.t.Fatalf("csr retrieval: %+v", st)
	}
	return e.chain(token, id)[0]
}

func (e *env) chain(token, id string) []*x509.Certificate {
	e.t.Helper()
	r := e.as(token, "GET", "/v1/certificates/"+id+"/chain", nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("chain: %d %s", r.Status, r.Body)
	}
	return parsePEMCerts(e.t, r.Body)
}

// caCert fetches a CA certificate over HTTP, as a relying party would.
func (e *env) caCert(name string) *x509.Certificate {
	e.t.Helper()
	r := e.Do("GET", "/ca/"+name+".pem", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-pem-file" {
		e.t.Fatalf("/ca/%s.pem: %d %s", name, r.Status, r.Header.Get("Content-Type"))
	}
	return parsePEMCerts(e.t, r.Body)[0]
}

// verify checks cert chains to the root at the platform clock's now.
func (e *env) verify(cert *x509.Certificate, intermediates ...*x509.Certificate) {
	e.t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.caCert("root"))
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: e.Clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		e.t.Fatalf("certificate does not verify to the root: %v", err)
	}
}

func (e *env) list(token, eligibility string) []map[string]any {
	e.t.Helper()
	r := e.as(token, "GET", "/v1/certificates?eligible_for="+eligibility, nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	var out struct {
		Certificates []map[string]any `json:"certificates"`
	}
	r.JSON(e.t, &out)
	return out.Certificates
}

func listed(items []map[string]any, id string) bool {
	for _, it := range items {
		if it["id"] == id {
			return true
		}
	}
	return false
}

// eventsFor are the events of a type whose data mentions want.
func (e *env) eventsFor(eventType, want string) []events.Envelope {
	var out []events.Envelope
	for _, ev := range e.Events(eventType) {
		if strings.Contains(string(ev.Data), want) {
			out = append(out, ev)
		}
	}
	return out
}

func csrPEM(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "ignored by the issuer"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func parsePEMCerts(t *testing.T, raw []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no PEM certificate")
	}
	return out
}

// problem decodes an RFC 9457 body and checks its status and media type.
func problem(t *testing.T, r testenv.Response, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (%s)", ct, r.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func fieldNamed(p map[string]any, field string) bool {
	errs, _ := p["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok && m["field"] == field {
			return true
		}
	}
	return false
}

func hexSerial(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }
