package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

func pemCert(t *testing.T, raw []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("not PEM: %s", raw)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// crlEntry fetches the issuing CA's CRL, checks its signature and limits
// (IS-7) and returns the reason code of serial, or -1 when absent.
func (e *e2e) crlEntry(t *testing.T, serial *big.Int) int {
	t.Helper()
	r := e.do("GET", "/crl/ica1.crl", nil)
	if r.Status != 200 {
		t.Fatalf("crl: %d", r.Status)
	}
	crl, err := x509.ParseRevocationList(r.Body)
	if err != nil {
		t.Fatalf("parse CRL: %v", err)
	}
	ica := pemCert(t, e.do("GET", "/ca/ica1.pem", nil).Body)
	if err := crl.CheckSignatureFrom(ica); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	if crl.NextUpdate.Sub(crl.ThisUpdate) > 10*24*time.Hour {
		t.Fatalf("nextUpdate %s after thisUpdate", crl.NextUpdate.Sub(crl.ThisUpdate))
	}
	for _, entry := range crl.RevokedCertificateEntries {
		if entry.SerialNumber.Cmp(serial) == 0 {
			return entry.ReasonCode
		}
	}
	return -1
}

func csrPEM(t *testing.T, email string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "Veri Taro"}, EmailAddresses: []string{email}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// The client lifecycle of seeds 000, 001 and 003 through the HTTP API:
// a new certificate retrieved as PKCS#12; a reissue whose new code
// replaces the old, retrieved for a CSR, keeping the original expiry
// while the old certificate lands on the CRL as superseded; a renewal
// notice 30 days before expiry carrying a fresh code; a renewal with a new
// coupon whose validity is chained from the previous expiry; and no
// 10-day notice once the renewal was retrieved.
// (PC-7, PC-8, PC-10, PC-11, PC-12, PC-13, PC-14, PC-15, IS-6, IS-7, IS-8)
func TestClientLifecycleRenewalReissueRetrieval_PC8_PC10_PC11_PC12_PC15_IS7(t *testing.T) {
	e := startE2E(t, nil, nil)
	coupons := e.importCoupons(2)
	email := "lifecycle@example.co.jp"
	pw := "a strong p12 password"

	// New certificate A, retrieved as PKCS#12.
	a := e.submit(coupons[0], email)
	e.waitEvent(events.TypeCouponReserved, a.ID)
	e.advance("61m")
	code1 := e.waitCode(email, 1)
	token := e.login(email, code1)
	certA := e.eligible(token, "retrieval")[0].ID
	_, leafA, _, err := pkcs12.DecodeChain(e.retrievePKCS12(token, certA, pw), pw)
	if err != nil {
		t.Fatal(err)
	}

	// Reissue A (the key is fine: superseded when the replacement is issued).
	if len(e.eligible(token, "reissue")) != 1 {
		t.Fatal("A is not offered for reissue")
	}
	// Intake learns of the issuance from CertificateIssued, a moment after
	// the issuer lists it (services share events, not a database).
	testenv.Eventually(t, 30*time.Second, "intake offers A for reissue", func() bool {
		var pf struct {
			ReissueOpen bool `json:"reissue_open"`
		}
		e.do("GET", "/v1/certificates/"+certA+"/prefill", nil, "Authorization", "Bearer "+token).JSON(t, &pf)
		return pf.ReissueOpen
	})
	r := e.do("POST", "/v1/certificates/"+certA+"/reissues", map[string]any{"reason": "superseded"}, "Authorization", "Bearer "+token)
	if r.Status != 202 {
		t.Fatalf("reissue: %d %s", r.Status, r.Body)
	}
	var reissue submitted
	r.JSON(t, &reissue)
	code2 := e.waitCode(email, 2) // PC-11: a new code, without an operator
	if r := e.do("POST", "/v1/sessions", map[string]string{"email": email, "password": "an application password", "certificate_code": code1}); r.Status != 401 {
		t.Fatalf("the old code still works: %d", r.Status)
	}
	token = e.login(email, code2)
	ready := e.eligible(token, "retrieval")
	if len(ready) != 1 || ready[0].ApplicationID != reissue.ID {
		t.Fatalf("ready after reissue: %+v", ready)
	}
	certB := ready[0].ID
	auth := []string{"Authorization", "Bearer " + token}
	if r := e.do("POST", "/v1/certificates/"+certB+"/retrieval", map[string]any{"accept_terms": true, "csr": string(csrPEM(t, email))}, auth...); r.Status != 202 {
		t.Fatalf("csr retrieval: %d %s", r.Status, r.Body)
	}
	chain := e.do("GET", "/v1/certificates/"+certB+"/chain", nil, auth...)
	if chain.Status != 200 {
		t.Fatalf("chain: %d %s", chain.Status, chain.Body)
	}
	leafB := pemCert(t, chain.Body)
	if strings.Count(string(chain.Body), "BEGIN CERTIFICATE") < 2 {
		t.Fatal("the chain lacks the intermediate")
	}
	if !leafB.NotAfter.Equal(leafA.NotAfter) {
		t.Fatalf("reissue expiry %s, original %s (PC-11)", leafB.NotAfter, leafA.NotAfter)
	}
	// PC-12, IS-7: A is on the next CRL with reason superseded.
	testenv.Eventually(t, 30*time.Second, "A on the CRL", func() bool { return e.crlEntry(t, leafA.SerialNumber) == x509ReasonSuperseded })
	if e.crlEntry(t, leafB.SerialNumber) != -1 {
		t.Fatal("B is on the CRL")
	}

	// PC-10: the renewal notice 30 days before B's expiry carries a fresh code.
	until := time.Until(leafB.NotAfter) - 30*24*time.Hour + time.Hour
	e.advance(until.Round(time.Hour).String())
	code3 := e.waitCode(email, 3)
	token = e.login(email, code3)
	renewable := e.eligible(token, "renewal")
	if len(renewable) != 1 || renewable[0].ID != certB {
		t.Fatalf("renewable: %+v", renewable)
	}
	// PC-8: renewal needs a new coupon.
	r = e.do("POST", "/v1/certificates/"+certB+"/renewals", map[string]any{"coupon": coupons[1]}, "Authorization", "Bearer "+token)
	if r.Status != 202 {
		t.Fatalf("renewal: %d %s", r.Status, r.Body)
	}
	var renewal submitted
	r.JSON(t, &renewal)
	e.waitEvent(events.TypeCouponReserved, renewal.ID)
	e.advance("61m")
	code4 := e.waitCode(email, 4)
	token = e.login(email, code4)
	ready = e.eligible(token, "retrieval")
	if len(ready) != 1 || ready[0].ApplicationID != renewal.ID {
		t.Fatalf("ready after renewal: %+v", ready)
	}
	_, leafC, _, err := pkcs12.DecodeChain(e.retrievePKCS12(token, ready[0].ID, pw), pw)
	if err != nil {
		t.Fatal(err)
	}
	// PC-15: not_after = previous expiry + term; B stays valid (not revoked).
	if want := leafB.NotAfter.Add(e.cfg.TermClient); leafC.NotAfter.Sub(want).Abs() > time.Minute {
		t.Fatalf("renewal expiry %s, want %s", leafC.NotAfter, want)
	}
	if e.crlEntry(t, leafB.SerialNumber) != -1 {
		t.Fatal("a renewal revoked the previous certificate")
	}
	e.waitEvent(events.TypeCertificateRetrieved, renewal.ID)
	// PC-10: no 10-day notice once the renewal was retrieved.
	e.advance("480h")
	time.Sleep(500 * time.Millisecond)
	notices := 0
	for _, env := range e.events(events.TypeRenewalDue) {
		if env.SubjectID == certB {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("%d renewal notices for B, want 1", notices)
	}
}

const x509ReasonSuperseded = 4
