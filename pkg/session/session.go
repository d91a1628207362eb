// Package session makes and checks applicant session tokens, so that any
// service can tell who a request acts for without asking intake (issue 6
// item 8). Intake signs a short-lived token with an Ed25519 private key
// (SESSION_PRIVATE_KEY_FILE, 0600); every service verifies it with the
// public key (SESSION_PUBLIC_KEY).
//
// The format is our own and deliberately small — no algorithm field to
// negotiate, so no "alg: none" or key-confusion class of bugs:
//
//	v1.<base64url(JSON claims)>.<base64url(Ed25519 signature)>
//
// The signature covers "v1." and the encoded claims. Revocation is by
// expiry: a token lives as long as its session (30 minutes), and intake,
// which holds the session rows, also refuses a token whose session it
// has deleted.
package session

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const prefix = "v1."

// MaxLen bounds a token; anything longer is refused before decoding.
const MaxLen = 1024

// Claims are what a token says.
type Claims struct {
	// SessionID names the session row in intake.
	SessionID string `json:"sid"`
	// Subject is the applicant, or the server customer when Customer is
	// set (SPEC §5: a customer session sees only server orders, invoices
	// and the certificates of its orders).
	Subject  string `json:"sub"`
	Customer bool   `json:"cu,omitempty"`
	// CodeVerified: the session was opened with the certificate code
	// (PC-7). Certificate steps (retrieval, renewal, reissue) require it;
	// a password-only session sees applications and orders (SPEC §5).
	CodeVerified bool  `json:"cv"`
	IssuedAt     int64 `json:"iat"`
	ExpiresAt    int64 `json:"exp"`
	// MailboxValidatedAt (Unix seconds) and MailboxEmail are the latest
	// validation of the applicant's mailbox when the session was opened
	// (PC-16: a sign-in with a certificate code less than 24 hours old).
	// A retrieval needs one from the last 30 days for the certificate's
	// own mailbox; the issuer checks it here, without asking intake.
	MailboxValidatedAt int64  `json:"mv,omitempty"`
	MailboxEmail       string `json:"mva,omitempty"`
}

// Expires is the expiry as a time.
func (c Claims) Expires() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// MailboxValidated returns the latest mailbox validation the token
// carries, if any.
func (c Claims) MailboxValidated() (email string, at time.Time, ok bool) {
	if c.MailboxValidatedAt == 0 || c.MailboxEmail == "" {
		return "", time.Time{}, false
	}
	return c.MailboxEmail, time.Unix(c.MailboxValidatedAt, 0).UTC(), true
}

// Errors of Verify. Callers answer both with the same 401.
var (
	ErrInvalid = errors.New("session: invalid token")
	ErrExpired = errors.New("session: token expired")
)

// Signer signs tokens.
type Signer struct{ key ed25519.PrivateKey }

// NewSigner signs with key.
func NewSigner(key ed25519.PrivateKey) *Signer { return &Signer{key: key} }

// Public is the key that verifies this signer's tokens.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns the token for c.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.SessionID == "" || c.Subject == "" || c.ExpiresAt == 0 {
		return "", errors.New("session: sid, sub and exp are required")
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := prefix + base64.RawURLEncoding.EncodeToString(raw)
	sig := ed25519.Sign(s.key, []byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Verifier checks tokens against one or more public keys (more than one
// while keys are rotated).
type Verifier struct{ keys []ed25519.PublicKey }

// NewVerifier verifies with keys.
func NewVerifier(keys ...ed25519.PublicKey) *Verifier { return &Verifier{keys: keys} }

// ParseVerifier reads SESSION_PUBLIC_KEY: one or more base64 Ed25519
// public keys, comma-separated.
func ParseVerifier(config string) (*Verifier, error) {
	var keys []ed25519.PublicKey
	for _, part := range strings.Split(config, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, err := ParsePublicKey(part)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("session: SESSION_PUBLIC_KEY names no key")
	}
	return NewVerifier(keys...), nil
}

// Verify checks the token's signature and expiry at now and returns its
// claims. Every malformed, forged or tampered token is ErrInvalid.
func (v *Verifier) Verify(token string, now time.Time) (Claims, error) {
	var c Claims
	if len(token) > MaxLen || !strings.HasPrefix(token, prefix) {
		return c, ErrInvalid
	}
	i := strings.LastIndexByte(token, '.')
	if i <= len(prefix) {
		return c, ErrInvalid
	}
	signed, sigPart := token[:i], token[i+1:]
	sig, err := base64.RawURLEncoding.DecodeString(sigPart)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, ErrInvalid
	}
	ok := false
	for _, k := range v.keys {
		if ed25519.Verify(k, []byte(signed), sig) {
			ok = true
			break
		}
	}
	if !ok {
		return c, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(signed[len(prefix):])
	if err != nil {
		return c, ErrInvalid
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.SessionID == "" || c.Subject == "" || c.ExpiresAt == 0 {
		return Claims{}, ErrInvalid
	}
	if !now.Before(c.Expires()) {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// EncodePublicKey is the base64 form of SESSION_PUBLIC_KEY.
func EncodePublicKey(k ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(k) }

// ParsePublicKey reads one base64 public key.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("session: a public key is 32 bytes in base64")
	}
	return ed25519.PublicKey(b), nil
}

// LoadOrCreateKey reads the private key file — PKCS#8 PEM, as
// `openssl genpkey -algorithm ed25519` writes it — refusing one readable
// by group or others (SE-2). With create set and no file there, it writes
// a new key with mode 0600 (the all-in-one's dev secrets).
func LoadOrCreateKey(path string, create bool) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("session: %s must not be readable by group or others (chmod 600)", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("session: %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("session: %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("session: %s is not an Ed25519 key", path)
	}
	return key, nil
}
