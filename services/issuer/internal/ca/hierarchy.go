// Package ca is the certificate authority proper: the dev hierarchy, the
// private keys (read only from 0600 files, SE-2), lint-before-sign (IS-3),
// certificate and CRL signatures, and the data key that seals PKCS#12
// files at rest. Nothing here knows about HTTP, events or Postgres.
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Issuer names are the slugs used in URLs (/ca/{name}.pem, /crl/{name}.crl)
// and in events. The root stays offline in production; only the issuing
// intermediate's key is loaded by the service.
const (
	RootName    = "root"
	IssuingName = "ica1"
)

// File names inside the CA directory.
const (
	rootCertFile = RootName + ".pem"
	rootKeyFile  = RootName + ".key"
	icaCertFile  = IssuingName + ".pem"
	icaKeyFile   = IssuingName + ".key"
	dataKeyFile  = "data.key"
)

// Hierarchy is the loaded CA: the root certificate, the issuing
// intermediate with its key, the linter and the data key.
type Hierarchy struct {
	Root    *x509.Certificate
	Issuing *x509.Certificate
	signer  crypto.Signer
	linter  *Linter
	sealer  *Sealer
}

// Open loads the hierarchy from dir. When dir holds no CA yet it creates
// a dev hierarchy first (IS-1): a root (ECDSA P-384, 20 years) and an
// issuing intermediate (ECDSA P-256, 10 years, pathlen 0). now is the
// injected clock's time. Every key file must be 0600 (SE-2).
func Open(dir string, now time.Time, log *slog.Logger) (*Hierarchy, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	present := 0
	for _, f := range []string{rootCertFile, icaCertFile, icaKeyFile} {
		ok, err := exists(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		if ok {
			present++
		}
	}
	switch present {
	case 0:
		if err := createDevHierarchy(dir, now); err != nil {
			return nil, err
		}
		log.Warn("created a dev CA hierarchy (throwaway keys; not for production)", "dir", dir,
			"root", RootName, "issuing", IssuingName)
	case 3:
	default:
		return nil, fmt.Errorf("ca: %s holds part of a CA (%s, %s and %s are all needed); refusing to overwrite it",
			dir, rootCertFile, icaCertFile, icaKeyFile)
	}
	if ok, err := exists(filepath.Join(dir, dataKeyFile)); err != nil {
		return nil, err
	} else if !ok {
		if err := createDataKey(filepath.Join(dir, dataKeyFile)); err != nil {
			return nil, err
		}
	}
	return load(dir)
}

func load(dir string) (*Hierarchy, error) {
	// The root key is not used by the service, but a readable one in the
	// CA directory is a misconfiguration worth stopping for.
	if ok, err := exists(filepath.Join(dir, rootKeyFile)); err != nil {
		return nil, err
	} else if ok {
		if err := checkKeyFile(filepath.Join(dir, rootKeyFile)); err != nil {
			return nil, err
		}
	}
	root, err := loadCertificate(filepath.Join(dir, rootCertFile))
	if err != nil {
		return nil, err
	}
	ica, err := loadCertificate(filepath.Join(dir, icaCertFile))
	if err != nil {
		return nil, err
	}
	signer, err := loadSigner(filepath.Join(dir, icaKeyFile))
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(signer.Public(), ica.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s", icaKeyFile, icaCertFile)
	}
	if err := ica.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: %s is not signed by %s: %w", icaCertFile, rootCertFile, err)
	}
	if !ica.IsCA || !ica.BasicConstraintsValid {
		return nil, fmt.Errorf("ca: %s is not a CA certificate", icaCertFile)
	}
	sealer, err := loadSealer(filepath.Join(dir, dataKeyFile))
	if err != nil {
		return nil, err
	}
	linter, err := NewLinter(ica)
	if err != nil {
		return nil, err
	}
	return &Hierarchy{Root: root, Issuing: ica, signer: signer, linter: linter, sealer: sealer}, nil
}

// Certificate returns the CA certificate of an issuer name.
func (h *Hierarchy) Certificate(name string) (*x509.Certificate, bool) {
	switch name {
	case RootName:
		return h.Root, true
	case IssuingName:
		return h.Issuing, true
	}
	return nil, false
}

// PEM returns the PEM of an issuer's certificate.
func (h *Hierarchy) PEM(name string) ([]byte, bool) {
	c, ok := h.Certificate(name)
	if !ok {
		return nil, false
	}
	return pemCert(c.Raw), true
}

// Sealer is the data key that encrypts PKCS#12 files at rest.
func (h *Hierarchy) Sealer() *Sealer { return h.sealer }

// IsCAKey reports whether pub is one of the CA's own keys: a subscriber
// must never get a certificate for it.
func (h *Hierarchy) IsCAKey(pub crypto.PublicKey) bool {
	return publicKeysEqual(pub, h.Root.PublicKey) || publicKeysEqual(pub, h.Issuing.PublicKey)
}

// Sign lints tpl (a copy signed by a throwaway key, IS-3) and, only when
// no lint reports an error, signs it for pub with the issuing key. A lint
// failure is a *LintError.
func (h *Hierarchy) Sign(tpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	if tpl.NotAfter.After(h.Issuing.NotAfter) {
		return nil, &LintError{Findings: []string{"issuer: the certificate would outlive its issuing CA"}}
	}
	if err := h.linter.Lint(tpl, pub); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, h.Issuing, pub, h.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	return der, nil
}

// SignCRL signs a CRL of the issuing intermediate.
func (h *Hierarchy) SignCRL(tpl *x509.RevocationList) ([]byte, error) {
	der, err := x509.CreateRevocationList(rand.Reader, tpl, h.Issuing, h.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign CRL: %w", err)
	}
	return der, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// createDevHierarchy makes a throwaway root and issuing intermediate and
// writes certificates (PEM, 0644) and keys (PKCS#8 PEM, 0600).
func createDevHierarchy(dir string, now time.Time) error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return err
	}
	icaKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	// CA certificates are backdated by an hour for relying parties whose
	// clocks lag; subscriber certificates start exactly at issuance (PC-15).
	start := now.Add(-time.Hour).Truncate(time.Second)
	org := []string{"Certlife Dev CA"}
	rootTpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Country: []string{"JP"}, Organization: org, CommonName: "Certlife Dev Root CA"},
		NotBefore:             start,
		NotAfter:              start.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTpl, rootTpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("ca: root: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return err
	}
	icaTpl := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject:      pkix.Name{Country: []string{"JP"}, Organization: org, CommonName: "Certlife Dev S/MIME Issuing CA 1"},
		NotBefore:    start,
		NotAfter:     start.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		// S/MIME BR 7.1.2.2: a subordinate CA for S/MIME carries the
		// emailProtection EKU (clientAuth is allowed beside it), never serverAuth.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	icaDER, err := x509.CreateCertificate(rand.Reader, icaTpl, root, icaKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("ca: intermediate: %w", err)
	}
	rootKeyPEM, err := pemKey(rootKey)
	if err != nil {
		return err
	}
	icaKeyPEM, err := pemKey(icaKey)
	if err != nil {
		return err
	}
	// Keys first: a crash in between leaves no certificate without its key.
	for _, f := range []struct {
		name string
		mode os.FileMode
		data []byte
	}{
		{rootKeyFile, 0o600, rootKeyPEM},
		{icaKeyFile, 0o600, icaKeyPEM},
		{rootCertFile, 0o644, pemCert(rootDER)},
		{icaCertFile, 0o644, pemCert(icaDER)},
	} {
		if err := writeNew(filepath.Join(dir, f.name), f.mode, f.data); err != nil {
			return fmt.Errorf("ca: write %s: %w", f.name, err)
		}
	}
	return nil
}

// NewSerial returns a random serial number: 128 bits from the CSPRNG with
// the top bit cleared, so it is positive and encodes in 16 octets, and
// never zero (IS-2).
func NewSerial() (*big.Int, error) {
	for {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		b[0] &= 0x7f
		n := new(big.Int).SetBytes(b)
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func mustSerial() *big.Int {
	n, err := NewSerial()
	if err != nil {
		panic(err)
	}
	return n
}

// SerialHex is the canonical text of a serial: lowercase hex, no leading zeros.
func SerialHex(n *big.Int) string { return n.Text(16) }

// ErrBadSerial: a serial given by an operator is not hex.
var ErrBadSerial = errors.New("serial must be hexadecimal")

// ParseSerialHex reads a serial as operators write it: hex, any case,
// optionally with colons or a 0x prefix.
func ParseSerialHex(s string) (string, error) {
	s = string(bytes.ReplaceAll([]byte(s), []byte(":"), nil))
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if s == "" || len(s) > 64 {
		return "", ErrBadSerial
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return "", ErrBadSerial
	}
	return SerialHex(n), nil
}
