package issuer_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"slices"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/certlife/platform/pkg/events"
)

// The profile of an OV TLS certificate, on what the issuer delivers
// (IS-9, IS-10, IS-11, SV-10, IS-2, IS-3):
//
//   - issued by the TLS CA tls1 (IS-11) from an approval, with no step
//     of the customer's, and announced by CertificateIssued carrying the
//     PEM chain and the technical contact (SV-10);
//   - subject C, ST, L, O, CN in that order — the registry's English
//     record and the common name — and no OU; SAN = common name then the
//     additional domains; EKU serverAuth alone (IS-10); KU
//     digitalSignature (ECDSA key); the OV policy alone; CRL DP and AIA
//     caIssuers on tls1's http URLs; no SKI; AKI = tls1's SKI;
//   - the chain served to the customer's session (no certificate code) at
//     /v1/certificates/{id}/chain as application/pem-certificate-chain;
//   - 3 SCTs (a lifetime over 180 days), from 3 logs, each verified with
//     ctutil.VerifySCT against its log's key as embedded SCTs; the final
//     TBS equals the precertificate's minus the poison plus the SCT list;
//   - the serial (≥ 64 bits, positive) committed to serials before the
//     precertificate, the same in both;
//   - a Go crypto/tls handshake against a loopback server presenting it
//     succeeds with the dev root as the only trusted root;
//   - the audit log has the issuance (OP-4).
func TestServerCertificateIssuedWithSCTs_IS9_IS10_IS11_SV10(t *testing.T) {
	logs, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	key := ecKey(t)
	csr := csrFor(t, key, pkix.Name{CommonName: "www.certlife-test.com", Organization: []string{"Certlife Test K.K."}, Country: []string{"JP"}})
	a := serverApp("customer-1", "www.certlife-test.com", []string{"certlife-test.com", "shop.certlife-test.com"}, csr,
		e.Clock.Now().AddDate(1, 0, 0))
	e.approveServer(a)
	ev := e.waitIssued(a.ID)

	if ev.Product != events.ProductServer || ev.Issuer != "tls1" || ev.CustomerID != "customer-1" || ev.OrderID != a.Server.OrderID ||
		ev.Recipient.Email != "tech@example.co.jp" || ev.Recipient.Language != "ja" || ev.TechnicalContact == nil ||
		ev.TechnicalContact.Name != "Gijutsu Hanako" || !slices.Equal(ev.DNSNames, []string{"www.certlife-test.com", "certlife-test.com", "shop.certlife-test.com"}) {
		t.Fatalf("CertificateIssued: %+v", ev)
	}
	fromEvent := parsePEMCerts(t, []byte(ev.PEMChain))
	tls1, root := e.caCert("tls1"), e.caCert("root")
	if len(fromEvent) != 2 || !fromEvent[1].Equal(tls1) {
		t.Fatalf("the event's chain has %d certificates, or not tls1 after the leaf", len(fromEvent))
	}

	// The customer's session, opened without a certificate code.
	tok := e.token("customer-1", false, e.Clock.Now().Add(time.Hour))
	r := e.as(tok, "GET", "/v1/certificates/"+ev.CertificateID+"/chain", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("chain: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if !bytes.Equal(r.Body, []byte(ev.PEMChain)) {
		t.Fatal("the chain served differs from the chain delivered")
	}
	chain := parsePEMCerts(t, r.Body)
	leaf := chain[0]

	// Subject: C, ST, L, O, CN; no OU.
	want := [][2]string{{"2.5.4.6", "JP"}, {"2.5.4.8", "Tokyo"}, {"2.5.4.7", "Chuo-ku"}, {"2.5.4.10", "Certlife Test K.K."},
		{"2.5.4.3", "www.certlife-test.com"}}
	if got := subjectAttrs(t, leaf); !slices.Equal(got, want) {
		t.Fatalf("subject %v, want %v", got, want)
	}
	if !slices.Equal(leaf.DNSNames, []string{"www.certlife-test.com", "certlife-test.com", "shop.certlife-test.com"}) ||
		len(leaf.EmailAddresses)+len(leaf.IPAddresses)+len(leaf.URIs) != 0 {
		t.Fatalf("SAN %v %v %v %v", leaf.DNSNames, leaf.EmailAddresses, leaf.IPAddresses, leaf.URIs)
	}
	// IS-10: serverAuth alone.
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Fatalf("EKU %v %v, want serverAuth only", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Fatalf("KU %v, CA %v", leaf.KeyUsage, leaf.IsCA)
	}
	if len(leaf.Policies) != 1 || leaf.Policies[0].String() != "2.23.140.1.2.2" {
		t.Fatalf("policies %v, want the OV policy alone", leaf.Policies)
	}
	public := e.Config.PublicURL
	if public == "" {
		public = "http://" + e.Config.HTTPAddr
	}
	if !slices.Equal(leaf.CRLDistributionPoints, []string{public + "/crl/tls1.crl"}) ||
		!slices.Equal(leaf.IssuingCertificateURL, []string{public + "/ca/tls1.der"}) || len(leaf.OCSPServer) != 0 {
		t.Fatalf("CRL DP %v, caIssuers %v, OCSP %v", leaf.CRLDistributionPoints, leaf.IssuingCertificateURL, leaf.OCSPServer)
	}
	if len(leaf.SubjectKeyId) != 0 || !bytes.Equal(leaf.AuthorityKeyId, tls1.SubjectKeyId) {
		t.Fatal("SKI present, or AKI is not tls1's key")
	}
	if leaf.CheckSignatureFrom(tls1) != nil || leaf.CheckSignatureFrom(e.caCert("ica1")) == nil {
		t.Fatal("the server certificate is not signed by tls1 alone (IS-11)")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(root), Intermediates: pool(tls1), DNSName: "shop.certlife-test.com",
		CurrentTime: e.Clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("does not verify for shop.certlife-test.com to the dev root: %v", err)
	}
	// IS-4 at today's date: 199 days (200 − 1), counted inclusively.
	if got := leaf.NotAfter.Sub(leaf.NotBefore) + time.Second; got != 199*24*time.Hour {
		t.Fatalf("validity %s, want 199 days", got)
	}

	// IS-9: 3 SCTs (lifetime > 180 days), each from its own log, verified.
	by := verifyEmbeddedSCTs(t, leaf, tls1, logs)
	if len(by) != 3 || by[0] == by[1] || by[1] == by[2] || by[0] == by[2] {
		t.Fatalf("%d embedded SCTs from %v", len(by), by)
	}
	// The precertificate: poisoned, same serial, same TBS but for the
	// poison and the SCT list, signed by tls1 itself.
	var preDER []byte
	if err := e.pool().QueryRow(t.Context(), `SELECT der FROM precertificates WHERE serial = $1`, hexSerial(leaf)).Scan(&preDER); err != nil {
		t.Fatalf("no precertificate for serial %s: %v", hexSerial(leaf), err)
	}
	pre, err := ctx509.ParseCertificate(preDER)
	if err != nil && ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	final, err := ctx509.ParseCertificate(leaf.Raw)
	if err != nil && ctx509.IsFatal(err) {
		t.Fatal(err)
	}
	if !pre.IsPrecertificate() || final.IsPrecertificate() || pre.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatal("precertificate not poisoned, final poisoned, or serials differ")
	}
	a1, _ := ctx509.RemoveCTPoison(pre.RawTBSCertificate)
	b1, _ := ctx509.RemoveSCTList(final.RawTBSCertificate)
	if len(a1) == 0 || !bytes.Equal(a1, b1) {
		t.Fatal("the final TBS is not the precertificate's minus the poison plus the SCT list")
	}
	if pc, err := x509.ParseCertificate(preDER); err != nil || pc.CheckSignatureFrom(tls1) != nil {
		t.Fatalf("the precertificate is not signed by tls1: %v", err)
	}
	// IS-2: the serial, positive and ≥ 64 bits, was committed first.
	if s := leaf.SerialNumber; s.Sign() <= 0 || s.BitLen() < 64 {
		t.Fatalf("serial %x", s)
	}
	if n := e.count(`SELECT count(*) FROM serials s JOIN precertificates p USING (serial)
		WHERE s.serial = $1 AND s.recorded_at <= p.created_at`, hexSerial(leaf)); n != 1 {
		t.Fatal("the serial was not recorded before the precertificate")
	}

	// A browser's handshake, the dev root as the only trusted root.
	if err := handshake(t, root, chain, key, "www.certlife-test.com", e.Clock.Now()); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	if err := handshake(t, root, chain, key, "other.certlife-test.com", e.Clock.Now()); err == nil {
		t.Fatal("the handshake succeeded for a name the certificate does not cover")
	}

	// OP-4.
	if n := e.count(`SELECT count(*) FROM audit_log WHERE action = 'certificate.issued' AND subject = $1
		AND details->>'serial' = $2`, a.ID, hexSerial(leaf)); n != 1 {
		t.Fatalf("%d audit entries for the issuance", n)
	}
	// tls1 publishes its own CRL, signed by tls1.
	rc := e.Do("GET", "/crl/tls1.crl", nil)
	if rc.Status != http.StatusOK {
		t.Fatalf("/crl/tls1.crl: %d", rc.Status)
	}
	if crl, err := x509.ParseRevocationList(rc.Body); err != nil || crl.CheckSignatureFrom(tls1) != nil {
		t.Fatalf("tls1 CRL: %v", err)
	}
	if rd := e.Do("GET", "/ca/tls1.der", nil); rd.Status != http.StatusOK || !bytes.Equal(rd.Body, tls1.Raw) ||
		rd.Header.Get("Content-Type") != "application/pkix-cert" {
		t.Fatalf("/ca/tls1.der: %d %s", rd.Status, rd.Header.Get("Content-Type"))
	}
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
