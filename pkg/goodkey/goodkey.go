// Package goodkey decides whether a subscriber's public key and CSR are
// acceptable for a TLS certificate (SPEC SV-6, TLS BR §6.1.5–6.1.6), in the
// manner of Let's Encrypt's Boulder: key types and sizes, RSA exponent and
// modulus sanity, known-weak keys (ROCA, small factors, Fermat-close
// primes, a blocklist of compromised keys such as Debian's 2008 weak keys),
// and the CSR's own signature and subject. It knows no service.
package goodkey

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/titanous/rocacheck"
)

// Problem is one reason a key or CSR is refused; Field names the input
// it is about ("csr") and Message says what was wrong in words a
// customer can act on.
type Problem struct {
	Field   string
	Message string
}

func (p *Problem) Error() string { return p.Message }

func refuse(format string, a ...any) *Problem {
	return &Problem{Field: "csr", Message: fmt.Sprintf(format, a...)}
}

// Policy is what keys are accepted. The zero value accepts RSA 2048–8192
// and ECDSA P-256/P-384 with no blocklist.
type Policy struct {
	// Blocklist holds compromised keys (see LoadBlocklist).
	Blocklist *Blocklist
	// FermatRounds is how many Fermat steps are tried (default 100, as Boulder).
	FermatRounds int
}

const (
	minRSABits = 2048
	maxRSABits = 8192
)

// CheckKey refuses a public key the platform must not certify.
func (p Policy) CheckKey(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return p.checkRSA(k)
	case *ecdsa.PublicKey:
		return checkECDSA(k)
	default:
		return refuse("the key type %T is not accepted: use RSA (2048 bits or more) or ECDSA P-256/P-384", pub)
	}
}

func checkECDSA(k *ecdsa.PublicKey) error {
	switch k.Curve {
	case elliptic.P256(), elliptic.P384():
	default:
		return refuse("the ECDSA curve %s is not accepted: use P-256 or P-384", k.Curve.Params().Name)
	}
	// The point is checked on the curve by crypto/x509 and crypto/ecdh when
	// parsed; check again for keys built by hand.
	if _, err := k.ECDH(); err != nil {
		return refuse("the ECDSA public key is not a valid point: %v", err)
	}
	return nil
}

// The primes below 752 (as Boulder and the TLS BR's "small factors" checks use).
var smallPrimes = func() []*big.Int {
	var out []*big.Int
	for n := int64(3); n < 752; n += 2 {
		if big.NewInt(n).ProbablyPrime(0) {
			out = append(out, big.NewInt(n))
		}
	}
	return out
}()

func (p Policy) checkRSA(k *rsa.PublicKey) error {
	if k.N == nil || k.N.Sign() <= 0 {
		return refuse("the RSA modulus is missing")
	}
	bits := k.N.BitLen()
	if bits < minRSABits {
		return refuse("the RSA key has %d bits; at least %d are required", bits, minRSABits)
	}
	if bits > maxRSABits {
		return refuse("the RSA key has %d bits; at most %d are accepted", bits, maxRSABits)
	}
	if bits%8 != 0 {
		return refuse("the RSA modulus size (%d bits) is not a whole number of bytes", bits)
	}
	// TLS BR §6.1.6: an odd exponent, at least 3 (we require 65537 or more,
	// as every mainstream key generator does).
	if k.E < 65537 || k.E%2 == 0 {
		return refuse("the RSA public exponent %d is not accepted: use 65537", k.E)
	}
	if k.N.Bit(0) == 0 {
		return refuse("the RSA modulus is even")
	}
	mod := new(big.Int)
	for _, sp := range smallPrimes {
		if mod.Mod(k.N, sp).Sign() == 0 {
			return refuse("the RSA modulus has a small prime factor (%s): the key is broken, generate a new one", sp)
		}
	}
	if rocacheck.IsWeak(k) {
		return refuse("the RSA key was made by a generator vulnerable to ROCA (CVE-2017-15361): generate a new key with other software")
	}
	if p.Blocklist.Contains(k) {
		return refuse("the RSA key is publicly known to be compromised (for example a Debian weak key, CVE-2008-0166): generate a new key")
	}
	rounds := p.FermatRounds
	if rounds == 0 {
		rounds = 100
	}
	if fermatFactor(k.N, rounds) {
		return refuse("the RSA key's primes are so close that the key can be factored: generate a new key")
	}
	return nil
}

// fermatFactor reports whether n = a² − b² for an a within rounds steps
// above √n, i.e. whether n's two primes are too close (CVE-2022-26320).
func fermatFactor(n *big.Int, rounds int) bool {
	a := new(big.Int).Sqrt(n)
	if new(big.Int).Mul(a, a).Cmp(n) < 0 {
		a.Add(a, big.NewInt(1))
	}
	b2, b, sq := new(big.Int), new(big.Int), new(big.Int)
	for range rounds {
		b2.Mul(a, a)
		b2.Sub(b2, n)
		b.Sqrt(b2)
		if sq.Mul(b, b).Cmp(b2) == 0 {
			return true
		}
		a.Add(a, big.NewInt(1))
	}
	return false
}

// Blocklist is a set of compromised RSA keys, by the lower 80 bits of
// SHA-1("Modulus=<HEX>\n") (Debian's openssl-blacklist format, the one
// openssl-vulnkey reads) or by the first 15 bytes of SHA-256 of the
// modulus (badkeys' format).
type Blocklist struct {
	sha1Tails    map[string]struct{}
	sha256Prefix map[string]struct{}
}

// LoadBlocklist reads lines of hex fingerprints: 20 hex digits (an
// openssl-blacklist line) or 30 (a badkeys SHA-256 prefix); '#' starts a
// comment.
func LoadBlocklist(r io.Reader) (*Blocklist, error) {
	b := &Blocklist{sha1Tails: map[string]struct{}{}, sha256Prefix: map[string]struct{}{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.ToLower(strings.TrimSpace(sc.Text()))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if _, err := hex.DecodeString(s); err != nil {
			return nil, fmt.Errorf("blocklist line %d: not hex", line)
		}
		switch len(s) {
		case 20:
			b.sha1Tails[s] = struct{}{}
		case 30:
			b.sha256Prefix[s] = struct{}{}
		default:
			return nil, fmt.Errorf("blocklist line %d: want 20 or 30 hex digits, got %d", line, len(s))
		}
	}
	return b, sc.Err()
}

// Fingerprints are the two blocklist forms of k's modulus.
func Fingerprints(k *rsa.PublicKey) (sha1Tail, sha256Prefix string) {
	s1 := sha1.Sum([]byte("Modulus=" + strings.ToUpper(k.N.Text(16)) + "\n"))
	s2 := sha256.Sum256(k.N.Bytes())
	return hex.EncodeToString(s1[10:]), hex.EncodeToString(s2[:15])
}

// Contains reports whether k is on the list (a nil list holds nothing).
func (b *Blocklist) Contains(k *rsa.PublicKey) bool {
	if b == nil {
		return false
	}
	t1, t2 := Fingerprints(k)
	_, in1 := b.sha1Tails[t1]
	_, in2 := b.sha256Prefix[t2]
	return in1 || in2
}

// Len is the number of fingerprints on the list.
func (b *Blocklist) Len() int {
	if b == nil {
		return 0
	}
	return len(b.sha1Tails) + len(b.sha256Prefix)
}

// MaxCSR bounds a PEM CSR (SE-4).
const MaxCSR = 16 << 10

// ParseCSR decodes one PEM "CERTIFICATE REQUEST" and checks its own
// signature.
func ParseCSR(pemText string) (*x509.CertificateRequest, error) {
	if len(pemText) > MaxCSR {
		return nil, refuse("the CSR is larger than %d bytes", MaxCSR)
	}
	block, rest := pem.Decode([]byte(pemText))
	if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
		return nil, refuse("the CSR must be one PEM block of type CERTIFICATE REQUEST")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, refuse("the CSR must be exactly one PEM block, with nothing after it")
	}
	return ParseCSRDER(block.Bytes)
}

// ParseCSRDER parses a DER CSR and checks its signature.
func ParseCSRDER(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, refuse("the CSR cannot be parsed: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, refuse("the CSR's signature does not verify with its own key: %v", err)
	}
	return csr, nil
}

// CheckCSR applies SV-6 to a parsed CSR: its key (CheckKey), its
// signature algorithm, and a subject without an organizational unit (the
// TLS BR forbid OU since 2022-09-01).
func (p Policy) CheckCSR(csr *x509.CertificateRequest) error {
	switch csr.SignatureAlgorithm {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
	default:
		return refuse("the CSR is signed with %s, which is not accepted (use SHA-256 or stronger)", csr.SignatureAlgorithm)
	}
	if len(csr.Subject.OrganizationalUnit) > 0 {
		return refuse("the CSR's subject has an organizational unit (OU=%s); the TLS Baseline Requirements forbid OU: make a CSR without it",
			strings.Join(csr.Subject.OrganizationalUnit, ", "))
	}
	return p.CheckKey(csr.PublicKey)
}

// IsProblem reports whether err is a refusal of this package (as opposed
// to a failure of the caller's own).
func IsProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}
