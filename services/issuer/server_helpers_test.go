package issuer_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ctgo "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/ctlog"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// testLog is a pkg/ctlog RFC 6962 log on its own loopback listener, with
// a count of the submissions it received (answered or not).
type testLog struct {
	*ctlog.Log
	URL      string
	requests atomic.Int64
}

func (l *testLog) Requests() int64 { return l.requests.Load() }

// startLogs runs n CT logs on loopback and returns them with their
// CT_LOGS entries (no operator given: each is its own operator). With a
// clock, the logs stamp SCTs by it, as the all-in-one's dev logs follow
// the platform clock.
func startLogs(t *testing.T, n int, clk ...*clock.Offset) ([]*testLog, []string) {
	t.Helper()
	var logs []*testLog
	var entries []string
	for i := range n {
		l, err := ctlog.New(fmt.Sprintf("test-log-%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		if len(clk) > 0 {
			l.SetClock(clk[0].Now)
		}
		tl := &testLog{Log: l}
		inner := l.Handler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/add-pre-chain") || strings.HasSuffix(r.URL.Path, "/add-chain") {
				tl.requests.Add(1)
			}
			inner.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		tl.URL = srv.URL
		logs = append(logs, tl)
		entries = append(entries, srv.URL+"="+l.PublicKeyBase64())
	}
	return logs, entries
}

// startTLS runs the issuer with CT logs. A log that fails is given up
// after 1.5 s of its client's retries, so that tests of replacement run
// quickly (production: CT_SUBMIT_TIMEOUT, 10 s).
func startTLS(t *testing.T, entries []string, clk *clock.Offset, cfg func(*app.Config)) *env {
	t.Helper()
	return startWith(t, testenv.Options{Clock: clk, Config: func(c *app.Config) {
		c.CTLogs = strings.Join(entries, ",")
		c.CTSubmitTimeout = 1500 * time.Millisecond
		if cfg != nil {
			cfg(c)
		}
	}})
}

// frozenAt is a clock stopped at t (it moves only when told).
func frozenAt(t time.Time) *clock.Offset { return clock.NewFrozen(t) }

// csrFor makes a CSR for key with subject (the issuer uses only its key
// and checks its subject has no OU).
func csrFor(t *testing.T, key crypto.Signer, subject pkix.Name) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serverApp is an approved server application as validation would
// describe it in ReviewApproved: the customer's CSR, the common name and
// additional domains, the organization's registry record in English, the
// technical contact, and the paid coverage.
func serverApp(customer, commonName string, domains []string, csr string, coverageEnd time.Time) events.Application {
	return events.Application{
		ID: uuid.NewString(), ApplicantID: "applicant-" + customer, Product: events.ProductServer, Kind: events.KindNew,
		Language:  "ja",
		Applicant: events.Applicant{NameEn: "Veri Taro", Email: "taro@example.co.jp"},
		Server: &events.ServerApplication{
			CustomerID: customer, OrderID: uuid.NewString(), TermMonths: 12, CSR: csr,
			CommonName: commonName, Domains: domains,
			DCV:              events.DCVChoice{Method: events.DCVMethodDNS},
			TechnicalContact: events.Contact{Name: "Gijutsu Hanako", Email: "tech@example.co.jp", Phone: "0350001111"},
			Organization: events.ServerOrganization{DUNS: "690000001", NameEn: "Certlife Test K.K.",
				Address: events.ServerAddress{Street: "2-8-1 Yaesu", City: "Chuo-ku", State: "Tokyo", PostalCode: "1040028", Country: "JP"}},
			CoverageEnd: coverageEnd,
		},
	}
}

// approveServer publishes the approval, as validation would; the issuer
// answers with CertificateIssued or CertificateIssuanceFailed.
func (e *env) approveServer(a events.Application) {
	e.t.Helper()
	e.Publish(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:test"}, a.ID)
}

func (e *env) waitIssued(applicationID string) events.CertificateIssued {
	e.t.Helper()
	p, err := events.Decode[events.CertificateIssued](e.WaitEvent(events.TypeCertificateIssued, applicationID, wait))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// failures are the issuance failures the ops API lists for a certificate.
func (e *env) failures(query string) []issuanceFailure {
	e.t.Helper()
	r := e.Ops("GET", "/ops/v1/issuance-failures"+query, nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("issuance failures: %d %s", r.Status, r.Body)
	}
	var out struct {
		Failures []issuanceFailure `json:"failures"`
	}
	r.JSON(e.t, &out)
	return out.Failures
}

type issuanceFailure struct {
	ID            int64           `json:"id"`
	CertificateID string          `json:"certificate_id"`
	ApplicationID string          `json:"application_id"`
	Stage         string          `json:"stage"`
	Detail        string          `json:"detail"`
	Attempt       int             `json:"attempt"`
	Final         bool            `json:"final"`
	NextAttemptAt *time.Time      `json:"next_attempt_at"`
	Logs          json.RawMessage `json:"logs"`
}

// certificateOf is the certificate ID the issuer gave an application.
func (e *env) certificateOf(applicationID string) string {
	e.t.Helper()
	var id string
	testenv.Eventually(e.t, wait, "the approval recorded", func() bool {
		return e.pool().QueryRow(e.t.Context(), `SELECT id::text FROM certificates WHERE application_id = $1`, applicationID).Scan(&id) == nil
	})
	return id
}

// embeddedSCTs reads the SCT list of a final certificate.
func embeddedSCTs(t *testing.T, leaf *ctx509.Certificate) []*ctgo.SignedCertificateTimestamp {
	t.Helper()
	var out []*ctgo.SignedCertificateTimestamp
	for _, s := range leaf.SCTList.SCTList {
		var sct ctgo.SignedCertificateTimestamp
		if rest, err := cttls.Unmarshal(s.Val, &sct); err != nil || len(rest) != 0 {
			t.Fatalf("embedded SCT: %v", err)
		}
		out = append(out, &sct)
	}
	return out
}

// verifyEmbeddedSCTs checks every SCT embedded in leaf (issued by
// issuer) with ctutil.VerifySCT against the key of the log that made it,
// and returns the logs in the order of the SCTs.
func verifyEmbeddedSCTs(t *testing.T, leaf, issuer *x509.Certificate, logs []*testLog) []*testLog {
	t.Helper()
	chain := make([]*ctx509.Certificate, 2)
	for i, der := range [][]byte{leaf.Raw, issuer.Raw} {
		c, err := ctx509.ParseCertificate(der)
		if err != nil && ctx509.IsFatal(err) {
			t.Fatal(err)
		}
		chain[i] = c
	}
	var by []*testLog
	for _, sct := range embeddedSCTs(t, chain[0]) {
		var log *testLog
		for _, l := range logs {
			if l.ID() == sct.LogID.KeyID {
				log = l
			}
		}
		if log == nil {
			t.Fatalf("embedded SCT of an unknown log %x", sct.LogID.KeyID)
		}
		if err := ctutil.VerifySCT(log.PublicKey(), chain, sct, true); err != nil {
			t.Fatalf("embedded SCT of %s does not verify: %v", log.Name, err)
		}
		by = append(by, log)
	}
	return by
}

// handshake serves leaf + chain from a loopback TLS server and connects
// to it as a browser would, with the dev root as the only trusted root,
// at the platform clock's time, for serverName.
func handshake(t *testing.T, root *x509.Certificate, chain []*x509.Certificate, key crypto.Signer, serverName string, now time.Time) error {
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
		return fmt.Errorf("read after handshake: %v %q", err, buf)
	}
	return <-done
}
