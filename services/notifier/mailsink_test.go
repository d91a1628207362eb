package notifier_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// SPEC §7.1: with SMTP_ADDR empty the notifier runs the mail sink and its
// mail lands as .eml files under DATA_DIR/mail.
func TestEmptySMTPAddrWritesEmlFiles(t *testing.T) {
	h := start(t, startOpts{noSMTP: true})
	appID := newID()
	h.Publish(events.ApplicationCancelled{ApplicationID: appID,
		Recipient: events.Recipient{Email: "sink@example.jp", Language: "ja"}, CancelledAt: h.Clock.Now()}, "")
	h.WaitEvent(events.TypeNotificationSent, appID, 10*time.Second)
	var files []string
	testenv.Eventually(t, 5*time.Second, "an .eml file", func() bool {
		files, _ = filepath.Glob(filepath.Join(h.Config.DataDir, "mail", "*.eml"))
		return len(files) == 1
	})
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "To: <sink@example.jp>") && !strings.Contains(string(b), "To: sink@example.jp") {
		t.Fatalf("the .eml is not the message:\n%s", b)
	}
}
