package mailsink_test

import (
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlife/platform/services/notifier/mailsink"
)

// SPEC §7.1 (SMTP_ADDR empty): every message received is written to the
// mail directory as an .eml file readable only by its owner.
func TestSinkWritesEachMessageAsEml(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	addr, stop, err := mailsink.Start(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for i, subject := range []string{"first", "second"} {
		msg := "From: ca@certlife.example\r\nTo: taro@example.jp\r\nSubject: " + subject + "\r\n\r\nbody " + subject + "\r\n"
		if err := smtp.SendMail(addr, nil, "ca@certlife.example", []string{"taro@example.jp"}, []byte(msg)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("mail dir: %v %v", fi, err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("want 2 .eml files, got %v (%v)", files, err)
	}
	var all string
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	for _, want := range []string{"Subject: first", "Subject: second", "body second", "X-Envelope-To: <taro@example.jp>"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the .eml files lack %q:\n%s", want, all)
		}
	}
	stop()
	if err := smtp.SendMail(addr, nil, "a@b.c", []string{"d@e.f"}, []byte("Subject: x\r\n\r\nx")); err == nil {
		t.Fatal("the sink still accepts mail after stop")
	}
}
