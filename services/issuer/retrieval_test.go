package issuer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
)

// DER encodings of the algorithm OIDs a PKCS#12 file names in clear.
var (
	oidPBES2     = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d}
	oidAES256CBC = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a}
	oidSHA256    = []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}
	// pkcs-12PbeIds arc (1.2.840.113549.1.12.1): RC2, RC4 and 3DES PBEs.
	arcPKCS12PBE = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01}
)

// PC-13, PC-14, IS-8, IS-1: a PKCS#12 retrieval makes an RSA key, signs a
// certificate that chains to the root, and hands the Modern2023 file out
// exactly once; the password is nowhere in the database or the events.
func TestPKCS12RetrievalDownloadsOnce_PC13_PC14_IS8(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-a")
	a := application("applicant-a", events.KindNew, "", "")
	id := e.approve(a)
	if !listed(e.list(tok, "retrieval"), id) {
		t.Fatal("an approved certificate is not listed for retrieval")
	}
	const password = "correct horse battery"
	st := e.retrieve(tok, id, map[string]any{"accept_terms": true, "pkcs12_password": password})
	if st.Status != "ready" || st.Mode != "pkcs12" || st.CertificateID != id {
		t.Fatalf("retrieval state %+v", st)
	}
	if r := e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"ready"`) {
		t.Fatalf("progress: %d %s", r.Status, r.Body)
	}
	issued := e.WaitEvent(events.TypeCertificateIssued, a.ID, wait)
	ip, _ := events.Decode[events.CertificateIssued](issued)
	if ip.CertificateID != id || ip.Issuer != "ica1" || ip.ApplicantID != "applicant-a" || ip.Recipient.Email != a.Applicant.Email {
		t.Fatalf("CertificateIssued %+v", ip)
	}
	// Not delivered yet: still listed for retrieval.
	if !listed(e.list(tok, "retrieval"), id) {
		t.Fatal("a certificate whose file was not downloaded left the retrieval list")
	}

	r := e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval/pkcs12", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/x-pkcs12" {
		t.Fatalf("download: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	// IS-8: PBES2 with AES-256-CBC and a SHA-256 MAC; no RC2/RC4/3DES PBE.
	for name, oid := range map[string][]byte{"PBES2": oidPBES2, "AES-256-CBC": oidAES256CBC, "SHA-256": oidSHA256} {
		if !bytes.Contains(r.Body, oid) {
			t.Errorf("PKCS#12 does not use %s", name)
		}
	}
	if bytes.Contains(r.Body, arcPKCS12PBE) {
		t.Error("PKCS#12 uses a legacy PKCS#12 PBE (RC2/RC4/3DES)")
	}
	key, cert, cas, err := pkcs12.DecodeChain(r.Body, password)
	if err != nil {
		t.Fatalf("decode PKCS#12 with the password: %v", err)
	}
	if _, _, _, err := pkcs12.DecodeChain(r.Body, "wrong password"); err == nil {
		t.Fatal("the PKCS#12 file opens with a wrong password")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != 2048 || !rk.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("key %T does not match the certificate or is not RSA 2048", key)
	}
	if len(cas) != 1 || !cas[0].Equal(e.caCert("ica1")) {
		t.Fatalf("PKCS#12 chain: %d certificates, want the intermediate", len(cas))
	}
	e.verify(cert, cas...)
	if hexSerial(cert) != ip.Serial {
		t.Fatalf("serial %s, event says %s", hexSerial(cert), ip.Serial)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Fatalf("RSA key usage %v", cert.KeyUsage)
	}

	// PC-14: once only.
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval/pkcs12", nil), http.StatusGone)
	if r := e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval", nil); !strings.Contains(string(r.Body), `"delivered"`) {
		t.Fatalf("progress after download: %s", r.Body)
	}
	if listed(e.list(tok, "retrieval"), id) {
		t.Fatal("a downloaded certificate is still listed for retrieval")
	}
	if n := e.count(`SELECT count(*) FROM pkcs12_files`); n != 0 {
		t.Fatalf("%d PKCS#12 files kept after the download", n)
	}
	got := e.WaitEvent(events.TypeCertificateRetrieved, a.ID, wait)
	rp, _ := events.Decode[events.CertificateRetrieved](got)
	if rp.Mode != "pkcs12" || rp.CertificateID != id || rp.Serial != ip.Serial {
		t.Fatalf("CertificateRetrieved %+v", rp)
	}
	// The chain endpoint serves the certificate and the intermediate.
	chain := e.chain(tok, id)
	if len(chain) != 2 || !chain[0].Equal(cert) || !chain[1].Equal(e.caCert("ica1")) {
		t.Fatal("chain is not certificate + intermediate")
	}

	// SE-1: the password is in no table and no event.
	if n := e.count(`SELECT count(*) FROM certificates c WHERE c::text LIKE '%' || $1 || '%'`, password); n != 0 {
		t.Fatal("the PKCS#12 password is stored")
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE position($1::bytea in payload) > 0`, []byte(password)); n != 0 {
		t.Fatal("the PKCS#12 password is in an event")
	}
}

// PC-14: a PKCS#12 file nobody downloads is deleted after 24 hours by the
// clock; the download then answers 410.
func TestUndownloadedPKCS12PurgedAfter24h_PC14(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-b")
	id := e.approve(application("applicant-b", events.KindNew, "", ""))
	e.retrieve(tok, id, map[string]any{"accept_terms": true, "pkcs12_password": "a long password"})
	// The file at rest is sealed: it is not a PKCS#12 file as it lies.
	var sealed []byte
	if err := e.pool().QueryRow(context.Background(), `SELECT sealed FROM pkcs12_files`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := pkcs12.DecodeChain(sealed, "a long password"); err == nil {
		t.Fatal("the stored PKCS#12 file is not sealed with the data key")
	}
	e.Advance(23 * time.Hour)
	if n := e.count(`SELECT count(*) FROM pkcs12_files`); n != 1 {
		t.Fatal("the file was deleted before 24 hours")
	}
	e.Advance(time.Hour + time.Second)
	if n := e.count(`SELECT count(*) FROM pkcs12_files`); n != 0 {
		t.Fatal("the file is still kept after 24 hours")
	}
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval/pkcs12", nil), http.StatusGone)
	r := e.as(tok, "GET", "/v1/certificates/"+id+"/retrieval", nil)
	if !strings.Contains(string(r.Body), `"failed"`) || !strings.Contains(string(r.Body), "download_expired") {
		t.Fatalf("progress after purge: %s", r.Body)
	}
	if listed(e.list(tok, "retrieval"), id) {
		t.Fatal("a purged certificate is still listed for retrieval")
	}
	// A lost file means a reissue: the certificate is still reissuable.
	if !listed(e.list(tok, "reissue"), id) {
		t.Fatal("a certificate whose file expired is not offered for reissue")
	}
}

// PC-13: pressing "agree" twice — one after the other, and concurrently —
// returns the same retrieval and issues one certificate.
func TestAgreeTwiceIssuesOnce_PC13(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-c")
	body := map[string]any{"accept_terms": true, "pkcs12_password": "password-123"}

	a1 := application("applicant-c", events.KindNew, "", "")
	id1 := e.approve(a1)
	first := e.retrieve(tok, id1, body)
	second := e.retrieve(tok, id1, map[string]any{"accept_terms": true, "pkcs12_password": "another password"})
	if first != second {
		t.Fatalf("second agree %+v differs from the first %+v", second, first)
	}
	// Another mode for the same certificate is a conflict, not a second issuance.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	problem(t, e.as(tok, "POST", "/v1/certificates/"+id1+"/retrieval", map[string]any{"accept_terms": true, "csr": csrPEM(t, key)}), http.StatusConflict)

	a2 := application("applicant-c", events.KindNew, "", "")
	id2 := e.approve(a2)
	const n = 4
	states := make([]retrievalState, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.as(tok, "POST", "/v1/certificates/"+id2+"/retrieval", body)
			if r.Status == http.StatusAccepted {
				r.JSON(t, &states[i])
			} else {
				t.Errorf("concurrent agree: %d %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	for _, st := range states[1:] {
		if st != states[0] || st.Status != "ready" {
			t.Fatalf("concurrent agrees answered differently: %+v", states)
		}
	}
	for _, id := range []string{id1, id2} {
		if c := e.count(`SELECT count(*) FROM serials WHERE certificate_id = $1`, id); c != 1 {
			t.Fatalf("certificate %s: %d serials drawn, want 1", id, c)
		}
	}
	e.WaitEvent(events.TypeCertificateIssued, a2.ID, wait)
	for _, a := range []events.Application{a1, a2} {
		if got := e.eventsFor(events.TypeCertificateIssued, a.ID); len(got) != 1 {
			t.Fatalf("application %s: %d CertificateIssued events, want 1", a.ID, len(got))
		}
	}
}

// PC-13 (CSR mode), IS-1, IS-3 profile: the certificate certifies the
// CSR's key, names the applicant from the application (not from the CSR)
// and carries the S/MIME sponsor-validated multipurpose profile.
func TestCSRRetrievalAndProfile_PC13_IS1(t *testing.T) {
	e := start(t, func(c *app.Config) { c.PublicURL = "https://pki.certlife.example/" })
	tok := e.session("applicant-d")
	a := application("applicant-d", events.KindNew, "", "")
	id := e.approve(a)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := e.issueCSR(tok, id, key)
	e.verify(cert, e.caCert("ica1"))
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("the certificate does not certify the CSR's key")
	}
	got := e.WaitEvent(events.TypeCertificateRetrieved, a.ID, wait)
	if rp, _ := events.Decode[events.CertificateRetrieved](got); rp.Mode != "csr" {
		t.Fatalf("CertificateRetrieved mode %q", rp.Mode)
	}
	if listed(e.list(tok, "retrieval"), id) {
		t.Fatal("a delivered certificate is still listed for retrieval")
	}
	// Profile. PUBLIC_URL is https, but the S/MIME BR want the CRL and
	// caIssuers URLs over plain http.
	s := cert.Subject
	if s.CommonName != "Veri Taro" || len(s.Organization) != 1 || s.Organization[0] != "VeriSign Japan K.K." ||
		len(s.Country) != 1 || s.Country[0] != "JP" || len(s.OrganizationalUnit) != 0 {
		t.Fatalf("subject %s", s)
	}
	names := map[string]string{}
	for _, atv := range s.Names {
		names[atv.Type.String()] = atv.Value.(string)
	}
	if names["2.5.4.4"] != "Veri" || names["2.5.4.42"] != "Taro" {
		t.Fatalf("surname/givenName %v", names)
	}
	if len(cert.EmailAddresses) != 1 || cert.EmailAddresses[0] != a.Applicant.Email || len(cert.DNSNames) != 0 {
		t.Fatalf("SAN %v %v", cert.EmailAddresses, cert.DNSNames)
	}
	if len(cert.ExtKeyUsage) != 2 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageEmailProtection || cert.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("EKU %v", cert.ExtKeyUsage)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.IsCA {
		t.Fatalf("key usage %v / CA %v", cert.KeyUsage, cert.IsCA)
	}
	if len(cert.Policies) != 1 || cert.Policies[0].String() != "2.23.140.1.5.3.2" {
		t.Fatalf("policies %v", cert.Policies)
	}
	if len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != "http://pki.certlife.example/crl/ica1.crl" {
		t.Fatalf("CRL DP %v", cert.CRLDistributionPoints)
	}
	if len(cert.IssuingCertificateURL) != 1 || cert.IssuingCertificateURL[0] != "http://pki.certlife.example/ca/ica1.der" {
		t.Fatalf("AIA %v", cert.IssuingCertificateURL)
	}
	if !bytes.Equal(cert.AuthorityKeyId, e.caCert("ica1").SubjectKeyId) {
		t.Fatal("AKI does not name the intermediate")
	}
	if _, err := asn1.Marshal(cert.SerialNumber); err != nil || cert.SerialNumber.Sign() <= 0 {
		t.Fatal("bad serial")
	}
	// The CA certificates are served; an unknown issuer is a 404 problem.
	root := e.caCert("root")
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		t.Fatal("/ca/root.pem is not a self-signed CA")
	}
	for _, bad := range []string{"/ca/nope.pem", "/ca/nope.der", "/ca/root.crt", "/ca/root", "/ca/ica1.der.pem", "/ca/data.pem"} {
		problem(t, e.Do("GET", bad, nil), http.StatusNotFound)
	}
}

// IS-3 end to end: a certificate the linter rejects is never signed; the
// retrieval fails and nothing is issued, though the serial drawn for it
// stays on record (IS-2: recorded before signing).
func TestLintErrorStopsIssuance_IS3_IS2(t *testing.T) {
	e := start(t, nil)
	a := application("applicant-e", events.KindNew, "", "")
	a.Applicant.Email = "not a mailbox"
	// The session validated that "mailbox" (PC-16), so that the linter is what refuses it.
	tok := e.sign(session.Claims{Subject: "applicant-e", CodeVerified: true, ExpiresAt: e.Clock.Now().Add(time.Hour).Unix(),
		MailboxValidatedAt: e.Clock.Now().Unix(), MailboxEmail: a.Applicant.Email})
	id := e.approve(a)
	st := e.retrieve(tok, id, map[string]any{"accept_terms": true, "pkcs12_password": "password-123"})
	if st.Status != "failed" || !strings.Contains(st.Failure, "lint") {
		t.Fatalf("retrieval of a bad certificate: %+v", st)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE der IS NOT NULL OR serial IS NOT NULL`); n != 0 {
		t.Fatal("a certificate that failed its lint was stored as issued")
	}
	if n := e.count(`SELECT count(*) FROM serials WHERE certificate_id = $1`, id); n != 1 {
		t.Fatalf("%d serials recorded, want the one drawn before signing", n)
	}
	if n := e.count(`SELECT count(*) FROM pkcs12_files`); n != 0 {
		t.Fatal("a PKCS#12 file was kept for a certificate that was not issued")
	}
	problem(t, e.as(tok, "GET", "/v1/certificates/"+id+"/chain", nil), http.StatusConflict)
	// Asking again does not try again.
	if again := e.retrieve(tok, id, map[string]any{"accept_terms": true, "pkcs12_password": "password-123"}); again.Status != "failed" {
		t.Fatalf("second agree: %+v", again)
	}
	time.Sleep(200 * time.Millisecond) // let the relay publish anything it would have
	if got := e.eventsFor(events.TypeCertificateIssued, a.ID); len(got) != 0 {
		t.Fatal("CertificateIssued emitted for a certificate stopped by lint")
	}
}
