package issuer_test

import (
	"context"
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
)

// SE-10: an issuer started on its own (app.Main's path: no dev mode)
// refuses to start without its CA files — the S/MIME CA ica1 and the TLS
// CA tls1 (IS-11) — naming what is missing, and creates nothing; without
// CT logs of two operators it refuses too (IS-9); given a CA directory
// with every file and CT_LOGS, it starts.
func TestIssuerBinaryRefusesToStartWithoutCA_SE10(t *testing.T) {
	_, logs := startLogs(t, 2)
	ctLogs := strings.Join(logs, ",")
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	ops, _ := opsauth.Parse("")
	dataDir := t.TempDir()
	build := func(caDir string, edit ...func(*app.Config)) error {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir, cfg.CADir = dbURL, n.URL(), dataDir, caDir
		cfg.PublicURL, cfg.DevMode = "http://pki.certlife.test", false
		cfg.SessionPublicKey = testSessionKey(t)
		cfg.CTLogs = ctLogs
		for _, e := range edit {
			e(&cfg)
		}
		u, err := app.Build(context.Background(), issuer.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
			Clock: clock.NewOffset(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registry: prometheus.NewRegistry(), Ops: ops})
		if err == nil {
			u.Deps.Pool.Close()
		}
		return err
	}
	empty := t.TempDir()
	dev := t.TempDir()
	if err := issuer.PrepareDevCA(dev, "http://pki.certlife.test", "ecdsa", time.Now(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	noDataKey, noTLS := t.TempDir(), t.TempDir()
	for _, f := range []string{"root.pem", "ica1.pem", "ica1.key", "tls1.pem", "tls1.key", "data.key"} {
		b, err := os.ReadFile(filepath.Join(dev, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "data.key" {
			if err := os.WriteFile(filepath.Join(noDataKey, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if !strings.HasPrefix(f, "tls1.") {
			if err := os.WriteFile(filepath.Join(noTLS, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name, dir string
		want      []string
	}{
		{"no CA_DIR", "", []string{"CA_DIR is not set"}},
		{"an empty CA_DIR", empty, []string{"CA_DIR " + empty, "root.pem", "ica1.pem", "ica1.key", "tls1.pem", "tls1.key", "data.key"}},
		{"a CA_DIR without the data key", noDataKey, []string{"CA_DIR " + noDataKey + " lacks data.key"}},
		{"a CA_DIR without the TLS CA", noTLS, []string{"CA_DIR " + noTLS + " lacks tls1.pem, tls1.key"}},
	} {
		err := build(tc.dir)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want a refusal naming %q", tc.name, err, w)
			}
		}
	}
	for _, dir := range []string{empty, dataDir} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a refused start created files in %s: %v", dir, entries)
		}
	}
	for name, logs := range map[string]string{"no CT_LOGS": "", "one CT log": strings.Split(ctLogs, ",")[0],
		"two logs of one operator": strings.ReplaceAll(ctLogs, ",", "@op,") + "@op"} {
		if err := build(dev, func(c *app.Config) { c.CTLogs = logs }); err == nil || !strings.Contains(err.Error(), "CT_LOGS") {
			t.Errorf("%s: %v, want a refusal naming CT_LOGS", name, err)
		}
	}
	if err := build(dev); err != nil {
		t.Fatalf("start with a complete CA_DIR: %v", err)
	}
}
