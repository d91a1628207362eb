package issuer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/issuer"
	"github.com/certlife/platform/services/issuer/internal/ca"
)

// IS-1, SE-2: the service creates its dev CA with 0600 keys on first
// start, and refuses to start when the issuing key is readable by others.
func TestIssuerRefusesGroupReadableKey_IS1_SE2(t *testing.T) {
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir = dbURL, n.URL(), t.TempDir()
	cfg.DevMode = true
	cfg.SessionPublicKey = testSessionKey(t)
	ops, _ := opsauth.Parse("")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	build := func() (*app.Unit, error) {
		return app.Build(context.Background(), issuer.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
			Clock: clock.NewOffset(), Log: log, Registry: prometheus.NewRegistry(), Ops: ops})
	}
	u, err := build()
	if err != nil {
		t.Fatalf("first start: %v", err)
	}
	u.Deps.Pool.Close()
	dir := filepath.Join(cfg.DataDir, "ca")
	for _, f := range []string{"root.key", "ica1.key", "data.key"} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, info.Mode(), err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "ica1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := build(); !errors.Is(err, ca.ErrKeyPermissions) {
		t.Fatalf("start with a 0644 issuing key: %v, want ErrKeyPermissions", err)
	}
}

// SE-10, IS-1: outside dev mode the issuer makes nothing up. Without
// PUBLIC_URL it refuses to start (every certificate carries the CRL and
// caIssuers URLs for life); without CA files it refuses and names them;
// a CA_KEY_ALGORITHM other than ecdsa or rsa is refused in any mode. In
// dev mode PUBLIC_URL defaults to the listen address.
func TestStartRefusalsOutsideDevMode_SE10_IS1(t *testing.T) {
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ops, _ := opsauth.Parse("")
	build := func(edit func(*app.Config)) (*app.Unit, error) {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir = dbURL, n.URL(), t.TempDir()
		cfg.PublicURL, cfg.DevMode = "", false
		cfg.SessionPublicKey = testSessionKey(t)
		edit(&cfg)
		u, err := app.Build(context.Background(), issuer.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
			Clock: clock.NewOffset(), Log: log, Registry: prometheus.NewRegistry(), Ops: ops})
		if err == nil {
			u.Deps.Pool.Close()
		}
		return u, err
	}
	if _, err := build(func(*app.Config) {}); err == nil || !strings.Contains(err.Error(), "PUBLIC_URL is required") {
		t.Fatalf("start without PUBLIC_URL outside dev mode: %v", err)
	}
	for _, bad := range []string{"ftp://pki.certlife.jp", "pki.certlife.jp", "http://", "http://pki.certlife.jp/?x=1"} {
		if _, err := build(func(c *app.Config) { c.PublicURL = bad }); err == nil || !strings.Contains(err.Error(), "PUBLIC_URL") {
			t.Fatalf("PUBLIC_URL %q: %v", bad, err)
		}
	}
	_, err := build(func(c *app.Config) { c.PublicURL = "http://pki.certlife.jp" })
	if !errors.Is(err, ca.ErrNoCA) || !strings.Contains(err.Error(), "root.pem") {
		t.Fatalf("start without CA files outside dev mode: %v", err)
	}
	if _, err := build(func(c *app.Config) { c.DevMode, c.CAKeyAlgorithm = true, "ed25519" }); err == nil ||
		!strings.Contains(err.Error(), "CA_KEY_ALGORITHM") {
		t.Fatalf("CA_KEY_ALGORITHM=ed25519: %v", err)
	}
	// IS-4: a coverage reissue lead that would reissue certificates as
	// soon as they are issued.
	for _, lead := range []time.Duration{0, -time.Hour, 46 * 24 * time.Hour} {
		if _, err := build(func(c *app.Config) { c.DevMode, c.CoverageReissueLead = true, lead }); err == nil ||
			!strings.Contains(err.Error(), "COVERAGE_REISSUE_LEAD") {
			t.Fatalf("COVERAGE_REISSUE_LEAD=%s: %v", lead, err)
		}
	}
	var dir string
	if _, err := build(func(c *app.Config) { c.DevMode, c.HTTPAddr = true, "127.0.0.1:18080"; dir = c.DataDir }); err != nil {
		t.Fatalf("dev mode without PUBLIC_URL: %v", err)
	}
	ica := parsePEMCerts(t, mustRead(t, filepath.Join(dir, "ca", "ica1.pem")))[0]
	if len(ica.CRLDistributionPoints) != 1 || ica.CRLDistributionPoints[0] != "http://127.0.0.1:18080/crl/root.crl" {
		t.Fatalf("dev default base URL: %v", ica.CRLDistributionPoints)
	}
}
