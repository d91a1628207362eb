package templates

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/notifier/internal/domain"
)

// NO-2: every reason has a Japanese and an English template, each with a
// subject of its own, and nothing renders "<no value>".
func TestEveryReasonInJapaneseAndEnglish_NO2(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	data := domain.Data{
		Product: "client", Kind: "new", ApplicationID: "app-1", CertificateID: "cert-1", Serial: "0a1b",
		Name: "辺利 太郎", AcceptedAt: time.Date(2026, 4, 1, 2, 30, 0, 0, time.UTC),
		CancelDeadline: time.Date(2026, 4, 1, 3, 30, 0, 0, time.UTC), Reason: "superseded",
		RevokedAt: time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC),
		DaysBefore: 30,
	}
	for _, lang := range []string{domain.Japanese, domain.English} {
		subjects := map[string]string{}
		for _, reason := range domain.Reasons {
			subject, body, err := set.Render(reason, lang, View{Data: data, Code: "CODE-1234"})
			if err != nil {
				t.Fatalf("%s/%s: %v", lang, reason, err)
			}
			if subject == "" || body == "" || strings.Contains(body, "<no value>") {
				t.Fatalf("%s/%s: subject %q, body %q", lang, reason, subject, body)
			}
			if prev, dup := subjects[subject]; dup {
				t.Fatalf("%s: %s and %s share the subject %q", lang, prev, reason, subject)
			}
			subjects[subject] = reason
			if domain.CarriesCode(reason) != strings.Contains(body, "CODE-1234") {
				t.Fatalf("%s/%s: the code appears in the body only for code mails", lang, reason)
			}
			isJa := strings.Contains(subject+body, "様") || strings.Contains(body, "お客様")
			if (lang == domain.Japanese) != isJa {
				t.Fatalf("%s/%s is not in its language:\n%s", lang, reason, body)
			}
		}
	}
}

// NO-2: the cancel deadline is shown in JST in Japanese, in UTC in English.
func TestDeadlineInJSTForJapanese_NO2(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	v := View{Data: domain.Data{Product: "client", Kind: "renewal", ApplicationID: "app-1",
		CancelDeadline: time.Date(2026, 4, 1, 15, 30, 0, 0, time.UTC)}}
	_, ja, err := set.Render(domain.ReasonApplicationProvisional, "ja", v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ja, "2026年4月2日 00:30（日本時間）") || !strings.Contains(ja, "更新申請") {
		t.Fatalf("Japanese body lacks the JST deadline or the kind:\n%s", ja)
	}
	subject, en, err := set.Render(domain.ReasonApplicationProvisional, "en", v)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(en, "1 April 2026 15:30 UTC") || !strings.Contains(subject, "renewal application") {
		t.Fatalf("English mail lacks the UTC deadline or the kind: %s\n%s", subject, en)
	}
}

// NO-2: every mail greets the applicant by name when the event names
// them (the generic greeting is only for events from before names were
// carried).
func TestEveryMailGreetsByName_NO2(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for lang, c := range map[string]struct{ name, greeting, generic string }{
		domain.Japanese: {"辺利 太郎", "辺利 太郎 様", "お客様"},
		domain.English:  {"Veri Taro", "Dear Veri Taro,", "Dear customer"},
	} {
		for _, reason := range domain.Reasons {
			data := domain.Data{Product: "client", Kind: "new", ApplicationID: "app-1", Name: c.name, Reason: "superseded",
				NotAfter: time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), CancelDeadline: time.Date(2026, 4, 1, 3, 30, 0, 0, time.UTC)}
			_, body, err := set.Render(reason, lang, View{Data: data, Code: "CODE"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(body, c.greeting) || strings.Contains(body, c.generic) {
				t.Errorf("%s/%s does not greet %q:\n%s", lang, reason, c.greeting, body)
			}
		}
	}
}

// NO-2, PC-11: a reissue is final at acceptance, so its acceptance mail
// has no cancel deadline and no cancel paragraph; it says when the old
// certificate is revoked (at once for a lost or compromised key).
func TestReissueAcceptanceHasNoCancelParagraph_NO2_PC11(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 4, 1, 3, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		lang, reason string
		absent       []string
		present      []string
	}{
		{"ja", "key_compromise", []string{"取り消し期限", "申請の取り消しについて", "取り消し期限までに"}, []string{"受付と同時に失効しました", "取り消しおよび内容の変更はできません"}},
		{"ja", "superseded", []string{"取り消し期限"}, []string{"再発行された証明書の発行時に失効します"}},
		{"en", "key_compromise", []string{"Cancellation deadline", "Cancelling your application"}, []string{"revoked on acceptance"}},
		{"en", "superseded", []string{"Cancellation deadline", "cancel the application"}, []string{"revoked when the reissued certificate is issued"}},
	} {
		v := View{Data: domain.Data{Product: "client", Kind: "reissue", ApplicationID: "app-1", Name: "辺利 太郎",
			AcceptedAt: at, CancelDeadline: at, Reason: c.reason}}
		subject, body, err := set.Render(domain.ReasonApplicationProvisional, c.lang, v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(subject, "仮受付") || strings.Contains(subject, "provisional") {
			t.Errorf("%s/%s: subject %q", c.lang, c.reason, subject)
		}
		for _, s := range c.absent {
			if strings.Contains(body, s) {
				t.Errorf("%s/%s: has %q:\n%s", c.lang, c.reason, s, body)
			}
		}
		for _, s := range c.present {
			if !strings.Contains(body, s) {
				t.Errorf("%s/%s: lacks %q:\n%s", c.lang, c.reason, s, body)
			}
		}
	}
	// A new application's mail keeps its cancel paragraph.
	_, body, _ := set.Render(domain.ReasonApplicationProvisional, "ja", View{Data: domain.Data{Product: "client", Kind: "new",
		ApplicationID: "app-1", CancelDeadline: at}})
	if !strings.Contains(body, "取り消し期限") || !strings.Contains(body, "申請の取り消しについて") {
		t.Errorf("a new application's mail lost its cancel paragraph:\n%s", body)
	}
}
