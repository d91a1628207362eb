package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Issue 6 item 8: a token signed by intake verifies with the public key
// alone; expired, forged and tampered tokens do not.
func TestTokenVerifiesLocallyAndRefusesExpiredForgedTampered(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	signer := NewSigner(newKey(t))
	c := Claims{SessionID: "s1", Subject: "a1", CodeVerified: true, IssuedAt: now.Unix(), ExpiresAt: now.Add(30 * time.Minute).Unix()}
	tok, err := signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParseVerifier(EncodePublicKey(signer.Public()))
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok, now)
	if err != nil || got != c {
		t.Fatalf("verify: %+v %v", got, err)
	}
	// Valid until, not at, its expiry.
	if _, err := v.Verify(tok, now.Add(30*time.Minute-time.Second)); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	if _, err := v.Verify(tok, now.Add(30*time.Minute)); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	// Forged: the same claims signed by another key.
	forged, _ := NewSigner(newKey(t)).Sign(c)
	if _, err := v.Verify(forged, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged: %v", err)
	}
	// Tampered: the claims changed, the signature kept.
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	evil := strings.Replace(string(raw), `"sub":"a1"`, `"sub":"a2"`, 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(evil)) + "." + parts[2]
	if _, err := v.Verify(tampered, now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("tampered: %v", err)
	}
	// Upgraded: cv flipped to true on a password-only token.
	pw, _ := signer.Sign(Claims{SessionID: "s2", Subject: "a1", ExpiresAt: now.Add(time.Hour).Unix()})
	p := strings.Split(pw, ".")
	raw, _ = base64.RawURLEncoding.DecodeString(p[1])
	up := strings.Replace(string(raw), `"cv":false`, `"cv":true`, 1)
	if _, err := v.Verify(p[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(up))+"."+p[2], now); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cv flipped: %v", err)
	}
	for _, bad := range []string{"", "v1.", "v1..", "v2." + parts[1] + "." + parts[2], parts[1] + "." + parts[2],
		tok + "x", tok[:len(tok)-2], strings.Repeat("a", MaxLen+1), "v1.e30." + parts[2]} {
		if _, err := v.Verify(bad, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Rotation: SESSION_PUBLIC_KEY may name the old and the new key.
func TestVerifierAcceptsAnyConfiguredKey(t *testing.T) {
	now := time.Now()
	a, b := NewSigner(newKey(t)), NewSigner(newKey(t))
	v, err := ParseVerifier(EncodePublicKey(a.Public()) + ", " + EncodePublicKey(b.Public()))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Signer{a, b} {
		tok, _ := s.Sign(Claims{SessionID: "s", Subject: "x", ExpiresAt: now.Add(time.Minute).Unix()})
		if _, err := v.Verify(tok, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParseVerifier(" , "); err == nil {
		t.Fatal("an empty key list was accepted")
	}
	if _, err := ParseVerifier("bm90IGEga2V5"); err == nil {
		t.Fatal("a short key was accepted")
	}
}

// SE-2: the private key file is created 0600 and refused when readable by others.
func TestKeyFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "session.key")
	k, err := LoadOrCreateKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	again, err := LoadOrCreateKey(path, false)
	if err != nil || !again.Equal(k) {
		t.Fatalf("reload: %v", err)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKey(path, false); err == nil {
		t.Fatal("a world-readable key was accepted")
	}
	if _, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "missing"), false); err == nil {
		t.Fatal("a missing key was accepted without create")
	}
}

// PC-16: the token carries the latest mailbox validation (time, mailbox)
// for the issuer to check locally; with the longest e-mail address it
// still fits MaxLen. A token without one says so.
func TestTokenCarriesMailboxValidation_PC16(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	signer := NewSigner(newKey(t))
	v := NewVerifier(signer.Public())
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".jp" // 254 characters
	c := Claims{SessionID: "01234567-89ab-7def-8123-456789abcdef", Subject: "01234567-89ab-7def-8123-456789abcdee",
		CodeVerified: true, IssuedAt: now.Unix(), ExpiresAt: now.Add(30 * time.Minute).Unix(),
		MailboxValidatedAt: now.Add(-time.Hour).Unix(), MailboxEmail: long}
	tok, err := signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok, now)
	if err != nil || got != c {
		t.Fatalf("claims %+v, %v (token of %d bytes)", got, err, len(tok))
	}
	if email, at, ok := got.MailboxValidated(); !ok || email != long || !at.Equal(now.Add(-time.Hour)) {
		t.Fatalf("MailboxValidated %q %s %v", email, at, ok)
	}
	c.MailboxValidatedAt, c.MailboxEmail = 0, ""
	tok, _ = signer.Sign(c)
	if got, err := v.Verify(tok, now); err != nil {
		t.Fatal(err)
	} else if _, _, ok := got.MailboxValidated(); ok {
		t.Fatal("a token without a validation reports one")
	}
}
