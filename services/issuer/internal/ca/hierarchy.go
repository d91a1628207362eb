// Package ca is the certificate authority proper: the hierarchy (a root
// and one issuing CA per purpose, IS-1, IS-11), the private keys (read
// only from 0600 files, SE-2), lint-before-sign (IS-3), certificate and
// CRL signatures, and the data key that seals PKCS#12 files at rest.
// Nothing here knows about HTTP, events or Postgres.
package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RootName is the root's name in URLs (/ca/root.der, /crl/root.crl). The
// root stays offline in production; the service never loads its key.
const RootName = "root"

// File names inside the CA directory. Each issuing CA is <slug>.pem (its
// certificate) and <slug>.key (its PKCS#8 key, 0600); the slug is its
// name in URLs and events. root.crl is the root's CRL (an ARL listing
// revoked intermediates), signed by the root at a ceremony — or, in dev
// mode, at start — and served as it lies.
const (
	rootCertFile = RootName + ".pem"
	rootKeyFile  = RootName + ".key"
	rootCRLFile  = RootName + ".crl"
	dataKeyFile  = "data.key"
)

// Options say where the CA is and what it must offer.
type Options struct {
	Dir string
	Now time.Time // the injected clock's now
	Log *slog.Logger
	// Dev allows a throwaway hierarchy to be created (SE-10) and accepts
	// the lint results listed with scope "dev".
	Dev bool
	// KeyAlgorithm of a hierarchy created here: "ecdsa" (P-384 root,
	// P-256 issuing CAs) or "rsa" (4096 bits, SMC017). Empty = ecdsa.
	KeyAlgorithm string
	// Purposes the service issues for: each needs its issuing CA. In dev
	// mode a missing one is created under the existing dev root.
	Purposes []Purpose
	// BaseURL is where the CA certificates and CRLs are published
	// (http://host[:port], no trailing slash).
	BaseURL string
	// Accepted is the list of accepted lint results (lints-accepted.txt).
	Accepted *Accepted
}

// devLints reports whether the lint results of scope "dev" are accepted:
// in dev mode, or wherever the certificates' URLs name a loopback address
// (split mode's service binaries run behind a loopback proxy) — a
// certificate that names loopback is of no use outside this machine, and
// the dev-scoped results are what zlint says of "127.0.0.1:<port>".
func (o Options) devLints() bool {
	if o.Dev {
		return true
	}
	u, err := url.Parse(o.BaseURL)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// Hierarchy is the loaded CA: the root certificate, the issuing CAs with
// their keys, and the data key.
type Hierarchy struct {
	Root      *x509.Certificate
	dir       string
	base      string
	issuers   map[string]*Issuer
	byPurpose map[Purpose]*Issuer
	sealer    *Sealer
}

// Issuer is one issuing CA: its certificate, key and linter.
type Issuer struct {
	Slug    string
	Purpose Purpose
	Cert    *x509.Certificate
	signer  crypto.Signer
	linter  *Linter
	base    string
}

// ErrNoCA: the CA directory holds no CA and this is not dev mode (SE-10).
var ErrNoCA = errors.New("ca: no CA")

// Open loads the hierarchy from opts.Dir. In dev mode an empty directory
// gets a throwaway hierarchy first (IS-1), and a dev root (its key at
// hand) gets any missing issuing CA and a fresh ARL. Outside dev mode
// nothing is ever created: a missing file stops the start, saying which.
func Open(opts Options) (*Hierarchy, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Accepted == nil {
		opts.Accepted = &Accepted{}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	inv, err := inventory(opts.Dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !inv.root && len(inv.slugs) == 0:
		if !opts.Dev {
			return nil, fmt.Errorf("%w in %s: %s and an issuing CA for %v (<name>.pem with <name>.key, mode 0600) are required; a throwaway CA is made only in dev mode",
				ErrNoCA, opts.Dir, rootCertFile, opts.Purposes)
		}
		if err := createRoot(opts); err != nil {
			return nil, err
		}
	case !inv.root:
		return nil, fmt.Errorf("ca: %s holds part of a CA (issuing CAs %v without %s); refusing to overwrite it", opts.Dir, inv.slugs, rootCertFile)
	}
	if opts.Dev {
		if ok, err := exists(filepath.Join(opts.Dir, rootKeyFile)); err != nil {
			return nil, err
		} else if ok {
			created, err := completeDev(opts)
			if err != nil {
				return nil, err
			}
			if !inv.root || len(created) > 0 {
				opts.Log.Warn("created a dev CA (throwaway keys; not for production)", "dir", opts.Dir,
					"root_created", !inv.root, "issuing_created", created, "key_algorithm", algorithmOrDefault(opts.KeyAlgorithm))
			}
		}
	}
	if ok, err := exists(filepath.Join(opts.Dir, dataKeyFile)); err != nil {
		return nil, err
	} else if !ok {
		if err := createDataKey(filepath.Join(opts.Dir, dataKeyFile)); err != nil {
			return nil, err
		}
	}
	return load(opts)
}

type dirInventory struct {
	root  bool
	slugs []string // issuing CAs: <slug>.pem with <slug>.key
}

// inventory lists the CA files and refuses a directory holding part of
// an issuing CA (a certificate without its key or the other way round):
// such a directory is never completed or overwritten.
func inventory(dir string) (dirInventory, error) {
	var inv dirInventory
	entries, err := os.ReadDir(dir)
	if err != nil {
		return inv, fmt.Errorf("ca: %w", err)
	}
	pems, keys := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == rootCertFile:
			inv.root = true
		case name == rootKeyFile || name == dataKeyFile:
		case strings.HasSuffix(name, ".pem"):
			pems[strings.TrimSuffix(name, ".pem")] = true
		case strings.HasSuffix(name, ".key"):
			keys[strings.TrimSuffix(name, ".key")] = true
		}
	}
	for s := range pems {
		if !keys[s] {
			return inv, fmt.Errorf("ca: %s holds part of a CA (%s.pem without %s.key); refusing to overwrite it", dir, s, s)
		}
		inv.slugs = append(inv.slugs, s)
	}
	for s := range keys {
		if !pems[s] {
			return inv, fmt.Errorf("ca: %s holds part of a CA (%s.key without %s.pem); refusing to overwrite it", dir, s, s)
		}
	}
	sort.Strings(inv.slugs)
	for _, s := range inv.slugs {
		if !validSlug(s) {
			return inv, fmt.Errorf("ca: issuing CA name %q must be lowercase letters, digits and '-'", s)
		}
	}
	return inv, nil
}

func validSlug(s string) bool {
	if s == "" || s == RootName || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func load(opts Options) (*Hierarchy, error) {
	dir := opts.Dir
	// The root key is not used by the service (dev mode signs the ARL in
	// completeDev), but a readable one in the CA directory is a
	// misconfiguration worth stopping for.
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
	if err := root.CheckSignatureFrom(root); err != nil || !root.IsCA {
		return nil, fmt.Errorf("ca: %s is not a self-signed CA certificate", rootCertFile)
	}
	inv, err := inventory(dir)
	if err != nil {
		return nil, err
	}
	h := &Hierarchy{Root: root, dir: dir, base: opts.BaseURL, issuers: map[string]*Issuer{}, byPurpose: map[Purpose]*Issuer{}}
	for _, slug := range inv.slugs {
		iss, err := loadIssuer(dir, slug, root, opts)
		if err != nil {
			return nil, err
		}
		if other, dup := h.byPurpose[iss.Purpose]; dup {
			return nil, fmt.Errorf("ca: %s and %s are both %s issuing CAs; IS-11 wants one per purpose", other.Slug, slug, iss.Purpose)
		}
		h.issuers[slug], h.byPurpose[iss.Purpose] = iss, iss
	}
	for _, p := range opts.Purposes {
		if h.byPurpose[p] == nil {
			return nil, fmt.Errorf("%w: %s has no issuing CA for %s (%s.pem with its key)", ErrNoCA, dir, p, DevSlug(p))
		}
	}
	// The CA certificates are linted as they are created (createRoot,
	// createIssuing); a hierarchy brought from elsewhere is linted here
	// too, and what zlint says is logged for the operators.
	for _, c := range h.caCertificates() {
		if findings, err := opts.Accepted.Findings(c.Raw, opts.devLints()); err == nil && len(findings) > 0 {
			opts.Log.Warn("zlint findings on a CA certificate", "subject", c.Subject.String(), "findings", findings)
		}
	}
	if ok, err := exists(filepath.Join(dir, rootCRLFile)); err == nil && !ok {
		opts.Log.Warn("no root CRL (ARL): /crl/root.crl answers 404 until the root ceremony puts one in the CA directory",
			"file", filepath.Join(dir, rootCRLFile))
	}
	if h.sealer, err = loadSealer(filepath.Join(dir, dataKeyFile)); err != nil {
		return nil, err
	}
	return h, nil
}

func loadIssuer(dir, slug string, root *x509.Certificate, opts Options) (*Issuer, error) {
	cert, err := loadCertificate(filepath.Join(dir, slug+".pem"))
	if err != nil {
		return nil, err
	}
	signer, err := loadSigner(filepath.Join(dir, slug+".key"))
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s.key does not match %s.pem", slug, slug)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("ca: %s.pem is not signed by %s: %w", slug, rootCertFile, err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("ca: %s.pem is not a CA certificate", slug)
	}
	purpose, err := purposeOf(cert)
	if err != nil {
		return nil, fmt.Errorf("ca: %s.pem: %w", slug, err)
	}
	linter, err := NewLinter(cert, opts.Accepted, opts.devLints())
	if err != nil {
		return nil, err
	}
	return &Issuer{Slug: slug, Purpose: purpose, Cert: cert, signer: signer, linter: linter, base: opts.BaseURL}, nil
}

func (h *Hierarchy) caCertificates() []*x509.Certificate {
	out := []*x509.Certificate{h.Root}
	for _, iss := range h.Issuers() {
		out = append(out, iss.Cert)
	}
	return out
}

// Issuers are the issuing CAs, by name.
func (h *Hierarchy) Issuers() []*Issuer {
	out := make([]*Issuer, 0, len(h.issuers))
	for _, iss := range h.issuers {
		out = append(out, iss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	return out
}

// Issuer is the issuing CA of that name.
func (h *Hierarchy) Issuer(slug string) (*Issuer, bool) {
	iss, ok := h.issuers[slug]
	return iss, ok
}

// ForPurpose is the issuing CA of a purpose (IS-11).
func (h *Hierarchy) ForPurpose(p Purpose) (*Issuer, error) {
	if iss := h.byPurpose[p]; iss != nil {
		return iss, nil
	}
	return nil, fmt.Errorf("%w: no issuing CA for %s", ErrNoCA, p)
}

// Certificate is the CA certificate of a name: the root or an issuing CA.
func (h *Hierarchy) Certificate(name string) (*x509.Certificate, bool) {
	if name == RootName {
		return h.Root, true
	}
	if iss, ok := h.issuers[name]; ok {
		return iss.Cert, true
	}
	return nil, false
}

// PEM returns the PEM of a CA certificate.
func (h *Hierarchy) PEM(name string) ([]byte, bool) {
	c, ok := h.Certificate(name)
	if !ok {
		return nil, false
	}
	return pemCert(c.Raw), true
}

// RootCRL is the root's CRL (ARL) as the CA directory holds it, DER.
// It is read at each call so that a new ARL from a root ceremony is
// served without a restart. fs.ErrNotExist when there is none.
func (h *Hierarchy) RootCRL() ([]byte, error) {
	der, err := os.ReadFile(filepath.Join(h.dir, rootCRLFile))
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParseRevocationList(der); err != nil {
		return nil, fmt.Errorf("ca: %s is not a DER CRL: %w", rootCRLFile, err)
	}
	return der, nil
}

// Sealer is the data key that encrypts PKCS#12 files at rest.
func (h *Hierarchy) Sealer() *Sealer { return h.sealer }

// IsCAKey reports whether pub is one of the CA's own keys: a subscriber
// must never get a certificate for it.
func (h *Hierarchy) IsCAKey(pub crypto.PublicKey) bool {
	for _, c := range h.caCertificates() {
		if publicKeysEqual(pub, c.PublicKey) {
			return true
		}
	}
	return false
}

// CRLURL is where this CA's CRL is published (the CRL distribution point
// of what it issues), over http (SBR 7.1.2.3 b).
func (iss *Issuer) CRLURL() string { return iss.base + "/crl/" + iss.Slug + ".crl" }

// CertURL is where this CA's certificate is published in DER, as RFC 5280
// 4.2.2.1 wants for AIA caIssuers over http.
func (iss *Issuer) CertURL() string { return iss.base + "/ca/" + iss.Slug + ".der" }

// Sign checks that tpl belongs to this CA's purpose (IS-11), lints it (a
// copy signed by a throwaway key, IS-3) and, only when nothing but
// accepted results come back, signs it for pub with this CA's key. A lint
// failure is a *LintError; a template of another purpose ErrWrongPurpose.
func (iss *Issuer) Sign(tpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	if err := checkPurpose(iss.Purpose, tpl); err != nil {
		return nil, err
	}
	if tpl.NotAfter.After(iss.Cert.NotAfter) {
		return nil, &LintError{Findings: []string{"issuer: the certificate would outlive its issuing CA"}}
	}
	if err := iss.linter.Lint(tpl, pub); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, iss.Cert, pub, iss.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	return der, nil
}

// SignCRL signs a CRL of this CA.
func (iss *Issuer) SignCRL(tpl *x509.RevocationList) ([]byte, error) {
	der, err := x509.CreateRevocationList(rand.Reader, tpl, iss.Cert, iss.signer)
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

// IsNotExist reports a missing file (e.g. no root CRL yet).
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
