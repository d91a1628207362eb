package templates

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

func testInvoice() *events.InvoiceIssued {
	return &events.InvoiceIssued{
		InvoiceID: "inv-1", Number: "INV-2026-000123", PaymentReference: "PR7K3M9Q", OrderID: "order-1",
		CustomerID: "cu-1", Currency: "JPY", Subtotal: 30000, Tax: 3000, Total: 33000,
		Lines:              []events.InvoiceLine{{Description: "OV server certificate, 12 months", Quantity: 1, UnitPrice: 30000, Amount: 30000, TaxRate: 10}},
		Taxes:              []events.TaxSummary{{Rate: 10, Taxable: 30000, Tax: 3000}},
		RegistrationNumber: "T1234567890123", IssuerName: "Certlife K.K.",
		IssuedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), DueAt: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
	}
}

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
		DaysBefore: 30, Invoice: testInvoice(),
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
				NotAfter: time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC), CancelDeadline: time.Date(2026, 4, 1, 3, 30, 0, 0, time.UTC),
				Invoice: testInvoice()}
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

// SV-1, SV-2, NO-2: the server renewal notice names the certificate, its
// expiry and days left, the invoice number and amount, how to pay (card
// and bank transfer with the payment reference), the one-click links and
// the setup link when present; without links it still says how to answer.
func TestServerRenewalNotice_SV1_SV2_NO2(t *testing.T) {
	set, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	data := domain.Data{Product: "server", CertificateID: "cert-9", CommonName: "www.example.co.jp", OrderID: "order-1",
		NotAfter: time.Date(2027, 1, 30, 0, 0, 0, 0, time.UTC), DaysBefore: 60, DaysLeft: 59, Invoice: testInvoice(),
		Name: "Hosuto Ichiro"}
	for lang, want := range map[string][]string{
		"ja": {"www.example.co.jp", "2027年1月30日", "残り 59 日", "INV-2026-000123", "33,000 円", "3,000 円", "PR7K3M9Q",
			"https://r.example/renew", "https://r.example/decline", "https://r.example/setup", "T1234567890123", "renewal-intent"},
		"en": {"www.example.co.jp", "30 January 2027", "59 days left", "INV-2026-000123", "JPY 33,000", "JPY 3,000", "PR7K3M9Q",
			"https://r.example/renew", "https://r.example/decline", "https://r.example/setup", "T1234567890123", "renewal-intent"},
	} {
		v := View{Data: data, RenewURL: "https://r.example/renew", DeclineURL: "https://r.example/decline", SetupURL: "https://r.example/setup"}
		subject, body, err := set.Render(domain.ReasonServerRenewalNotice, lang, v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(subject+body, w) {
				t.Errorf("%s notice lacks %q:\n%s\n%s", lang, w, subject, body)
			}
		}
		_, bare, err := set.Render(domain.ReasonServerRenewalNotice, lang, View{Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(bare, "r.example") || !strings.Contains(bare, "renewal-intent") {
			t.Errorf("%s notice without links:\n%s", lang, bare)
		}
	}
}
