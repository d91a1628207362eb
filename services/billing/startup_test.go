package billing

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
)

// SE-10: a billing process started on its own (app.Main's path, not the
// all-in-one) without WEBHOOK_SECRET refuses to start and names it; with
// it, the same start succeeds.
func TestStartRequiresWebhookSecret_SE10(t *testing.T) {
	t.Parallel()
	dbURL := testenv.Database(t)
	n := testenv.StartNATS(t)
	nc, js := n.Connect(t)
	ops, _ := opsauth.Parse("")
	build := func(secret string) (*app.Unit, error) {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		cfg.DatabaseURL, cfg.NatsURL, cfg.DataDir, cfg.WebhookSecret = dbURL, n.URL(), t.TempDir(), secret
		cfg.SessionPublicKey = session.EncodePublicKey(sessionSigner.Public())
		cfg.InvoiceRegistrationNumber = testRegistrationNumber
		return app.Build(context.Background(), Definition, app.Shared{Config: cfg, NC: nc, JS: js, Clock: clock.NewOffset(),
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry(), Ops: ops})
	}
	if _, err := build(""); err == nil || !strings.Contains(err.Error(), "WEBHOOK_SECRET") {
		t.Fatalf("start without WEBHOOK_SECRET: %v, want a refusal naming it", err)
	}
	u, err := build("a-webhook-secret-of-some-length")
	if err != nil {
		t.Fatalf("start with WEBHOOK_SECRET: %v", err)
	}
	u.Deps.Pool.Close()
}
