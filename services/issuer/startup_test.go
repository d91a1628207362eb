package issuer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

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
