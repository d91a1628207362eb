package main

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// OP-5 through the all-in-one: a mass revocation of a server certificate
// whose coverage goes on mails its subscriber once, listing it, and
// offers its free replacement (intake's reissue, the notifier's
// revocation_replacement mail); the customer's CSR of a new key — the
// revoked key is refused — makes the replacement, issued with the new
// key inside the same coverage.
func TestAllInOneMassRevocationReplacement_OP5(t *testing.T) {
	e := startE2E(t, nil, nil)
	const cn, email, password = "mass.certlife-test.com", "mass-aio@example.co.jp", "a customer password"
	csr, _ := coverageCSR(t, cn)
	prov := e.applyServer(t, csr, email, password, 12)
	e.approve(prov.Application)
	first, leaf := e.issuedLeaf(prov.Application.ID)
	serial := fmt.Sprintf("%x", leaf.SerialNumber)

	m := e.ops("POST", "/ops/v1/mass-revocations", map[string]any{"reason": "keyCompromise", "serials": []string{serial}},
		"Idempotency-Key", uuid.NewString())
	if m.Status != 202 {
		t.Fatalf("mass revocation: %d %s", m.Status, m.Body)
	}
	var mass struct {
		ID string `json:"id"`
	}
	m.JSON(t, &mass)
	e.waitMail(email, "revoke a group of certificates at once", serial, mass.ID)
	var req events.CoverageCSRRequested
	testenv.Eventually(t, 30*time.Second, "the replacement's CoverageCSRRequested", func() bool {
		for _, env := range e.events(events.TypeCoverageCSRRequested) {
			if p, err := events.Decode[events.CoverageCSRRequested](env); err == nil && p.CertificateID == first.CertificateID {
				req = p
				return true
			}
		}
		return false
	})
	if req.MassRevocationID != mass.ID || req.RevocationReason != "keyCompromise" {
		t.Fatalf("replacement request %+v", req)
	}
	e.waitMail(email, "create a NEW key", "/v1/certificates/"+first.CertificateID+"/reissues")
	mails := 0
	for _, msg := range e.smtp.To(email) {
		if strings.Contains(msg.Body, "revoke a group of certificates at once") {
			mails++
		}
	}
	if mails != 1 {
		t.Fatalf("%d mass revocation mails, want one", mails)
	}

	s := e.do("POST", "/v1/sessions", map[string]any{"email": email, "password": password})
	if s.Status != 201 {
		t.Fatalf("customer session: %d %s", s.Status, s.Body)
	}
	var tok struct {
		Token string `json:"token"`
	}
	s.JSON(t, &tok)
	path := "/v1/certificates/" + first.CertificateID + "/reissues"
	if r := e.do("POST", path, map[string]any{"csr": csr}, "Authorization", "Bearer "+tok.Token,
		"Idempotency-Key", uuid.NewString()); r.Status != 422 {
		t.Fatalf("the revoked key's CSR: %d %s", r.Status, r.Body)
	}
	newCSR, newKey := coverageCSR(t, cn)
	if r := e.do("POST", path, map[string]any{"csr": newCSR}, "Authorization", "Bearer "+tok.Token,
		"Idempotency-Key", uuid.NewString()); r.Status != 202 {
		t.Fatalf("replacement CSR: %d %s", r.Status, r.Body)
	}
	closed, err := events.Decode[events.CancelWindowClosed](e.waitEvent(events.TypeCancelWindowClosed, req.ApplicationID))
	if err != nil {
		t.Fatal(err)
	}
	e.approve(closed.Application)
	second, next := e.issuedLeaf(req.ApplicationID)
	pub, _ := x509.MarshalPKIXPublicKey(&newKey.PublicKey)
	if second.Kind != events.KindReissue || second.PreviousCertificateID != first.CertificateID ||
		!bytes.Equal(next.RawSubjectPublicKeyInfo, pub) || !second.CoverageEnd.Equal(first.CoverageEnd) {
		t.Fatalf("replacement %+v", second)
	}
}
