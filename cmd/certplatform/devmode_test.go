package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// SE-10, SPEC §7.1: the all-in-one keeps its dev conveniences and says
// so — with SMTP_ADDR, CA_DIR and the notifier key unset it creates a
// throwaway CA under DATA_DIR/ca and a key, and mail lands as .eml files
// under DATA_DIR/mail. (The service binaries refuse to start without
// these; see each service's startup test.)
func TestAllInOneKeepsDevConveniences_SE10(t *testing.T) {
	e := startE2E(t, func(c *app.Config) {
		c.SMTPAddr, c.CADir, c.NotifierPrivateKeyFile, c.NotifierPublicKey, c.WebhookSecret = "", "", "", "", ""
	}, nil)
	if !strings.Contains(e.p.Banner(), "DEVELOPMENT CONVENIENCES ARE ON") {
		t.Errorf("the banner does not say it runs in dev mode:\n%s", e.p.Banner())
	}
	for _, f := range []string{"ca/root.pem", "ca/ica1.pem", "ca/ica1.key", "ca/tls1.pem", "ca/tls1.key", "ca/data.key",
		"ct/log1.key", "notifier.key", "webhook-secret"} {
		if _, err := os.Stat(filepath.Join(e.cfg.DataDir, f)); err != nil {
			t.Errorf("dev mode did not provide %s: %v", f, err)
		}
	}
	if e.p.MailDir != filepath.Join(e.cfg.DataDir, "mail") {
		t.Fatalf("mail dir %q", e.p.MailDir)
	}
	env, err := events.New(events.ApplicationCancelled{ApplicationID: "app-devmode",
		Recipient: events.Recipient{Email: "sink@example.jp", Language: "ja"}, CancelledAt: e.p.Clock.Now()}, e.p.Clock.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.p.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(context.Background(), events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		t.Fatal(err)
	}
	var files []string
	testenv.Eventually(t, 20*time.Second, "an .eml file in the mail dir", func() bool {
		files, _ = filepath.Glob(filepath.Join(e.p.MailDir, "*.eml"))
		return len(files) == 1
	})
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "sink@example.jp") {
		t.Fatalf("the .eml is not the message:\n%s", b)
	}
}
