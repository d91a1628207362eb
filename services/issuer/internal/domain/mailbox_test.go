package domain

import (
	"testing"
	"time"
)

// PC-16 (S/MIME BR 4.2.1): a mailbox validation is reusable for 30 days,
// for that mailbox only.
func TestMailboxValidatedWithin30Days_PC16(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const mbox = "taro@example.co.jp"
	for _, c := range []struct {
		name  string
		email string
		when  time.Time
		now   time.Time
		want  bool
	}{
		{"at once", mbox, at, at, true},
		{"30 days less a second", mbox, at, at.Add(30*24*time.Hour - time.Second), true},
		{"exactly 30 days", mbox, at, at.Add(30 * 24 * time.Hour), false},
		{"31 days", mbox, at, at.Add(31 * 24 * time.Hour), false},
		{"case differs", "Taro@Example.co.jp", at, at.Add(time.Hour), true},
		{"another mailbox", "hanako@example.co.jp", at, at.Add(time.Hour), false},
		{"no validation", "", time.Time{}, at, false},
		{"intake's clock a second ahead", mbox, at.Add(time.Second), at, true},
	} {
		if got := MailboxValidated(mbox, c.email, c.when, c.now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if MailboxValidated("", "", at, at) {
		t.Error("a certificate without a mailbox is never validated")
	}
}
