package ca_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
)

const base = "http://127.0.0.1:8080"

// accepted is the repository's one list (services/issuer/lints-accepted.txt).
func accepted(t *testing.T) *ca.Accepted {
	t.Helper()
	raw, err := os.ReadFile("../../lints-accepted.txt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.ParseAccepted(raw)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func options(t *testing.T, dir, alg string, purposes ...ca.Purpose) ca.Options {
	if len(purposes) == 0 {
		purposes = []ca.Purpose{ca.PurposeSMIME}
	}
	return ca.Options{Dir: dir, Now: time.Now(), Dev: true, KeyAlgorithm: alg, Purposes: purposes,
		BaseURL: base, Accepted: accepted(t)}
}

func openDev(t *testing.T, alg string, purposes ...ca.Purpose) (*ca.Hierarchy, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	h, err := ca.Open(options(t, dir, alg, purposes...))
	if err != nil {
		t.Fatal(err)
	}
	return h, dir
}

func smimeCA(t *testing.T, h *ca.Hierarchy) *ca.Issuer {
	t.Helper()
	iss, err := h.ForPurpose(ca.PurposeSMIME)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

var subject = profile.Subject{NameEn: "Veri Taro", OrganizationEn: "VeriSign Japan K.K.",
	OrganizationIdentifier: "NTRJP-4010001012345", Email: "taro@example.co.jp"}

func template(t *testing.T, iss *ca.Issuer, s profile.Subject, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	serial, err := ca.NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	nb, na, err := profile.Validity("new", time.Now(), time.Time{}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := profile.Template(s, serial, nb, na, pub, profile.URLs{CRL: iss.CRLURL(), CAIssuers: iss.CertURL()})
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func sign(t *testing.T, iss *ca.Issuer, s profile.Subject, pub crypto.PublicKey) ([]byte, error) {
	t.Helper()
	return iss.Sign(template(t, iss, s, pub), pub)
}

// checkIntermediate checks an issuing CA certificate against SBR 7.1.2.2
// and IS-1: certificatePolicies, CRL DP and AIA caIssuers on the root's
// http URLs, EKU of its purpose, keyCertSign + cRLSign, path length 0.
func checkIntermediate(t *testing.T, root, c *x509.Certificate, eku []x509.ExtKeyUsage, policy string) {
	t.Helper()
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("%s: not a pathlen-0 CA", c.Subject)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("%s: key usage %v, want keyCertSign|cRLSign", c.Subject, c.KeyUsage)
	}
	if !slices.Equal(c.ExtKeyUsage, eku) || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("%s: EKU %v, want %v", c.Subject, c.ExtKeyUsage, eku)
	}
	if len(c.Policies) != 1 || c.Policies[0].String() != policy {
		t.Errorf("%s: policies %v, want %s", c.Subject, c.Policies, policy)
	}
	if !slices.Equal(c.CRLDistributionPoints, []string{base + "/crl/root.crl"}) {
		t.Errorf("%s: CRL DP %v", c.Subject, c.CRLDistributionPoints)
	}
	if !slices.Equal(c.IssuingCertificateURL, []string{base + "/ca/root.der"}) || len(c.OCSPServer) != 0 {
		t.Errorf("%s: AIA %v %v", c.Subject, c.IssuingCertificateURL, c.OCSPServer)
	}
	if !bytes.Equal(c.AuthorityKeyId, root.SubjectKeyId) || len(c.SubjectKeyId) == 0 {
		t.Errorf("%s: AKI/SKI", c.Subject)
	}
	if err := c.CheckSignatureFrom(root); err != nil {
		t.Errorf("%s: not signed by the root: %v", c.Subject, err)
	}
	// Extensions: KU and basicConstraints critical (SBR 7.1.2.2 d, e),
	// the rest not (a, b, c, g, h, i).
	for _, ext := range c.Extensions {
		oid := ext.Id.String()
		wantCritical := oid == "2.5.29.15" || oid == "2.5.29.19"
		if ext.Critical != wantCritical {
			t.Errorf("%s: extension %s critical=%v", c.Subject, oid, ext.Critical)
		}
	}
}

// IS-1: the dev hierarchy in both key algorithms — ECDSA (P-384 root,
// P-256 issuing CA) and RSA-4096 — with the SBR 7.1.2.1 root and 7.1.2.2
// intermediate profiles; both are zlint-clean (no result above notice,
// not even the dev-scope ones), the chain verifies, keys are 0600, a
// restart loads the same hierarchy, and the root's ARL is published.
func TestDevHierarchyProfiles_IS1(t *testing.T) {
	for _, alg := range []string{ca.KeyECDSA, ca.KeyRSA} {
		t.Run(alg, func(t *testing.T) {
			h, dir := openDev(t, alg)
			iss := smimeCA(t, h)
			if iss.Slug != "ica1" || iss.Purpose != ca.PurposeSMIME {
				t.Fatalf("S/MIME CA %s/%s, want ica1/smime", iss.Slug, iss.Purpose)
			}
			switch alg {
			case ca.KeyECDSA:
				if k, ok := h.Root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
					t.Fatalf("root key %T, want ECDSA P-384", h.Root.PublicKey)
				}
				if k, ok := iss.Cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
					t.Fatalf("issuing key %T, want ECDSA P-256", iss.Cert.PublicKey)
				}
				if iss.Cert.SignatureAlgorithm != x509.ECDSAWithSHA384 {
					t.Fatalf("intermediate signed with %v", iss.Cert.SignatureAlgorithm)
				}
			case ca.KeyRSA:
				for _, c := range []*x509.Certificate{h.Root, iss.Cert} {
					if k, ok := c.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
						t.Fatalf("%s key %T, want RSA-4096", c.Subject, c.PublicKey)
					}
				}
				if iss.Cert.SignatureAlgorithm != x509.SHA256WithRSA {
					t.Fatalf("intermediate signed with %v", iss.Cert.SignatureAlgorithm)
				}
			}
			// Root (SBR 7.1.2.1).
			r := h.Root
			if !r.IsCA || r.MaxPathLen > 0 || r.MaxPathLenZero || r.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign ||
				len(r.ExtKeyUsage) != 0 || len(r.Policies) != 0 || len(r.SubjectKeyId) == 0 || r.CheckSignatureFrom(r) != nil {
				t.Fatalf("root profile: CA %v pathlen %d/%v KU %v EKU %v policies %v", r.IsCA, r.MaxPathLen, r.MaxPathLenZero,
					r.KeyUsage, r.ExtKeyUsage, r.Policies)
			}
			checkIntermediate(t, r, iss.Cert, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
				"2.23.140.1.5.3.2")
			for _, c := range []*x509.Certificate{h.Root, iss.Cert} {
				f, err := accepted(t).Findings(c.Raw, false)
				if err != nil || len(f) != 0 {
					t.Fatalf("zlint on %s: %v %v", c.Subject, f, err)
				}
			}
			zlintCommand(t, h.Root.Raw, iss.Cert.Raw)
			roots := x509.NewCertPool()
			roots.AddCert(h.Root)
			if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
				t.Fatalf("intermediate does not chain to the root: %v", err)
			}
			for _, f := range []string{"root.key", "ica1.key", "data.key"} {
				info, err := os.Stat(filepath.Join(dir, f))
				if err != nil || info.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v %v, want mode 0600", f, info, err)
				}
			}
			arlDER, err := h.RootCRL()
			if err != nil {
				t.Fatal(err)
			}
			arl, err := x509.ParseRevocationList(arlDER)
			if err != nil || arl.CheckSignatureFrom(h.Root) != nil || len(arl.RevokedCertificateEntries) != 0 {
				t.Fatalf("root CRL: %v", err)
			}
			if d := arl.NextUpdate.Sub(arl.ThisUpdate); d <= 0 || d > 366*24*time.Hour {
				t.Fatalf("root CRL validity %s, want at most 12 months", d)
			}
			// A restart loads the same hierarchy rather than making a new one.
			h2, err := ca.Open(options(t, dir, alg))
			if err != nil {
				t.Fatal(err)
			}
			if !smimeCA(t, h2).Cert.Equal(iss.Cert) || !h2.Root.Equal(h.Root) {
				t.Fatal("reopening the CA directory made a new hierarchy")
			}
			if again, _ := h2.RootCRL(); !bytes.Equal(again, arlDER) {
				t.Fatal("a fresh ARL was replaced at restart")
			}
		})
	}
}

// IS-1: a dev root signs a new ARL at start when the current one nears
// its nextUpdate, with a higher CRLNumber.
func TestDevARLRefreshed_IS1(t *testing.T) {
	h, dir := openDev(t, ca.KeyECDSA)
	der, _ := h.RootCRL()
	first, _ := x509.ParseRevocationList(der)
	opts := options(t, dir, ca.KeyECDSA)
	opts.Now = first.NextUpdate.Add(-10 * 24 * time.Hour)
	h2, err := ca.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	der2, _ := h2.RootCRL()
	second, err := x509.ParseRevocationList(der2)
	if err != nil || second.Number.Cmp(first.Number) <= 0 || !second.NextUpdate.After(first.NextUpdate) {
		t.Fatalf("ARL after refresh: %v (number %v after %v)", err, second.Number, first.Number)
	}
}

// SE-10: outside dev mode nothing is created; the start says what is missing.
func TestNoCAOutsideDevMode_SE10(t *testing.T) {
	opts := options(t, filepath.Join(t.TempDir(), "ca"), ca.KeyECDSA)
	opts.Dev = false
	_, err := ca.Open(opts)
	if !errors.Is(err, ca.ErrNoCA) || !strings.Contains(err.Error(), "root.pem") {
		t.Fatalf("open of an empty CA directory outside dev mode: %v", err)
	}
	if entries, _ := os.ReadDir(opts.Dir); len(entries) != 0 {
		t.Fatalf("files created outside dev mode: %v", entries)
	}
}

// IS-1 / SE-2: a key file readable by group or others stops the start.
func TestGroupReadableKeyIsRefused_IS1_SE2(t *testing.T) {
	for _, f := range []string{"ica1.key", "data.key", "root.key"} {
		t.Run(f, func(t *testing.T) {
			_, dir := openDev(t, ca.KeyECDSA)
			if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ca.Open(options(t, dir, ca.KeyECDSA))
			if !errors.Is(err, ca.ErrKeyPermissions) {
				t.Fatalf("open with a 0644 %s: %v, want ErrKeyPermissions", f, err)
			}
		})
	}
}

// A CA directory with only part of a CA is never overwritten.
func TestPartialCADirectoryIsRefused_IS1(t *testing.T) {
	for _, f := range []string{"ica1.pem", "ica1.key", "root.pem"} {
		t.Run(f, func(t *testing.T) {
			_, dir := openDev(t, ca.KeyECDSA)
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
			if _, err := ca.Open(options(t, dir, ca.KeyECDSA)); err == nil || !strings.Contains(err.Error(), "part of a CA") {
				t.Fatalf("open without %s: %v", f, err)
			}
		})
	}
}

// IS-11: one issuing CA per purpose, each with its own key, CRL and
// certificate URLs; the S/MIME CA never signs a TLS certificate and the
// TLS CA never an S/MIME one. A dev hierarchy made for S/MIME alone gets
// its TLS CA later under the same root.
func TestOneIssuingCAPerPurpose_IS11(t *testing.T) {
	h, dir := openDev(t, ca.KeyECDSA)
	if _, err := h.ForPurpose(ca.PurposeTLS); !errors.Is(err, ca.ErrNoCA) {
		t.Fatalf("TLS CA of an S/MIME-only hierarchy: %v", err)
	}
	h, err := ca.Open(options(t, dir, ca.KeyECDSA, ca.PurposeSMIME, ca.PurposeTLS))
	if err != nil {
		t.Fatal(err)
	}
	smime := smimeCA(t, h)
	tls, err := h.ForPurpose(ca.PurposeTLS)
	if err != nil {
		t.Fatal(err)
	}
	if tls.Slug != "tls1" || tls.Purpose != ca.PurposeTLS || tls.Cert.PublicKey.(*ecdsa.PublicKey).Equal(smime.Cert.PublicKey) {
		t.Fatalf("TLS CA %s/%s shares the S/MIME CA's key or name", tls.Slug, tls.Purpose)
	}
	checkIntermediate(t, h.Root, tls.Cert, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "2.23.140.1.2.2")
	if f, err := accepted(t).Findings(tls.Cert.Raw, false); err != nil || len(f) != 0 {
		t.Fatalf("zlint on the TLS CA: %v %v", f, err)
	}
	if smime.CRLURL() != base+"/crl/ica1.crl" || smime.CertURL() != base+"/ca/ica1.der" ||
		tls.CRLURL() != base+"/crl/tls1.crl" || tls.CertURL() != base+"/ca/tls1.der" {
		t.Fatalf("URLs %s %s %s %s", smime.CRLURL(), smime.CertURL(), tls.CRLURL(), tls.CertURL())
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := ca.NewSerial()
	now := time.Now().Truncate(time.Second)
	tlsTpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "www.example.co.jp"}, DNSNames: []string{"www.example.co.jp"},
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Policies: []x509.OID{oid(t, "2.23.140.1.2.1")},
		CRLDistributionPoints: []string{tls.CRLURL()}, IssuingCertificateURL: []string{tls.CertURL()},
	}
	if _, err := smime.Sign(tlsTpl, key.Public()); !errors.Is(err, ca.ErrWrongPurpose) {
		t.Fatalf("the S/MIME CA signed a TLS certificate: %v", err)
	}
	// Sneaking serverAuth or a TLS policy into an S/MIME template, or a
	// DNS name, is refused too.
	for name, spoil := range map[string]func(*x509.Certificate){
		"serverAuth": func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) },
		"TLS policy": func(c *x509.Certificate) { c.Policies = append(c.Policies, oid(t, "2.23.140.1.2.1")) },
		"dNSName":    func(c *x509.Certificate) { c.DNSNames = []string{"www.example.co.jp"} },
		"no emailProtection": func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		},
		"CA": func(c *x509.Certificate) { c.IsCA = true },
	} {
		tpl := template(t, smime, subject, key.Public())
		spoil(tpl)
		if _, err := smime.Sign(tpl, key.Public()); !errors.Is(err, ca.ErrWrongPurpose) {
			t.Errorf("%s: the S/MIME CA signed it: %v", name, err)
		}
	}
	if _, err := tls.Sign(template(t, smime, subject, key.Public()), key.Public()); !errors.Is(err, ca.ErrWrongPurpose) {
		t.Fatalf("the TLS CA signed an S/MIME certificate: %v", err)
	}
	// And what the S/MIME CA does sign chains through it alone.
	der, err := sign(t, smime, subject, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	if leaf.CheckSignatureFrom(smime.Cert) != nil || leaf.CheckSignatureFrom(tls.Cert) == nil {
		t.Fatal("the S/MIME certificate is not signed by the S/MIME CA alone")
	}
	zlintCommand(t, tls.Cert.Raw, der)
}

// IS-11: a CA directory whose issuing CA serves two purposes is refused.
func TestIssuingCAWithTwoPurposesRefused_IS11(t *testing.T) {
	h, dir := openDev(t, ca.KeyECDSA)
	// Make an intermediate with both EKUs, signed by the real dev root.
	signer := loadKey(t, filepath.Join(dir, "root.key"))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := ca.NewSerial()
	tpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "both"}, NotBefore: time.Now(),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, h.Root, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "both.pem"), "CERTIFICATE", der)
	k8, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(dir, "both.key"), "PRIVATE KEY", k8)
	if _, err := ca.Open(options(t, dir, ca.KeyECDSA)); err == nil || !strings.Contains(err.Error(), "IS-11") {
		t.Fatalf("open with a two-purpose issuing CA: %v", err)
	}
}

// IS-3, PC-17: the profile passes zlint for RSA and ECDSA subscriber keys
// under both hierarchies, and the signed certificate verifies to the root.
func TestProfilePassesLints_IS3_PC17(t *testing.T) {
	for _, alg := range []string{ca.KeyECDSA, ca.KeyRSA} {
		t.Run(alg, func(t *testing.T) {
			h, _ := openDev(t, alg)
			iss := smimeCA(t, h)
			rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
			ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			noID := subject
			noID.OrganizationIdentifier = ""
			var issued [][]byte
			defer func() { zlintCommand(t, issued...) }()
			for _, pub := range []crypto.PublicKey{rsaKey.Public(), ecKey.Public()} {
				for _, s := range []profile.Subject{subject, noID} {
					der, err := sign(t, iss, s, pub)
					if err != nil {
						t.Fatalf("%T: %v", pub, err)
					}
					issued = append(issued, der)
					c, _ := x509.ParseCertificate(der)
					roots := x509.NewCertPool()
					roots.AddCert(h.Root)
					inter := x509.NewCertPool()
					inter.AddCert(iss.Cert)
					if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
						KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
						t.Fatalf("verify: %v", err)
					}
				}
			}
		})
	}
}

// IS-3: a certificate with a lint error is not signed: no SAN, or a
// malformed mailbox.
func TestLintStopsBadCertificate_IS3(t *testing.T) {
	h, _ := openDev(t, ca.KeyECDSA)
	iss := smimeCA(t, h)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := subject
	bad.Email = ""
	_, err := sign(t, iss, bad, key.Public())
	var le *ca.LintError
	if !errors.As(err, &le) || !strings.Contains(le.Error(), "e_san_shall_be_present") {
		t.Fatalf("missing SAN: %v, want a lint error", err)
	}
	bad = subject
	bad.Email = "not a mailbox"
	if _, err := sign(t, iss, bad, key.Public()); !errors.As(err, &le) {
		t.Fatalf("malformed mailbox: %v, want a lint error", err)
	}
	// An organizationIdentifier of another country than subject:countryName.
	bad = subject
	bad.OrganizationIdentifier = "NTRDE-HRB12345"
	if _, err := sign(t, iss, bad, key.Public()); !errors.As(err, &le) ||
		!strings.Contains(le.Error(), "e_registration_scheme_id_matches_subject_country") {
		t.Fatalf("organizationIdentifier of another country: %v, want a lint error", err)
	}
}

// PC-17: the accepted list is applied by scope. With a loopback PUBLIC_URL
// (host:port) zlint warns w_smime_aia_contains_internal_names; dev mode
// accepts it, any other mode stops the issuance; other warnings are
// never accepted.
func TestAcceptedLintScope_PC17(t *testing.T) {
	_, dir := openDev(t, ca.KeyECDSA)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	opts := options(t, dir, ca.KeyECDSA)
	opts.Dev = false
	// A loopback PUBLIC_URL (split mode behind its proxy) is the dev scope
	// too: what zlint says of "127.0.0.1:<port>" is accepted there.
	prod, err := ca.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign(t, smimeCA(t, prod), subject, key.Public()); err != nil {
		t.Fatalf("loopback caIssuers outside dev mode: %v", err)
	}
	// An internal host name outside dev mode is not: the warning stops issuance.
	opts.BaseURL = "http://pki.internal:8080"
	prod, err = ca.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sign(t, smimeCA(t, prod), subject, key.Public())
	var le *ca.LintError
	if !errors.As(err, &le) || len(le.Findings) != 1 || !strings.HasPrefix(le.Findings[0], "w_smime_aia_contains_internal_names") {
		t.Fatalf("internal caIssuers outside dev mode: %v, want only the internal-names warning", err)
	}
	// The same CA with a public host name in its URLs passes outside dev mode.
	opts.BaseURL = "http://pki.certlife.jp"
	prod, err = ca.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign(t, smimeCA(t, prod), subject, key.Public()); err != nil {
		t.Fatalf("public URLs outside dev mode: %v", err)
	}
	// A warning nobody accepted stops issuance even in dev mode: a
	// critical SAN (w_san_should_not_be_critical) is one.
	h, err := ca.Open(options(t, dir, ca.KeyECDSA))
	if err != nil {
		t.Fatal(err)
	}
	linter, err := ca.NewLinter(smimeCA(t, h).Cert, accepted(t), true)
	if err != nil {
		t.Fatal(err)
	}
	tpl := template(t, smimeCA(t, h), subject, key.Public())
	tpl.ExtraExtensions = append(tpl.ExtraExtensions, criticalSAN(t, subject.Email))
	if err := linter.Lint(tpl, key.Public()); !errors.As(err, &le) || !strings.Contains(le.Error(), "w_san_should_not_be_critical") {
		t.Fatalf("critical SAN in dev mode: %v, want the warning to stop it", err)
	}
}

// The accepted list must name real lints, with a known scope and a reason.
func TestAcceptedListFormat_PC17(t *testing.T) {
	if len(accepted(t).Entries()) == 0 {
		t.Fatal("the repository's list parsed empty")
	}
	for _, bad := range []string{
		"w_smime_aia_contains_internal_names dev",                          // no reason
		"w_no_such_lint always because",                                    // unknown lint
		"w_smime_aia_contains_internal_names sometimes because",            // bad scope
		"e_san_shall_be_present always a\ne_san_shall_be_present always b", // twice
	} {
		if _, err := ca.ParseAccepted([]byte(bad)); err == nil {
			t.Errorf("accepted: %q", bad)
		}
	}
}

func oid(t *testing.T, s string) x509.OID {
	t.Helper()
	o, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func loadKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parsePEMKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PC-17: the zlint command the tests run is real — it reports what the
// in-process linter would stop (here a certificate with no SAN and a
// critical one, signed without the linter) — and it agrees with the
// in-process lint on the same bytes.
func TestZlintCommandAgreesWithLinter_PC17(t *testing.T) {
	h, dir := openDev(t, ca.KeyECDSA)
	iss := smimeCA(t, h)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := template(t, iss, subject, key.Public())
	tpl.EmailAddresses = nil
	der, err := x509.CreateCertificate(rand.Reader, tpl, iss.Cert, key.Public(), loadKey(t, filepath.Join(dir, "ica1.key")))
	if err != nil {
		t.Fatal(err)
	}
	cli := zlintFindings(t, der)
	if len(cli) == 0 || !strings.Contains(strings.Join(cli, " "), "e_san_shall_be_present") {
		t.Fatalf("zlint command on a certificate without SAN: %v", cli)
	}
	inproc, err := accepted(t).Findings(der, true)
	if err != nil || len(inproc) != len(cli) {
		t.Fatalf("in-process lint %v, command %v", inproc, cli)
	}
}
