package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openDev(t *testing.T) (*ca.Hierarchy, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	h, err := ca.Open(dir, time.Now(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return h, dir
}

var urls = profile.URLs{CRL: "http://127.0.0.1:8080/crl/ica1.crl", CAIssuers: "http://127.0.0.1:8080/ca/ica1.pem"}

var subject = profile.Subject{NameEn: "Veri Taro", OrganizationEn: "VeriSign Japan K.K.", Email: "taro@example.co.jp"}

// IS-1: the dev hierarchy is a root and a pathlen-0 intermediate; the
// chain verifies; keys are written 0600 and loaded again on restart.
func TestDevHierarchyChainAndKeyModes_IS1(t *testing.T) {
	h, dir := openDev(t)
	if h.Root.Subject.String() == h.Issuing.Subject.String() || !h.Issuing.IsCA || h.Issuing.MaxPathLen != 0 || !h.Issuing.MaxPathLenZero {
		t.Fatalf("intermediate is not a pathlen-0 CA under the root")
	}
	if k, ok := h.Root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Fatalf("root key %T, want ECDSA P-384", h.Root.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(h.Root)
	if _, err := h.Issuing.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("intermediate does not chain to the root: %v", err)
	}
	for _, f := range []string{"root.key", "ica1.key", "data.key"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", f, info.Mode().Perm())
		}
	}
	// A restart loads the same hierarchy rather than making a new one.
	h2, err := ca.Open(dir, time.Now(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !h2.Issuing.Equal(h.Issuing) || !h2.Root.Equal(h.Root) {
		t.Fatal("reopening the CA directory made a new hierarchy")
	}
}

// IS-1 / SE-2: a key file readable by group or others stops the start.
func TestGroupReadableKeyIsRefused_IS1_SE2(t *testing.T) {
	for _, f := range []string{"ica1.key", "data.key", "root.key"} {
		t.Run(f, func(t *testing.T) {
			_, dir := openDev(t)
			if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ca.Open(dir, time.Now(), quiet)
			if !errors.Is(err, ca.ErrKeyPermissions) {
				t.Fatalf("open with a 0644 %s: %v, want ErrKeyPermissions", f, err)
			}
		})
	}
}

// A CA directory with only part of a CA is never overwritten.
func TestPartialCADirectoryIsRefused_IS1(t *testing.T) {
	_, dir := openDev(t)
	if err := os.Remove(filepath.Join(dir, "ica1.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Open(dir, time.Now(), quiet); err == nil || !strings.Contains(err.Error(), "part of a CA") {
		t.Fatalf("open of a partial CA: %v", err)
	}
}

func sign(t *testing.T, h *ca.Hierarchy, s profile.Subject, pub any) ([]byte, error) {
	t.Helper()
	serial, err := ca.NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	nb, na, err := profile.Validity("new", now, time.Time{}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return h.Sign(profile.Template(s, serial, nb, na, pub, urls), pub)
}

// IS-3: the profile passes every zlint lint for RSA and ECDSA keys, and
// the signed certificate verifies to the root.
func TestProfilePassesLints_IS3(t *testing.T) {
	h, _ := openDev(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, pub := range []any{rsaKey.Public(), ecKey.Public()} {
		der, err := sign(t, h, subject, pub)
		if err != nil {
			t.Fatalf("%T: %v", pub, err)
		}
		c, _ := x509.ParseCertificate(der)
		roots := x509.NewCertPool()
		roots.AddCert(h.Root)
		inter := x509.NewCertPool()
		inter.AddCert(h.Issuing)
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
}

// IS-3: a certificate with a lint error is not signed: no SAN, an
// organizational unit the profile does not carry, or a malformed mailbox.
func TestLintStopsBadCertificate_IS3(t *testing.T) {
	h, _ := openDev(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bad := subject
	bad.Email = ""
	_, err := sign(t, h, bad, key.Public())
	var le *ca.LintError
	if !errors.As(err, &le) || !strings.Contains(le.Error(), "e_san_shall_be_present") {
		t.Fatalf("missing SAN: %v, want a lint error", err)
	}
	bad = subject
	bad.Email = "not a mailbox"
	if _, err := sign(t, h, bad, key.Public()); !errors.As(err, &le) {
		t.Fatalf("malformed mailbox: %v, want a lint error", err)
	}
	t.Logf("findings: %v", le.Findings)
}
