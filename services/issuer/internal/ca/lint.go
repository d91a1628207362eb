package ca

import (
	"bufio"
	"bytes"
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

// Scopes of an accepted lint result.
const (
	// ScopeAlways: accepted wherever the issuer runs.
	ScopeAlways = "always"
	// ScopeDev: accepted only in dev mode, where PUBLIC_URL is a loopback
	// listen address; in production the same result stops issuance.
	ScopeDev = "dev"
)

// Accepted is the list of zlint results the platform accepts, each with
// its reason: the one file lints-accepted.txt, parsed (PC-17). Anything
// else at warning level or above stops an issuance.
type Accepted struct {
	entries map[string]AcceptedLint
}

// AcceptedLint is one line of the list.
type AcceptedLint struct {
	Name   string
	Scope  string
	Reason string
}

// ParseAccepted reads the list: one lint per line, "<lint name> <scope>
// <reason…>"; '#' starts a comment line. A reason is required: an
// accepted result nobody can explain is a defect.
func ParseAccepted(text []byte) (*Accepted, error) {
	a := &Accepted{entries: map[string]AcceptedLint{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("lints-accepted line %d: want <lint> <scope> <reason>", n)
		}
		if f[1] != ScopeAlways && f[1] != ScopeDev {
			return nil, fmt.Errorf("lints-accepted line %d: scope %q is not %s or %s", n, f[1], ScopeAlways, ScopeDev)
		}
		if lint.GlobalRegistry().ByName(f[0]) == nil {
			return nil, fmt.Errorf("lints-accepted line %d: zlint has no lint %q", n, f[0])
		}
		if _, dup := a.entries[f[0]]; dup {
			return nil, fmt.Errorf("lints-accepted line %d: %s listed twice", n, f[0])
		}
		a.entries[f[0]] = AcceptedLint{Name: f[0], Scope: f[1], Reason: strings.Join(f[2:], " ")}
	}
	return a, sc.Err()
}

// Entries lists the accepted results, sorted by name.
func (a *Accepted) Entries() []AcceptedLint {
	out := make([]AcceptedLint, 0, len(a.entries))
	for _, e := range a.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Accepts reports whether a result of lint name is accepted in this mode.
func (a *Accepted) Accepts(name string, dev bool) bool {
	if a == nil {
		return false
	}
	e, ok := a.entries[name]
	return ok && (e.Scope == ScopeAlways || dev)
}

// Findings runs every zlint lint on der and returns the results at
// warning level or above that the list does not accept, sorted. Notices
// and informational results never stop anything.
func (a *Accepted) Findings(der []byte, dev bool) ([]string, error) {
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the certificate: %w", err)
	}
	rs := zlint.LintCertificateEx(zc, lint.GlobalRegistry())
	var findings []string
	for name, r := range rs.Results {
		if r.Status != lint.Warn && r.Status != lint.Error && r.Status != lint.Fatal {
			continue
		}
		if a.Accepts(name, dev) {
			continue
		}
		f := name
		if r.Details != "" {
			f += ": " + r.Details
		}
		findings = append(findings, f)
	}
	sort.Strings(findings)
	return findings, nil
}

// Linter lints a certificate before the real key signs it, the way
// Boulder does: the same template is signed by a throwaway key of the
// issuer's key type under a stand-in issuer certificate that has the real
// issuer's subject and key identifier, so the bytes zlint sees differ from
// the final certificate only in the signature.
type Linter struct {
	key      crypto.Signer
	issuer   *x509.Certificate
	accepted *Accepted
	dev      bool
}

// NewLinter makes the throwaway key and stand-in issuer for issuer. The
// throwaway key has the issuer's key type, so the copy carries the same
// signature algorithm (ECDSA: the same curve, hence the same hash). For
// RSA it is 2048 bits whatever the issuer's size: Go signs with
// SHA256WithRSA at any size, zlint never sees the issuer's key, and a
// 4096-bit key costs seconds at every start.
func NewLinter(issuer *x509.Certificate, accepted *Accepted, dev bool) (*Linter, error) {
	var key crypto.Signer
	var err error
	switch pub := issuer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		key, err = ecdsa.GenerateKey(pub.Curve, rand.Reader)
	case *rsa.PublicKey:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
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
	return &Linter{key: key, issuer: stand, accepted: accepted, dev: dev}, nil
}

// Lint signs tpl for pub with the throwaway key and runs every zlint
// certificate lint on it. Any error, fatal or warning result that the
// accepted list does not name is a *LintError.
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
	findings, err := l.accepted.Findings(der, l.dev)
	if err != nil {
		return &LintError{Findings: []string{"parse: " + err.Error()}}
	}
	if len(findings) > 0 {
		return &LintError{Findings: findings}
	}
	return nil
}
