// Package acme is the ACME protocol of intake's ACME server (RFC 8555,
// RFC 9773; SPEC §4.10): JWS requests and their keys, external account
// binding, problem types, identifiers, key authorizations, CSR checks and
// ARI certificate IDs. It is a leaf without I/O: no SQL, no HTTP serving;
// internal/api serves it and internal/app keeps its state.
package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/certlife/platform/pkg/goodkey"
)

// Error types of RFC 8555 §6.7 (and RFC 9773).
const (
	ErrBadNonce                = "urn:ietf:params:acme:error:badNonce"
	ErrMalformed               = "urn:ietf:params:acme:error:malformed"
	ErrUnauthorized            = "urn:ietf:params:acme:error:unauthorized"
	ErrRejectedIdentifier      = "urn:ietf:params:acme:error:rejectedIdentifier"
	ErrUnsupportedIdentifier   = "urn:ietf:params:acme:error:unsupportedIdentifier"
	ErrCAA                     = "urn:ietf:params:acme:error:caa"
	ErrDNS                     = "urn:ietf:params:acme:error:dns"
	ErrConnection              = "urn:ietf:params:acme:error:connection"
	ErrIncorrectResponse       = "urn:ietf:params:acme:error:incorrectResponse"
	ErrExternalAccountRequired = "urn:ietf:params:acme:error:externalAccountRequired"
	ErrBadCSR                  = "urn:ietf:params:acme:error:badCSR"
	ErrOrderNotReady           = "urn:ietf:params:acme:error:orderNotReady"
	ErrAccountDoesNotExist     = "urn:ietf:params:acme:error:accountDoesNotExist"
	ErrBadSignatureAlgorithm   = "urn:ietf:params:acme:error:badSignatureAlgorithm"
	ErrBadPublicKey            = "urn:ietf:params:acme:error:badPublicKey"
	ErrAlreadyRevoked          = "urn:ietf:params:acme:error:alreadyRevoked"
	ErrBadRevocationReason     = "urn:ietf:params:acme:error:badRevocationReason"
	ErrServerInternal          = "urn:ietf:params:acme:error:serverInternal"
	ErrRateLimited             = "urn:ietf:params:acme:error:rateLimited"
	ErrConflict                = "urn:ietf:params:acme:error:conflict"
)

// Problem is an ACME problem document (RFC 8555 §6.7, RFC 7807). The
// HTTP edge writes it; use cases return it as an error.
type Problem struct {
	Type        string    `json:"type"`
	Title       string    `json:"title,omitempty"`
	Detail      string    `json:"detail"`
	Status      int       `json:"status"`
	Identifier  *Ident    `json:"identifier,omitempty"`
	Subproblems []Problem `json:"subproblems,omitempty"`
	// Algorithms lists the accepted algorithms (badSignatureAlgorithm).
	Algorithms []string `json:"algorithms,omitempty"`
	// Location is the existing account (conflict on key change).
	Location string `json:"-"`
}

func (p *Problem) Error() string { return p.Type + ": " + p.Detail }

// Prob makes a problem with a status.
func Prob(typ string, status int, format string, a ...any) *Problem {
	return &Problem{Type: typ, Status: status, Detail: fmt.Sprintf(format, a...)}
}

// Malformed is a 400 malformed problem.
func Malformed(format string, a ...any) *Problem { return Prob(ErrMalformed, 400, format, a...) }

// Unauthorized is a 403 unauthorized problem.
func Unauthorized(format string, a ...any) *Problem { return Prob(ErrUnauthorized, 403, format, a...) }

// AsProblem returns err's problem, if it is one.
func AsProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

// Algorithms are the JWS algorithms accepted (AC-1: RS256, ES256; ES384
// beside them for P-384 account keys).
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384}

// MaxJWS bounds a request body (issue 10 item 6: an oversized JWS is
// refused before it is parsed).
const MaxJWS = 64 << 10

// Ident is an ACME identifier.
type Ident struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Request is a parsed, not yet verified, JWS request (RFC 8555 §6.2).
type Request struct {
	Alg     string
	Nonce   string
	URL     string
	KID     string
	JWK     *jose.JSONWebKey
	Payload []byte // verified payload, after Verify
	jws     *jose.JSONWebSignature
}

type flattened struct {
	Protected string          `json:"protected"`
	Payload   *string         `json:"payload"`
	Signature string          `json:"signature"`
	Header    json.RawMessage `json:"header"`
	// The general serialization's member; refused.
	Signatures json.RawMessage `json:"signatures"`
}

type protectedHeader struct {
	Alg   string          `json:"alg"`
	Nonce string          `json:"nonce"`
	URL   string          `json:"url"`
	KID   string          `json:"kid"`
	JWK   json.RawMessage `json:"jwk"`
}

// ParseRequest parses a flattened JWS (RFC 8555 §6.2): exactly one of
// kid and jwk, url and nonce present, an accepted algorithm. The
// signature is checked later, by Verify, with the key the caller finds.
func ParseRequest(body []byte) (*Request, *Problem) {
	var f flattened
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, Malformed("the body is not a flattened JWS: %v", err)
	}
	if len(f.Signatures) > 0 || len(f.Header) > 0 {
		return nil, Malformed("only the flattened JWS serialization with a protected header alone is accepted")
	}
	if f.Protected == "" || f.Signature == "" || f.Payload == nil {
		return nil, Malformed("protected, payload and signature are required")
	}
	raw, err := base64.RawURLEncoding.DecodeString(f.Protected)
	if err != nil {
		return nil, Malformed("protected header: %v", err)
	}
	var h protectedHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, Malformed("protected header: %v", err)
	}
	if !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Alg)) {
		p := Prob(ErrBadSignatureAlgorithm, 400, "algorithm %q is not accepted", h.Alg)
		for _, a := range Algorithms {
			p.Algorithms = append(p.Algorithms, string(a))
		}
		return nil, p
	}
	if h.URL == "" {
		return nil, Malformed("the protected header has no url")
	}
	if (h.KID == "") == (len(h.JWK) == 0) {
		return nil, Malformed("the protected header must carry exactly one of kid and jwk")
	}
	jws, err := jose.ParseSigned(string(body), Algorithms)
	if err != nil {
		return nil, Malformed("JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, Malformed("exactly one signature is required")
	}
	r := &Request{Alg: h.Alg, Nonce: h.Nonce, URL: h.URL, KID: h.KID, jws: jws}
	if len(h.JWK) > 0 {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(h.JWK); err != nil {
			return nil, Prob(ErrBadPublicKey, 400, "jwk: %v", err)
		}
		if !k.IsPublic() || !k.Valid() {
			return nil, Prob(ErrBadPublicKey, 400, "jwk must be a valid public key")
		}
		if err := CheckAccountKey(&k); err != nil {
			return nil, err
		}
		r.JWK = &k
	}
	return r, nil
}

// CheckAccountKey refuses weak account keys (RSA below 2048 bits, curves
// other than P-256/P-384) with badPublicKey.
func CheckAccountKey(k *jose.JSONWebKey) *Problem {
	if err := (goodkey.Policy{}).CheckKey(k.Key); err != nil {
		return Prob(ErrBadPublicKey, 400, "account key: %v", err)
	}
	return nil
}

// Verify checks the signature with key and keeps the payload.
func (r *Request) Verify(key *jose.JSONWebKey) *Problem {
	alg := jose.SignatureAlgorithm(r.Alg)
	if !algFits(alg, key) {
		return Prob(ErrBadSignatureAlgorithm, 400, "algorithm %s does not fit the account key", r.Alg)
	}
	payload, err := r.jws.Verify(key)
	if err != nil {
		return Malformed("JWS signature does not verify")
	}
	r.Payload = payload
	return nil
}

func algFits(alg jose.SignatureAlgorithm, key *jose.JSONWebKey) bool {
	switch k := key.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256
	case *ecdsa.PublicKey:
		return (alg == jose.ES256 && k.Curve == elliptic.P256()) || (alg == jose.ES384 && k.Curve == elliptic.P384())
	}
	return false
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of key, base64url.
func Thumbprint(key *jose.JSONWebKey) (string, error) {
	t, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// KeyAuthorization is token "." thumbprint (RFC 8555 §8.1).
func KeyAuthorization(token string, key *jose.JSONWebKey) (string, error) {
	t, err := Thumbprint(key)
	if err != nil {
		return "", err
	}
	return token + "." + t, nil
}

// DNS01Value is the TXT value of a dns-01 challenge (RFC 8555 §8.4).
func DNS01Value(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// EABPayload is what newAccount's externalAccountBinding holds.
type EABPayload = json.RawMessage

// VerifyEAB checks an external account binding (RFC 8555 §7.3.4): a JWS
// with alg HS256/384/512, kid = the EAB key ID, url = the newAccount URL,
// payload = the account key. keyFor returns the MAC key of a kid (nil:
// unknown kid). It returns the kid.
func VerifyEAB(raw json.RawMessage, accountKey *jose.JSONWebKey, url string, keyFor func(kid string) ([]byte, error)) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", Prob(ErrExternalAccountRequired, 403, "an external account binding is required: ask your CA for an EAB key ID and MAC key")
	}
	macAlgs := []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}
	jws, err := jose.ParseSigned(string(raw), macAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", Malformed("externalAccountBinding is not a JWS with HS256: %v", err)
	}
	var f flattened
	_ = json.Unmarshal(raw, &f)
	hraw, _ := base64.RawURLEncoding.DecodeString(f.Protected)
	var h protectedHeader
	if err := json.Unmarshal(hraw, &h); err != nil {
		return "", Malformed("externalAccountBinding header: %v", err)
	}
	if h.KID == "" || h.Nonce != "" || len(h.JWK) > 0 {
		return "", Malformed("externalAccountBinding must carry kid and no nonce or jwk")
	}
	if h.URL != url {
		return "", Malformed("externalAccountBinding url %q is not %q", h.URL, url)
	}
	key, err := keyFor(h.KID)
	if err != nil {
		return "", err
	}
	if key == nil {
		return "", Unauthorized("unknown external account binding key ID")
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return "", Unauthorized("the external account binding MAC does not verify")
	}
	var inner jose.JSONWebKey
	if err := inner.UnmarshalJSON(payload); err != nil {
		return "", Malformed("externalAccountBinding payload is not a JWK")
	}
	a, err1 := Thumbprint(&inner)
	b, err2 := Thumbprint(accountKey)
	if err1 != nil || err2 != nil || a != b {
		return "", Malformed("externalAccountBinding payload is not the account key")
	}
	return h.KID, nil
}

// internalSuffixes are names that are not public (issue 10 item 6:
// internal names are refused). .test and .example stay accepted: they
// are the dev and test zones of this platform.
var internalSuffixes = []string{"local", "localhost", "internal", "intranet", "lan", "home", "corp", "private",
	"home.arpa", "invalid", "localdomain", "onion"}

// CheckIdentifier accepts a DNS identifier the CA may validate: a
// lower-case hostname of two or more labels, LDH labels, no IP address,
// no internal name; a wildcard only as the whole leftmost label.
func CheckIdentifier(id Ident) (string, *Problem) {
	if id.Type == "ip" {
		return "", rejected(id, "IP address identifiers are not issued")
	}
	if id.Type != "dns" {
		return "", &Problem{Type: ErrUnsupportedIdentifier, Status: 400, Detail: fmt.Sprintf("identifier type %q is not supported", id.Type), Identifier: &id}
	}
	name := strings.ToLower(strings.TrimSpace(id.Value))
	if name != id.Value {
		return "", rejected(id, "identifier must be lower case without spaces")
	}
	if net.ParseIP(name) != nil {
		return "", rejected(id, "IP addresses are not issued")
	}
	host := strings.TrimPrefix(name, "*.")
	if strings.Contains(host, "*") {
		return "", rejected(id, "a wildcard is allowed only as the whole leftmost label")
	}
	if len(name) > 253 {
		return "", rejected(id, "name too long")
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return "", rejected(id, "internal (single-label) names are not issued")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return "", rejected(id, "invalid label %q", l)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", rejected(id, "invalid character %q", c)
			}
		}
	}
	if _, err := fmt.Sscanf(labels[len(labels)-1], "%d", new(int)); err == nil {
		return "", rejected(id, "the top-level label is numeric")
	}
	for _, s := range internalSuffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return "", rejected(id, "internal names (.%s) are not issued", s)
		}
	}
	return name, nil
}

func rejected(id Ident, format string, a ...any) *Problem {
	p := Prob(ErrRejectedIdentifier, 400, "%s: %s", id.Value, fmt.Sprintf(format, a...))
	p.Identifier = &id
	return p
}

// CheckCSR applies SV-6 to an ACME finalize CSR: it parses and its
// signature verifies, its key passes pkg/goodkey, it names exactly the
// order's identifiers (SANs, and the CN if any among them), and it has no
// OU (TLS BR 7.1.4.2). The order's names come from the order.
func CheckCSR(der []byte, names []string, policy goodkey.Policy) (*x509.CertificateRequest, *Problem) {
	csr, err := goodkey.ParseCSRDER(der)
	if err != nil {
		return nil, Prob(ErrBadCSR, 400, "%v", err)
	}
	if err := policy.CheckCSR(csr); err != nil {
		return nil, Prob(ErrBadCSR, 400, "%v", err)
	}
	if len(csr.Subject.OrganizationalUnit) > 0 {
		return nil, Prob(ErrBadCSR, 400, "the CSR must not carry an OU (TLS BR 7.1.4.2.2)")
	}
	if len(csr.IPAddresses) > 0 || len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, Prob(ErrBadCSR, 400, "the CSR may name DNS names only")
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]bool{}
	for _, n := range csr.DNSNames {
		got[strings.ToLower(n)] = true
	}
	if cn := strings.ToLower(csr.Subject.CommonName); cn != "" {
		if !want[cn] {
			return nil, Prob(ErrBadCSR, 400, "the CSR's CN %q is not an identifier of the order", csr.Subject.CommonName)
		}
		got[cn] = true
	}
	if len(got) != len(want) {
		return nil, Prob(ErrBadCSR, 400, "the CSR names %s; the order's identifiers are %s", keys(got), strings.Join(names, ", "))
	}
	for n := range got {
		if !want[n] {
			return nil, Prob(ErrBadCSR, 400, "the CSR names %s, which the order does not", n)
		}
	}
	return csr, nil
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// CertID is the RFC 9773 certificate identifier: base64url(AKI keyIdentifier)
// "." base64url(the DER serial's content octets).
func CertID(cert *x509.Certificate) (string, error) {
	der, err := asn1.Marshal(cert.SerialNumber)
	if err != nil || len(der) < 3 {
		return "", errors.New("serial does not encode")
	}
	return base64.RawURLEncoding.EncodeToString(cert.AuthorityKeyId) + "." + base64.RawURLEncoding.EncodeToString(der[2:]), nil
}

// ParseCertID splits an ARI certificate ID into its AKI and serial
// (hex, lower case, as the platform records serials).
func ParseCertID(id string) (aki []byte, serialHex string, p *Problem) {
	a, s, ok := strings.Cut(id, ".")
	if !ok || a == "" || s == "" {
		return nil, "", Malformed("certID must be base64url(AKI) \".\" base64url(serial)")
	}
	aki, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil {
		return nil, "", Malformed("certID AKI: %v", err)
	}
	ser, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(ser) == 0 {
		return nil, "", Malformed("certID serial: %v", err)
	}
	return aki, fmt.Sprintf("%x", new(big.Int).SetBytes(ser)), nil
}

// ParseInnerKeyChange parses and verifies the inner JWS of a key change
// (RFC 8555 §7.3.5): signed by the new key given as jwk, with the outer
// request's url and no nonce.
func ParseInnerKeyChange(payload []byte, outerURL string) (*Request, *Problem) {
	var f flattened
	if err := json.Unmarshal(payload, &f); err != nil || f.Protected == "" {
		return nil, Malformed("the key-change payload is not a flattened JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(f.Protected)
	if err != nil {
		return nil, Malformed("inner protected header: %v", err)
	}
	var h protectedHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, Malformed("inner protected header: %v", err)
	}
	if h.Nonce != "" {
		return nil, Malformed("the inner JWS must not carry a nonce")
	}
	if h.URL != outerURL {
		return nil, Malformed("the inner JWS url is not the outer one")
	}
	if len(h.JWK) == 0 || h.KID != "" {
		return nil, Malformed("the inner JWS must carry the new key as jwk")
	}
	if !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Alg)) {
		return nil, Prob(ErrBadSignatureAlgorithm, 400, "algorithm %q is not accepted", h.Alg)
	}
	jws, err := jose.ParseSigned(string(payload), Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, Malformed("inner JWS: %v", err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(h.JWK); err != nil || !k.IsPublic() {
		return nil, Prob(ErrBadPublicKey, 400, "inner jwk must be a public key")
	}
	r := &Request{Alg: h.Alg, URL: h.URL, JWK: &k, jws: jws}
	if p := r.Verify(&k); p != nil {
		return nil, p
	}
	return r, nil
}
