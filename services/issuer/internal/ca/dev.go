package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Key algorithms of a dev hierarchy (CA_KEY_ALGORITHM, IS-1).
const (
	KeyECDSA = "ecdsa"
	KeyRSA   = "rsa"
	// RSACAKeyBits: new CA keys are RSA-4096 (SPEC IS-1; the S/MIME BR
	// ballot SMC017 sets 3072 as the floor for issuing CAs).
	RSACAKeyBits = 4096
)

// CheckKeyAlgorithm validates CA_KEY_ALGORITHM.
func CheckKeyAlgorithm(a string) error {
	switch a {
	case "", KeyECDSA, KeyRSA:
		return nil
	}
	return fmt.Errorf("CA_KEY_ALGORITHM must be %s or %s, not %q", KeyECDSA, KeyRSA, a)
}

func algorithmOrDefault(a string) string {
	if a == "" {
		return KeyECDSA
	}
	return a
}

// Lifetimes of dev CA certificates and of the ARL.
const (
	rootLifetime    = 20 // years
	issuingLifetime = 10 // years
	// arlValidity: a CA's CRL may run 12 months (SBR 4.9.7); a dev root
	// signs a new one at start when less than arlRefresh is left.
	arlValidity = 360 * 24 * time.Hour
	arlRefresh  = 30 * 24 * time.Hour
)

var devOrg = []string{"Certlife Dev CA"}

func newCAKey(algorithm string, root bool) (crypto.Signer, error) {
	switch algorithmOrDefault(algorithm) {
	case KeyECDSA:
		// P-384 for the root (it outlives its intermediates); P-256 for
		// issuing CAs, signing with SHA-256 (SBR 7.1.3.2).
		curve := elliptic.P256()
		if root {
			curve = elliptic.P384()
		}
		return ecdsa.GenerateKey(curve, rand.Reader)
	case KeyRSA:
		return rsa.GenerateKey(rand.Reader, RSACAKeyBits)
	}
	return nil, CheckKeyAlgorithm(algorithm)
}

// subjectKeyID is the leftmost 160 bits of the SHA-256 of the
// subjectPublicKey bits (RFC 7093 method 1): no SHA-1 anywhere.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

func mustSerial() *big.Int {
	n, err := NewSerial()
	if err != nil {
		panic(err)
	}
	return n
}

// caStart backdates CA certificates by an hour for relying parties whose
// clocks lag; subscriber certificates start exactly at issuance (PC-15).
func caStart(now time.Time) time.Time { return now.Add(-time.Hour).Truncate(time.Second) }

// createRoot makes a throwaway root (SBR 7.1.2.1: keyCertSign and cRLSign,
// no EKU, no policies, no path length) and its first ARL, lints the root
// and writes root.key (0600), root.pem and root.crl. Nothing is written
// if zlint finds anything not accepted.
func createRoot(opts Options) error {
	key, err := newCAKey(opts.KeyAlgorithm, true)
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return err
	}
	start := caStart(opts.Now)
	tpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: devOrg, CommonName: "Certlife Dev Root CA"},
		NotBefore:             start,
		NotAfter:              start.AddDate(rootLifetime, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("ca: root: %w", err)
	}
	if err := lintCA("root", der, opts); err != nil {
		return err
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	arl, err := signARL(root, key, 1, opts.Now)
	if err != nil {
		return err
	}
	keyPEM, err := pemKey(key)
	if err != nil {
		return err
	}
	// Key first: a crash in between leaves no certificate without its key.
	for _, f := range []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{rootKeyFile, 0o600, keyPEM},
		{rootCertFile, 0o644, pemCert(der)},
		{rootCRLFile, 0o644, arl},
	} {
		if err := writeNew(filepath.Join(opts.Dir, f.name), f.mode, f.data); err != nil {
			return fmt.Errorf("ca: write %s: %w", f.name, err)
		}
	}
	return nil
}

// completeDev runs in dev mode when the root key is at hand: it creates
// the issuing CA of every wanted purpose that has none (so the TLS CA of
// the server issue joins an existing dev hierarchy), and signs a new ARL
// when the current one is missing or near its nextUpdate.
func completeDev(opts Options) (created []string, err error) {
	root, err := loadCertificate(filepath.Join(opts.Dir, rootCertFile))
	if err != nil {
		return nil, err
	}
	rootKey, err := loadSigner(filepath.Join(opts.Dir, rootKeyFile))
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(rootKey.Public(), root.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s", rootKeyFile, rootCertFile)
	}
	inv, err := inventory(opts.Dir)
	if err != nil {
		return nil, err
	}
	have := map[Purpose]bool{}
	for _, slug := range inv.slugs {
		c, err := loadCertificate(filepath.Join(opts.Dir, slug+".pem"))
		if err != nil {
			return nil, err
		}
		if p, err := purposeOf(c); err == nil {
			have[p] = true
		}
	}
	for _, p := range opts.Purposes {
		if have[p] {
			continue
		}
		if err := createIssuing(opts, p, root, rootKey); err != nil {
			return nil, err
		}
		created = append(created, DevSlug(p))
	}
	return created, refreshARL(opts, root, rootKey)
}

// createIssuing makes the issuing CA of purpose p under the root (SBR
// 7.1.2.2 / TLS BR 7.1.2.6): certificatePolicies with the purpose's
// CA/B Forum policy, CRL distribution point and AIA caIssuers on the
// root's http URLs, the purpose's EKU, keyCertSign + cRLSign (no
// digitalSignature: it signs no OCSP responses), path length 0. It is
// linted before its files are written.
func createIssuing(opts Options, p Purpose, root *x509.Certificate, rootKey crypto.Signer) error {
	slug := DevSlug(p)
	if slug == "" {
		return fmt.Errorf("ca: unknown purpose %q", p)
	}
	key, err := newCAKey(opts.KeyAlgorithm, false)
	if err != nil {
		return err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return err
	}
	var cn string
	var eku []x509.ExtKeyUsage
	var policy x509.OID
	switch p {
	case PurposeSMIME:
		cn = "Certlife Dev S/MIME Issuing CA 1"
		// SBR 7.1.2.2 g: emailProtection SHALL be present; serverAuth,
		// codeSigning, timeStamping and anyExtendedKeyUsage SHALL NOT;
		// clientAuth is the other usage the multipurpose certificates it
		// issues carry (and the only other one SMC018 keeps from 2027-07).
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth}
		// SBR 7.1.6.3: the reserved policy of what it issues —
		// sponsor-validated multipurpose (PC-17).
		policy = mustOID(2, 23, 140, 1, 5, 3, 2)
	case PurposeTLS:
		cn = "Certlife Dev TLS Issuing CA 1"
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} // IS-10
		policy = mustOID(2, 23, 140, 1, 2, 2)                // OV
	}
	start := caStart(opts.Now)
	tpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: devOrg, CommonName: cn},
		NotBefore:             start,
		NotAfter:              start.AddDate(issuingLifetime, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
		Policies:              []x509.OID{policy},
		CRLDistributionPoints: []string{opts.BaseURL + "/crl/" + RootName + ".crl"},
		IssuingCertificateURL: []string{opts.BaseURL + "/ca/" + RootName + ".der"},
	}
	if tpl.NotAfter.After(root.NotAfter) {
		tpl.NotAfter = root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, root, key.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("ca: issuing CA %s: %w", slug, err)
	}
	if err := lintCA(slug, der, opts); err != nil {
		return err
	}
	keyPEM, err := pemKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(filepath.Join(opts.Dir, slug+".key"), 0o600, keyPEM); err != nil {
		return fmt.Errorf("ca: write %s.key: %w", slug, err)
	}
	if err := writeNew(filepath.Join(opts.Dir, slug+".pem"), 0o644, pemCert(der)); err != nil {
		return fmt.Errorf("ca: write %s.pem: %w", slug, err)
	}
	return nil
}

// lintCA runs zlint on a CA certificate as it is created; any result the
// accepted list does not name stops the creation.
func lintCA(name string, der []byte, opts Options) error {
	findings, err := opts.Accepted.Findings(der, opts.devLints())
	if err != nil {
		return err
	}
	if len(findings) > 0 {
		return fmt.Errorf("ca: %s certificate: %w", name, &LintError{Findings: findings})
	}
	return nil
}

// signARL signs the root's CRL. No intermediate is ever revoked by a dev
// root, so it is empty; it exists so that relying parties that check the
// whole chain (OpenSSL -crl_check_all, gpgsm) find a CRL at the
// intermediate's distribution point.
func signARL(root *x509.Certificate, key crypto.Signer, number int64, now time.Time) ([]byte, error) {
	this := now.UTC().Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: this, NextUpdate: this.Add(arlValidity),
	}, root, key)
	if err != nil {
		return nil, fmt.Errorf("ca: root CRL: %w", err)
	}
	return der, nil
}

// refreshARL replaces the dev root's CRL when it is missing, unreadable,
// signed by another key, or within arlRefresh of its nextUpdate; the new
// one's CRLNumber is one above the old.
func refreshARL(opts Options, root *x509.Certificate, key crypto.Signer) error {
	path := filepath.Join(opts.Dir, rootCRLFile)
	number := int64(1)
	if raw, err := os.ReadFile(path); err == nil {
		if crl, err := x509.ParseRevocationList(raw); err == nil && crl.CheckSignatureFrom(root) == nil {
			if crl.NextUpdate.Sub(opts.Now) > arlRefresh {
				return nil
			}
			if crl.Number != nil && crl.Number.IsInt64() {
				number = crl.Number.Int64() + 1
			}
		}
	} else if !IsNotExist(err) {
		return err
	}
	der, err := signARL(root, key, number, opts.Now)
	if err != nil {
		return err
	}
	// Write then rename, so a reader never sees half a CRL.
	tmp := path + ".new"
	_ = os.Remove(tmp)
	if err := writeNew(tmp, 0o644, der); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func mustOID(arcs ...uint64) x509.OID {
	oid, err := x509.OIDFromInts(arcs)
	if err != nil {
		panic(err)
	}
	return oid
}
