package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// LintError lists the lints that stopped an issuance (IS-3).
type LintError struct{ Findings []string }

func (e *LintError) Error() string {
	return "lint: " + strings.Join(e.Findings, "; ")
}

// Linter lints a certificate before the real key signs it, the way
// Boulder does: the same template is signed by a throwaway key of the
// issuer's key type under a stand-in issuer certificate that has the real
// issuer's subject and key identifier, so the bytes zlint sees differ from
// the final certificate only in the signature.
type Linter struct {
	key      crypto.Signer
	issuer   *x509.Certificate
	registry lint.Registry
}

// NewLinter makes the throwaway key and stand-in issuer for issuer.
func NewLinter(issuer *x509.Certificate) (*Linter, error) {
	var key crypto.Signer
	var err error
	switch pub := issuer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		key, err = ecdsa.GenerateKey(pub.Curve, rand.Reader)
	case *rsa.PublicKey:
		key, err = rsa.GenerateKey(rand.Reader, pub.N.BitLen())
	default:
		return nil, fmt.Errorf("ca: unsupported issuer key %T", pub)
	}
	if err != nil {
		return nil, err
	}
	tpl := &x509.Certificate{
		SerialNumber:          issuer.SerialNumber,
		RawSubject:            issuer.RawSubject,
		SubjectKeyId:          issuer.SubjectKeyId,
		NotBefore:             issuer.NotBefore,
		NotAfter:              issuer.NotAfter,
		KeyUsage:              issuer.KeyUsage,
		ExtKeyUsage:           issuer.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            issuer.MaxPathLen,
		MaxPathLenZero:        issuer.MaxPathLenZero,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: lint issuer: %w", err)
	}
	stand, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Linter{key: key, issuer: stand, registry: lint.GlobalRegistry()}, nil
}

// Lint signs tpl for pub with the throwaway key and runs every zlint
// certificate lint on it. Any Error or Fatal result is a *LintError;
// warnings and notices do not stop issuance.
func (l *Linter) Lint(tpl *x509.Certificate, pub crypto.PublicKey) error {
	der, err := x509.CreateCertificate(rand.Reader, tpl, l.issuer, pub, l.key)
	if err != nil {
		// Go refuses what it cannot encode (e.g. a non-IA5 e-mail address).
		return &LintError{Findings: []string{"encode: " + err.Error()}}
	}
	return l.LintDER(der)
}

// LintDER runs zlint on an encoded certificate.
func (l *Linter) LintDER(der []byte) error {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return &LintError{Findings: []string{"parse: " + err.Error()}}
	}
	rs := zlint.LintCertificateEx(zc, l.registry)
	var findings []string
	for name, r := range rs.Results {
		if r.Status == lint.Error || r.Status == lint.Fatal {
			f := name
			if r.Details != "" {
				f += ": " + r.Details
			}
			findings = append(findings, f)
		}
	}
	if len(findings) > 0 {
		sort.Strings(findings)
		return &LintError{Findings: findings}
	}
	return nil
}
