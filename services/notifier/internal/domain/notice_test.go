package domain

import (
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// NO-1: the Message-ID is a pure function of (recipient, reason, subject
// key), so a retry or a republished event is the same message.
func TestMessageIDIsStable_NO1(t *testing.T) {
	id := MessageID("Taro@Example.co.jp ", ReasonCertificateReady, "cert-1", "certlife.example")
	if !regexp.MustCompile(`^<[0-9a-f]{32}@certlife\.example>$`).MatchString(id) {
		t.Fatalf("Message-ID %q is not <32 hex@certlife.example>", id)
	}
	if again := MessageID("taro@example.co.jp", ReasonCertificateReady, "cert-1", "certlife.example"); again != id {
		t.Fatalf("same recipient (other case), reason and key gave %q and %q", id, again)
	}
	for _, other := range []string{
		MessageID("hanako@example.co.jp", ReasonCertificateReady, "cert-1", "certlife.example"),
		MessageID("taro@example.co.jp", ReasonReissue, "cert-1", "certlife.example"),
		MessageID("taro@example.co.jp", ReasonCertificateReady, "cert-2", "certlife.example"),
		MessageID("taro@example.co.jp", ReasonRenewalNotice, RenewalNoticeKey("cert-1", 30), "certlife.example"),
	} {
		if other == id {
			t.Fatalf("a different recipient, reason or key gave the same Message-ID %s", id)
		}
	}
	if RenewalNoticeKey("c", 30) == RenewalNoticeKey("c", 10) {
		t.Fatal("the 30- and 10-day notices of one certificate must be distinct messages")
	}
}

// NO-1: the Message-ID's right side is the domain of MAIL_FROM, whatever
// form the sender address takes; a sender without a domain is refused.
func TestMailDomainOfSender_NO1(t *testing.T) {
	for from, want := range map[string]string{
		"Certlife CA <no-reply@certlife.example>":   "certlife.example",
		"no-reply@Mail.CA.example.jp":               "mail.ca.example.jp",
		`"認証局" <no-reply@pki.example.co.jp>`:        "pki.example.co.jp",
		"=?UTF-8?B?6KqN6Ki85bGA?= <ca@example.org>": "example.org",
	} {
		got, err := MailDomain(from)
		if err != nil || got != want {
			t.Errorf("MailDomain(%q) = %q, %v; want %q", from, got, err, want)
		}
	}
	for _, bad := range []string{"", "Certlife CA", "no-reply@", "<no-reply>"} {
		if d, err := MailDomain(bad); err == nil {
			t.Errorf("MailDomain(%q) = %q, want an error", bad, d)
		}
	}
}

// NO-2: the applicant's language, English when there is no template for it.
func TestLanguageFallsBackToEnglish_NO2(t *testing.T) {
	for in, want := range map[string]string{"ja": "ja", "ja-JP": "ja", "JA": "ja", "en": "en", "fr": "en", "": "en", "jav": "en"} {
		if got := Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

// NO-1: a failed message is retried after each delay of RetryDelays in
// turn, then given up.
func TestNextAttempt_NO1(t *testing.T) {
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	for i, d := range RetryDelays {
		next, ok := NextAttempt(i+1, now)
		if !ok || !next.Equal(now.Add(d)) {
			t.Fatalf("after attempt %d: %v %v, want %v", i+1, next, ok, now.Add(d))
		}
	}
	if _, ok := NextAttempt(len(RetryDelays)+1, now); ok {
		t.Fatal("retried after the last delay")
	}
}

// NO-4: the error kept in the delivery log is bounded and stays valid
// UTF-8 (Postgres refuses anything else).
func TestLastErrorIsBoundedUTF8_NO4(t *testing.T) {
	var d Delivery
	d.MarkRetry(strings.Repeat("あ", 400), time.Now())
	if d.LastError == nil || len(*d.LastError) > maxLastError || !utf8.ValidString(*d.LastError) || d.Attempts != 1 {
		t.Fatalf("last error %d bytes, valid %v, attempts %d", len(*d.LastError), utf8.ValidString(*d.LastError), d.Attempts)
	}
}
