package notifier_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier"
)

// SE-10: a notifier started on its own (app.Main's path, not the
// all-in-one) refuses to start, naming what is missing, without an SMTP
// server or without a usable key file — it neither writes mail to files
// nor makes itself a key. With both, the same start succeeds.
func TestStartRequiresSMTPAndKeyFile_SE10(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	ops, _ := opsauth.Parse("")
	dataDir := t.TempDir()
	goodKey := filepath.Join(t.TempDir(), "notifier.key")
	if _, err := seal.LoadOrCreate(goodKey, true); err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(t.TempDir(), "open.key")
	b, err := os.ReadFile(goodKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(openKey, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mailFrom := ""
	build := func(smtpAddr, keyFile string) error {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir = dbURL, n.URL(), dataDir
		cfg.SMTPAddr, cfg.NotifierPrivateKeyFile = smtpAddr, keyFile
		if mailFrom != "" {
			cfg.MailFrom = mailFrom
		}
		u, err := app.Build(context.Background(), notifier.Definition, app.Shared{Config: cfg, NC: nc, JS: js,
			Clock: clock.NewOffset(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Registry: prometheus.NewRegistry(), Ops: ops})
		if err == nil {
			u.Deps.Pool.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name, smtp, key, want string
	}{
		{"no SMTP_ADDR", "", goodKey, "SMTP_ADDR"},
		{"no key file at the configured path", "127.0.0.1:2525", filepath.Join(t.TempDir(), "missing.key"), "NOTIFIER_PRIVATE_KEY_FILE"},
		{"no key file at the default path", "127.0.0.1:2525", "", "NOTIFIER_PRIVATE_KEY_FILE"},
		{"a key file others can read", "127.0.0.1:2525", openKey, "NOTIFIER_PRIVATE_KEY_FILE"},
	} {
		err := build(tc.smtp, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal naming %s", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "notifier.key")); !os.IsNotExist(err) {
		t.Errorf("a refused start created a key under DATA_DIR: %v", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("a refused start wrote to DATA_DIR: %v", entries)
	}
	// NO-1: MAIL_FROM names the Message-IDs' domain; without one, no start.
	mailFrom = "Certlife CA"
	if err := build("127.0.0.1:2525", goodKey); err == nil || !strings.Contains(err.Error(), "MAIL_FROM") {
		t.Errorf("MAIL_FROM without an address: %v, want a refusal naming MAIL_FROM", err)
	}
	mailFrom = ""
	if err := build("127.0.0.1:2525", goodKey); err != nil {
		t.Fatalf("start with SMTP_ADDR and a key file: %v", err)
	}
}
