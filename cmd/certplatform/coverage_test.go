package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// approve publishes ReviewApproved of an application, standing in for
// validation's DCV, organization and phone checks and review (IS-5 makes
// one certificate even if validation approves it too).
func (e *e2e) approve(a events.Application) {
	e.t.Helper()
	env, err := events.New(events.ReviewApproved{ReviewID: uuid.NewString(), Application: a, Reviewer: "ops:test"}, e.p.Clock.Now(), a.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) issuedLeaf(applicationID string) (events.CertificateIssued, *x509.Certificate) {
	e.t.Helper()
	ev, err := events.Decode[events.CertificateIssued](e.waitEvent(events.TypeCertificateIssued, applicationID))
	if err != nil {
		e.t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(ev.PEMChain))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev, leaf
}

func coverageCSR(t *testing.T, cn string) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn,
		Organization: []string{"Certlife Test K.K."}, Locality: []string{"Chuo-ku"}, Province: []string{"Tokyo"}, Country: []string{"JP"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), key
}

// issuedDays is IS-4's validity for a server certificate issued at t:
// one day under the maximum of its issuance date.
func issuedDays(t time.Time) time.Duration {
	days := 46
	switch {
	case t.Before(time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)):
		days = 397
	case t.Before(time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC)):
		days = 199
	case t.Before(time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC)):
		days = 99
	}
	return time.Duration(days) * 24 * time.Hour
}

// IS-4 through the all-in-one: a 24-month server application gets a
// first certificate capped by its issuance date (199 days today; validation stood in for); 30
// days before it expires the issuer announces the reissue, intake asks
// the customer for a new CSR, the notifier mails them; the CSR posted
// with a customer session makes the reissue, issued with the new key
// (99 days when issued after 2027-03-15) inside the same coverage, and the
// replaced certificate is not revoked.
func TestAllInOneCoverageReissueWithNewCSR_IS4(t *testing.T) {
	e := startE2E(t, nil, nil)
	const cn, email, password = "www.certlife-test.com", "cover-aio@example.co.jp", "a customer password"
	csr, _ := coverageCSR(t, cn)
	prov := e.applyServer(t, csr, email, password, 24)
	coverageEnd := prov.Application.Server.CoverageEnd
	if d := coverageEnd.Sub(e.p.Clock.Now()); d < 720*24*time.Hour {
		t.Fatalf("coverage ends %s, not 24 months on", coverageEnd)
	}
	e.approve(prov.Application)
	first, leaf := e.issuedLeaf(prov.Application.ID)
	if leaf.NotAfter.Sub(leaf.NotBefore)+time.Second != issuedDays(leaf.NotBefore) || !first.CoverageEnd.Equal(coverageEnd) {
		t.Fatalf("first certificate %s – %s, coverage %s", leaf.NotBefore, leaf.NotAfter, first.CoverageEnd)
	}

	// 30 days before it expires.
	e.advance(leaf.NotAfter.Add(-30*24*time.Hour + time.Minute).Sub(e.p.Clock.Now()).Round(time.Second).String())
	due, err := events.Decode[events.CoverageReissueDue](e.waitEvent(events.TypeCoverageReissueDue, first.CertificateID))
	if err != nil || due.ReuseKey {
		t.Fatalf("CoverageReissueDue %+v %v", due, err)
	}
	var req events.CoverageCSRRequested
	testenv.Eventually(t, 30*time.Second, "CoverageCSRRequested", func() bool {
		for _, env := range e.events(events.TypeCoverageCSRRequested) {
			if p, err := events.Decode[events.CoverageCSRRequested](env); err == nil && p.CertificateID == first.CertificateID {
				req = p
				return true
			}
		}
		return false
	})
	testenv.Eventually(t, 30*time.Second, "the CSR request mail", func() bool {
		for _, m := range e.smtp.To(email) {
			if strings.Contains(m.Body, "/v1/certificates/"+first.CertificateID+"/reissues") {
				return true
			}
		}
		return false
	})

	// The customer's new CSR.
	s := e.do("POST", "/v1/sessions", map[string]any{"email": email, "password": password})
	if s.Status != 201 {
		t.Fatalf("customer session: %d %s", s.Status, s.Body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	s.JSON(t, &tok)
	newCSR, newKey := coverageCSR(t, cn)
	r := e.do("POST", "/v1/certificates/"+first.CertificateID+"/reissues", map[string]any{"csr": newCSR},
		"Authorization", "Bearer "+tok.Token, "Idempotency-Key", uuid.NewString())
	if r.Status != 202 {
		t.Fatalf("reissue CSR: %d %s", r.Status, r.Body)
	}
	closed, err := events.Decode[events.CancelWindowClosed](e.waitEvent(events.TypeCancelWindowClosed, req.ApplicationID))
	if err != nil {
		t.Fatal(err)
	}
	e.approve(closed.Application)
	second, next := e.issuedLeaf(req.ApplicationID)
	now := e.p.Clock.Now().UTC().Truncate(time.Second)
	pub, _ := x509.MarshalPKIXPublicKey(&newKey.PublicKey)
	if second.Kind != events.KindReissue || second.PreviousCertificateID != first.CertificateID ||
		!bytes.Equal(next.RawSubjectPublicKeyInfo, pub) || !second.CoverageEnd.Equal(coverageEnd) ||
		next.NotAfter.Sub(next.NotBefore)+time.Second != issuedDays(next.NotBefore) || next.NotBefore.Before(now.Add(-time.Minute)) {
		t.Fatalf("reissue %+v: %s – %s", second, next.NotBefore, next.NotAfter)
	}
	for _, env := range e.events(events.TypeCertificateRevoked) {
		if env.SubjectID == first.CertificateID {
			t.Fatal("the replaced certificate was revoked")
		}
	}
}

// applyServer posts a server application of a new customer (DNS
// validation, the test organization) and returns its provisional event.
func (e *e2e) applyServer(t *testing.T, csr, email, password string, termMonths int) events.ApplicationProvisional {
	t.Helper()
	r := e.do("POST", "/v1/applications", map[string]any{
		"product": "server", "term_months": termMonths, "password": password, "language": "en",
		"organization": map[string]any{"duns": "690000001", "name_en": "Certlife Test K.K.",
			"address": map[string]any{"street": "2-8-1 Yaesu", "city": "Chuo-ku", "state": "Tokyo", "postal_code": "104-0028", "country": "JP"}},
		"csr": csr, "dcv": map[string]any{"method": "dns"},
		"technical_contact": map[string]any{"name": "Tech Contact", "email": email, "phone": "+81312345678"},
	})
	if r.Status != 202 {
		t.Fatalf("server application: %d %s", r.Status, r.Body)
	}
	var acc struct {
		ID string `json:"id"`
	}
	r.JSON(t, &acc)
	prov, err := events.Decode[events.ApplicationProvisional](e.waitEvent(events.TypeApplicationProvisional, acc.ID))
	if err != nil {
		t.Fatal(err)
	}
	return prov
}
