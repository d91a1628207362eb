package notice

import (
	"regexp"
	"testing"
)

// NO-1: the Message-ID is a pure function of (recipient, reason, subject
// key), so a retry or a republished event is the same message.
func TestMessageIDIsStable_NO1(t *testing.T) {
	id := MessageID("Taro@Example.co.jp ", ReasonCertificateReady, "cert-1")
	if !regexp.MustCompile(`^<[0-9a-f]{32}@certlife>$`).MatchString(id) {
		t.Fatalf("Message-ID %q is not <32 hex@certlife>", id)
	}
	if again := MessageID("taro@example.co.jp", ReasonCertificateReady, "cert-1"); again != id {
		t.Fatalf("same recipient (other case), reason and key gave %q and %q", id, again)
	}
	for _, other := range []string{
		MessageID("hanako@example.co.jp", ReasonCertificateReady, "cert-1"),
		MessageID("taro@example.co.jp", ReasonReissue, "cert-1"),
		MessageID("taro@example.co.jp", ReasonCertificateReady, "cert-2"),
		MessageID("taro@example.co.jp", ReasonRenewalNotice, RenewalNoticeKey("cert-1", 30)),
	} {
		if other == id {
			t.Fatalf("a different recipient, reason or key gave the same Message-ID %s", id)
		}
	}
	if RenewalNoticeKey("c", 30) == RenewalNoticeKey("c", 10) {
		t.Fatal("the 30- and 10-day notices of one certificate must be distinct messages")
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
