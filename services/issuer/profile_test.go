package issuer_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/http"
	"slices"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
)

// Extension OIDs of RFC 5280 and the subject attribute OIDs of PC-17.
var (
	extKeyUsage    = "2.5.29.15"
	extBasic       = "2.5.29.19"
	extSAN         = "2.5.29.17"
	extEKU         = "2.5.29.37"
	extPolicies    = "2.5.29.32"
	extCRLDP       = "2.5.29.31"
	extAIA         = "1.3.6.1.5.5.7.1.1"
	extSKI         = "2.5.29.14"
	extAKI         = "2.5.29.35"
	leafExtensions = []string{extKeyUsage, extBasic, extSAN, extEKU, extPolicies, extCRLDP, extAIA, extSKI, extAKI}
)

// subjectAttrs lists a certificate's subject as (OID, value), in order,
// one attribute per RDN.
func subjectAttrs(t *testing.T, c *x509.Certificate) [][2]string {
	t.Helper()
	// Read the encoded order (pkix.Name would re-order).
	var seq []asn1.RawValue
	if _, err := asn1.Unmarshal(c.RawSubject, &seq); err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, raw := range seq {
		var set []struct {
			Type  asn1.ObjectIdentifier
			Value asn1.RawValue
		}
		if _, err := asn1.UnmarshalWithParams(raw.FullBytes, &set, "set"); err != nil || len(set) != 1 {
			t.Fatalf("RDN: %v (%d attributes)", err, len(set))
		}
		out = append(out, [2]string{set[0].Type.String(), string(set[0].Value.Bytes)})
	}
	return out
}

// PC-17 and IS-1, every field, on what the issuer hands out: the leaf of
// a PKCS#12 retrieval (an RSA key) and of a CSR retrieval (an ECDSA key),
// and the intermediate fetched from the leaf's caIssuers URL.
//
// Leaf (S/MIME BR v1.0.16 sponsor-validated multipurpose): subject C, O,
// organizationIdentifier, surname, givenName, CN; SAN one rfc822Name and
// nothing else; EKU emailProtection + clientAuth; KU digitalSignature
// (+ keyEncipherment for RSA), critical; policy 2.23.140.1.5.3.2 alone;
// CRL DP and AIA caIssuers over http, caIssuers serving DER; no OCSP; not
// a CA; SKI and AKI; validity per the term. Intermediate: policies, CRL
// DP, AIA, EKU emailProtection + clientAuth, keyCertSign + cRLSign,
// path length 0.
func TestLeafAndIntermediateProfile_PC17_IS1(t *testing.T) {
	e, public := startPublic(t, func(c *app.Config) { c.TermClient = 400 * day })
	tok := e.session("applicant-pf")
	a := application("applicant-pf", events.KindNew, "", "")
	id := e.approve(a)
	const pw = "profile-test-pass"
	p12 := e.downloadPKCS12(tok, id, "", pw)
	_, rsaLeaf, _, err := pkcs12.DecodeChain(p12, pw)
	if err != nil {
		t.Fatal(err)
	}
	id2 := e.approve(application("applicant-pf", events.KindNew, "", ""))
	ecLeaf := e.issueCSR(tok, id2, newKey(t))

	ica := e.caCert("ica1")
	for name, leaf := range map[string]*x509.Certificate{"rsa": rsaLeaf, "ecdsa": ecLeaf} {
		t.Run(name, func(t *testing.T) {
			want := [][2]string{{"2.5.4.6", "JP"}, {"2.5.4.10", "VeriSign Japan K.K."}, {"2.5.4.97", "NTRJP-4010001012345"},
				{"2.5.4.4", "Veri"}, {"2.5.4.42", "Taro"}, {"2.5.4.3", "Veri Taro"}}
			if got := subjectAttrs(t, leaf); !slices.Equal(got, want) {
				t.Fatalf("subject %v, want %v", got, want)
			}
			if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != "applicant-pf@example.co.jp" ||
				len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.URIs) != 0 {
				t.Fatalf("SAN %v %v %v %v", leaf.EmailAddresses, leaf.DNSNames, leaf.IPAddresses, leaf.URIs)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth}) ||
				len(leaf.UnknownExtKeyUsage) != 0 {
				t.Fatalf("EKU %v %v", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage)
			}
			wantKU := x509.KeyUsageDigitalSignature
			if _, ok := leaf.PublicKey.(*rsa.PublicKey); ok {
				wantKU |= x509.KeyUsageKeyEncipherment
			}
			if leaf.KeyUsage != wantKU {
				t.Fatalf("key usage %v, want %v", leaf.KeyUsage, wantKU)
			}
			if len(leaf.Policies) != 1 || leaf.Policies[0].String() != "2.23.140.1.5.3.2" {
				t.Fatalf("policies %v", leaf.Policies)
			}
			if leaf.IsCA || !leaf.BasicConstraintsValid {
				t.Fatal("the leaf is a CA or has no basicConstraints")
			}
			if !slices.Equal(leaf.CRLDistributionPoints, []string{public + "/crl/ica1.crl"}) {
				t.Fatalf("CRL DP %v", leaf.CRLDistributionPoints)
			}
			if !slices.Equal(leaf.IssuingCertificateURL, []string{public + "/ca/ica1.der"}) || len(leaf.OCSPServer) != 0 {
				t.Fatalf("AIA %v / OCSP %v", leaf.IssuingCertificateURL, leaf.OCSPServer)
			}
			if !bytes.Equal(leaf.AuthorityKeyId, ica.SubjectKeyId) || len(leaf.SubjectKeyId) != 20 {
				t.Fatal("AKI/SKI")
			}
			var oids []string
			for _, ext := range leaf.Extensions {
				oid := ext.Id.String()
				oids = append(oids, oid)
				// KU critical (SBR 7.1.2.3 e), basicConstraints too (RFC 5280
				// allows it; Go marks it so); the rest non-critical.
				if ext.Critical != (oid == extKeyUsage || oid == extBasic) {
					t.Errorf("extension %s critical=%v", oid, ext.Critical)
				}
			}
			slices.Sort(oids)
			wantOIDs := slices.Clone(leafExtensions)
			slices.Sort(wantOIDs)
			if !slices.Equal(oids, wantOIDs) {
				t.Fatalf("extensions %v, want exactly %v", oids, wantOIDs)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 400*day || got >= 825*day {
				t.Fatalf("validity %s", got)
			}
			// The URLs answer: the CRL is the intermediate's, caIssuers is
			// the intermediate in DER (RFC 5280 4.2.2.1).
			crl, err := x509.ParseRevocationList(fetch(t, leaf.CRLDistributionPoints[0], "application/pkix-crl"))
			if err != nil || crl.CheckSignatureFrom(ica) != nil {
				t.Fatalf("CRL at the distribution point: %v", err)
			}
			got, err := x509.ParseCertificate(fetch(t, leaf.IssuingCertificateURL[0], "application/pkix-cert"))
			if err != nil || !got.Equal(ica) || leaf.CheckSignatureFrom(got) != nil {
				t.Fatalf("caIssuers: %v", err)
			}
			e.verify(leaf, ica)
		})
	}

	// The intermediate (IS-1, SBR 7.1.2.2).
	root := e.caCert("root")
	if !ica.IsCA || ica.MaxPathLen != 0 || !ica.MaxPathLenZero || ica.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("intermediate: CA %v pathlen %d/%v KU %v", ica.IsCA, ica.MaxPathLen, ica.MaxPathLenZero, ica.KeyUsage)
	}
	if !slices.Equal(ica.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("intermediate EKU %v", ica.ExtKeyUsage)
	}
	if len(ica.Policies) != 1 || ica.Policies[0].String() != "2.23.140.1.5.3.2" {
		t.Fatalf("intermediate policies %v", ica.Policies)
	}
	if !slices.Equal(ica.CRLDistributionPoints, []string{public + "/crl/root.crl"}) ||
		!slices.Equal(ica.IssuingCertificateURL, []string{public + "/ca/root.der"}) {
		t.Fatalf("intermediate CDP %v AIA %v", ica.CRLDistributionPoints, ica.IssuingCertificateURL)
	}
	arl, err := x509.ParseRevocationList(fetch(t, ica.CRLDistributionPoints[0], "application/pkix-crl"))
	if err != nil || arl.CheckSignatureFrom(root) != nil {
		t.Fatalf("root CRL at the intermediate's distribution point: %v", err)
	}
	if got, err := x509.ParseCertificate(fetch(t, ica.IssuingCertificateURL[0], "application/pkix-cert")); err != nil || !got.Equal(root) {
		t.Fatalf("the intermediate's caIssuers is not the root: %v", err)
	}
}

// PC-17: an application approved without an organization identifier
// (made before intake collected it) still gets its certificate, without
// subject:organizationIdentifier; one that is not in the SBR form makes
// no certificate (the retrieval fails, nothing is signed).
func TestOrganizationIdentifierOptionalButWellFormed_PC17(t *testing.T) {
	e := start(t, nil)
	tok := e.session("applicant-oi")
	a := application("applicant-oi", events.KindNew, "", "")
	a.Organization.Identifier = ""
	leaf := e.issueCSR(tok, e.approve(a), newKey(t))
	for _, atv := range leaf.Subject.Names {
		if atv.Type.String() == "2.5.4.97" {
			t.Fatal("organizationIdentifier present without one in the application")
		}
	}
	b := application("applicant-oi", events.KindNew, "", "")
	b.Organization.Identifier = "4010001012345" // no scheme
	id := e.approve(b)
	st := e.retrieve(tok, id, map[string]any{"accept_terms": true, "csr": csrPEM(t, newKey(t))})
	if st.Status != "failed" || !bytes.Contains([]byte(st.Failure), []byte("organizationIdentifier")) {
		t.Fatalf("retrieval with a malformed identifier: %+v", st)
	}
	if n := e.count(`SELECT count(*) FROM certificates WHERE id = $1 AND der IS NOT NULL`, id); n != 0 {
		t.Fatal("a certificate was signed")
	}
}

// IS-11, IS-10: one issuing CA per purpose. A client application gets an
// S/MIME certificate from ica1, a server application an OV TLS
// certificate from tls1; every certificate the issuer signed carries its
// purpose's EKU and policy and chains through its purpose's CA alone, and
// each CA publishes its own CRL.
func TestEachCAIssuesOnlyItsPurpose_IS11_IS10(t *testing.T) {
	_, entries := startLogs(t, 3)
	e := startTLS(t, entries, nil, nil)
	tok := e.session("applicant-sv")
	e.issueCSR(tok, e.approve(application("applicant-sv", events.KindNew, "", "")), newKey(t))
	server := serverApp("customer-sv", "www.certlife-test.com", nil, csrFor(t, ecKey(t), pkix.Name{CommonName: "www.certlife-test.com"}),
		e.Clock.Now().AddDate(1, 0, 0))
	e.approveServer(server)
	e.waitIssued(server.ID)
	ica1, tls1 := e.caCert("ica1"), e.caCert("tls1")

	rows, err := e.pool().Query(t.Context(), `SELECT product, issuer, der FROM certificates WHERE der IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := map[string]int{}
	for rows.Next() {
		var product, issuer string
		var der []byte
		if err := rows.Scan(&product, &issuer, &der); err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		switch product {
		case events.ProductClient:
			if issuer != "ica1" || c.CheckSignatureFrom(ica1) != nil || c.CheckSignatureFrom(tls1) == nil ||
				!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) ||
				len(c.DNSNames) != 0 || len(c.Policies) != 1 || c.Policies[0].String() != "2.23.140.1.5.3.2" {
				t.Fatalf("client certificate by %s: EKU %v DNS %v policies %v", issuer, c.ExtKeyUsage, c.DNSNames, c.Policies)
			}
		case events.ProductServer:
			if issuer != "tls1" || c.CheckSignatureFrom(tls1) != nil || c.CheckSignatureFrom(ica1) == nil ||
				!slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || len(c.EmailAddresses) != 0 ||
				len(c.Policies) != 1 || c.Policies[0].String() != "2.23.140.1.2.2" {
				t.Fatalf("server certificate by %s: EKU %v e-mail %v policies %v", issuer, c.ExtKeyUsage, c.EmailAddresses, c.Policies)
			}
		default:
			t.Fatalf("product %q", product)
		}
		n[product]++
	}
	if n[events.ProductClient] != 1 || n[events.ProductServer] != 1 {
		t.Fatalf("signed %v, want one of each", n)
	}
	for name, ca := range map[string]*x509.Certificate{"ica1": ica1, "tls1": tls1} {
		r := e.Do("GET", "/crl/"+name+".crl", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("/crl/%s.crl: %d", name, r.Status)
		}
		crl, err := x509.ParseRevocationList(r.Body)
		if err != nil || crl.CheckSignatureFrom(ca) != nil {
			t.Fatalf("/crl/%s.crl is not %s's: %v", name, name, err)
		}
	}
}
