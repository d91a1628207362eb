package notifier_test

import (
	"context"
	"encoding/hex"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// NO-1: the same event published twice (two envelopes, as a replaying
// upstream would) yields one mail, with the stable Message-ID.
func TestEventPublishedTwiceSendsOneMail_NO1(t *testing.T) {
	h := start(t, startOpts{})
	appID, to := newID(), "taro@example.co.jp"
	ev := events.ApplicationProvisional{Application: application(appID, to, "ja"),
		AcceptedAt: h.Clock.Now(), CancelDeadline: h.Clock.Now().Add(time.Hour)}
	first := h.Publish(ev, "")
	second := h.Publish(ev, "")
	h.waitHandled(t, "notifier-mail", first)
	h.waitHandled(t, "notifier-mail", second)
	sent, err := events.Decode[events.NotificationSent](h.WaitEvent(events.TypeNotificationSent, appID, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	wantID := domain.MessageID(to, domain.ReasonApplicationProvisional, appID, "certlife.example") // MAIL_FROM's default
	if sent.MessageID != wantID {
		t.Fatalf("NotificationSent message_id %q, want %q", sent.MessageID, wantID)
	}
	var pendingTimers int
	if err := h.DB.QueryRow(context.Background(), `SELECT count(*) FROM notifier.timers WHERE kind = 'notifier.send'`).Scan(&pendingTimers); err != nil {
		t.Fatal(err)
	}
	if pendingTimers != 0 {
		t.Fatalf("%d send timers left after the mail went out", pendingTimers)
	}
	mails := h.SMTP.To(to)
	if len(mails) != 1 {
		t.Fatalf("got %d mails for one application, want 1", len(mails))
	}
	if got := mails[0].Msg.Header.Get("Message-Id"); got != wantID {
		t.Fatalf("Message-ID header %q, want %q", got, wantID)
	}
	if n := len(h.deliveries(t, to, "")); n != 1 {
		t.Fatalf("%d deliveries logged, want 1", n)
	}
	if n := len(h.Events(events.TypeNotificationSent)); n != 1 {
		t.Fatalf("%d NotificationSent events, want 1", n)
	}
}

// NO-1: a 451 from the SMTP server is recorded and retried after the
// backoff delay; the message goes out exactly once.
func TestSMTPFailureRetriedWithBackoff_NO1(t *testing.T) {
	smtp := testenv.StartSMTP(t)
	var failing atomic.Bool
	failing.Store(true)
	smtp.Fail = failing.Load
	h := start(t, startOpts{smtp: smtp})
	appID, to := newID(), "hanako@example.co.jp"
	h.Publish(events.ApplicationCancelled{ApplicationID: appID, Coupon: "12345678-87654321",
		Recipient: events.Recipient{Email: to, Language: "en"}, CancelledAt: h.Clock.Now()}, "")

	var d delivery
	testenv.Eventually(t, 10*time.Second, "the first, failed attempt", func() bool {
		ds := h.deliveries(t, to, domain.ReasonApplicationCancelled)
		if len(ds) == 1 {
			d = ds[0]
		}
		return len(ds) == 1 && d.Attempts == 1
	})
	if d.Status != "pending" || d.LastError == nil || !strings.Contains(*d.LastError, "451") || d.NextAttemptAt == nil {
		t.Fatalf("after a 451: %+v", d)
	}
	if len(smtp.Messages()) != 0 {
		t.Fatal("a refused message was recorded as received")
	}
	failing.Store(false)
	h.Advance(20 * time.Second) // the first retry waits 30 s
	if d := h.deliveries(t, to, "")[0]; d.Attempts != 1 || d.Status != "pending" {
		t.Fatalf("retried before its backoff delay: %+v", d)
	}
	h.Advance(11 * time.Second)
	h.WaitEvent(events.TypeNotificationSent, appID, 10*time.Second)
	d = h.deliveries(t, to, "")[0]
	if d.Status != "sent" || d.Attempts != 2 || d.SentAt == nil {
		t.Fatalf("after the retry: %+v", d)
	}
	h.Advance(time.Hour) // nothing else is due
	if n := len(smtp.To(to)); n != 1 {
		t.Fatalf("got %d mails, want exactly 1", n)
	}
	metrics := string(h.Do("GET", "/metrics", nil).Body)
	if !strings.Contains(metrics, `mail_send_failures_total{reason="application_cancelled",service="notifier"} 1`) {
		t.Fatalf("the failure is not counted in /metrics")
	}
}

// NO-2: a Japanese applicant gets the Japanese mail (deadline in JST), an
// English one the English mail, and any other language English.
func TestMailInTheApplicantsLanguage_NO2(t *testing.T) {
	h := start(t, startOpts{})
	deadline := time.Date(2026, 4, 1, 15, 30, 0, 0, time.UTC)
	for _, c := range []struct{ to, lang string }{{"ja@example.jp", "ja"}, {"en@example.com", "en"}, {"fr@example.fr", "fr"}} {
		h.Publish(events.ApplicationProvisional{Application: application(newID(), c.to, c.lang),
			AcceptedAt: deadline.Add(-time.Hour), CancelDeadline: deadline}, "")
	}
	testenv.Eventually(t, 10*time.Second, "three mails", func() bool { return len(h.SMTP.Messages()) == 3 })

	ja := h.SMTP.To("ja@example.jp")[0]
	if s := subjectOf(t, ja); s != "【Certlife】新規申請の仮受付完了のお知らせ" {
		t.Fatalf("Japanese subject %q", s)
	}
	for _, want := range []string{"辺利 太郎 様", "取り消し期限　： 2026年4月2日 00:30（日本時間）", "日本ベリサイン株式会社", "申請の取り消し"} {
		if !strings.Contains(ja.Body, want) {
			t.Fatalf("Japanese body lacks %q:\n%s", want, ja.Body)
		}
	}
	if ct := ja.Msg.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
		t.Fatalf("Content-Type %q", ct)
	}
	for _, to := range []string{"en@example.com", "fr@example.fr"} {
		en := h.SMTP.To(to)[0]
		if s := subjectOf(t, en); s != "Certlife: your new application has been received (provisional acceptance)" {
			t.Fatalf("English subject %q for %s", s, to)
		}
		for _, want := range []string{"Dear Veri Taro,", "Cancellation deadline: 1 April 2026 15:30 UTC", "VeriSign Japan K.K."} {
			if !strings.Contains(en.Body, want) {
				t.Fatalf("English body for %s lacks %q:\n%s", to, want, en.Body)
			}
		}
	}
	if n := len(h.deliveries(t, "fr@example.fr", "")); n != 1 || h.deliveries(t, "fr@example.fr", "")[0].Language != "en" {
		t.Fatal("the fallback language is not logged as en")
	}
}

// NO-2, PC-11, PC-10: each code reason has its own mail; the two renewal
// notices of one certificate are two messages.
func TestCodeMailsPerReason_NO2(t *testing.T) {
	h := start(t, startOpts{})
	cert, to := newID(), "code@example.jp"
	notAfter := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	seal1 := func(code string) []byte {
		b, err := seal.Seal(h.Key.Public(), []byte(code))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		reason, code string
		days         int
	}{{events.CodeForReissue, "REISSUE-CODE-1", 0}, {events.CodeForRenewalNotice, "RENEW-CODE-30", 30}, {events.CodeForRenewalNotice, "RENEW-CODE-10", 10}} {
		h.Publish(events.CertificateCodeIssued{CertificateID: cert, ApplicantID: "applicant-1", Reason: c.reason,
			Recipient: events.Recipient{Email: to, Language: "ja"}, SealedCode: seal1(c.code), NotAfter: notAfter, DaysBefore: c.days}, "")
	}
	testenv.Eventually(t, 10*time.Second, "three code mails", func() bool { return len(h.SMTP.To(to)) == 3 })
	bySubject := map[string][]string{}
	for _, m := range h.SMTP.To(to) {
		bySubject[subjectOf(t, m)] = append(bySubject[subjectOf(t, m)], m.Body)
	}
	reissue := bySubject["Certlife クライアント証明書 再発行に伴う証明書コードのご案内"]
	if len(reissue) != 1 || !strings.Contains(reissue[0], "新しい証明書コード： REISSUE-CODE-1") {
		t.Fatalf("reissue mail: %v", bySubject)
	}
	notices := bySubject["Certlife クライアント証明書 証明書有効期限切れに関するご案内"]
	if len(notices) != 2 {
		t.Fatalf("want two renewal notices, got subjects %v", bySubject)
	}
	joined := strings.Join(notices, "\n")
	for _, want := range []string{"RENEW-CODE-30", "RENEW-CODE-10", "（残り 30 日）", "（残り 10 日）",
		"有効期限　　　： 2027年4月1日 09:00（日本時間）", "2027年3月2日 から 2028年3月31日 まで", "クーポン"} {
		if !strings.Contains(joined, want) {
			t.Fatalf("renewal notices lack %q:\n%s", want, joined)
		}
	}
}

// NO-4: the delivery log has every mail with its reason and the event
// that caused it; a rejection seen twice (review, then application) is
// one mail.
func TestDeliveryLogNamesReasonAndCause_NO4(t *testing.T) {
	h := start(t, startOpts{})
	appID, to := newID(), "rejected@example.jp"
	cause := h.Publish(events.ReviewRejected{ReviewID: newID(), ApplicationID: appID, Reason: "在籍確認ができませんでした",
		Reviewer: "ops:1234", Recipient: events.Recipient{Email: to, Language: "ja"}}, "")
	sentEnv := h.WaitEvent(events.TypeNotificationSent, appID, 10*time.Second)
	later := h.Publish(events.ApplicationRejected{ApplicationID: appID, Reason: "review_rejected",
		Recipient: events.Recipient{Email: to, Language: "ja"}}, "")
	h.waitHandled(t, "notifier-mail", later)

	ds := h.deliveries(t, to, domain.ReasonApplicationRejected)
	if len(ds) != 1 {
		t.Fatalf("want one logged rejection, got %d", len(ds))
	}
	d := ds[0]
	if d.CausedBy != cause.ID.String() || d.Reason != domain.ReasonApplicationRejected || d.Status != "sent" ||
		d.SentAt == nil || d.Attempts != 1 || d.SubjectID != appID || d.Recipient != to {
		t.Fatalf("delivery log row %+v (cause %s)", d, cause.ID)
	}
	sent, err := events.Decode[events.NotificationSent](sentEnv)
	if err != nil {
		t.Fatal(err)
	}
	if sent.CausedBy != cause.ID.String() || sent.Reason != d.Reason || sent.MessageID != d.MessageID || sent.Recipient != to {
		t.Fatalf("NotificationSent %+v does not match the log %+v", sent, d)
	}
	if sentEnv.CorrelationID != cause.CorrelationID {
		t.Fatal("NotificationSent does not carry the cause's correlation")
	}
	mails := h.SMTP.To(to)
	if len(mails) != 1 || !strings.Contains(mails[0].Body, "在籍確認ができませんでした") {
		t.Fatalf("want one rejection mail with the reviewer's reason, got %d", len(mails))
	}
	if n := len(h.deliveries(t, to, domain.ReasonCertificateReady)); n != 0 {
		t.Fatalf("the reason filter let %d other rows through", n)
	}

	// The log is for admins, and its filters are validated (SE-4, SE-5).
	if r := h.Do("GET", "/ops/v1/deliveries", nil); r.Status != 401 {
		t.Fatalf("without a token: %d", r.Status)
	}
	for _, q := range []string{"reason=nope", "limit=0", "limit=x", "status=lost", "recipient=not-an-address"} {
		if r := h.Ops("GET", "/ops/v1/deliveries?"+q, nil); r.Status != 422 {
			t.Fatalf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}

// SE-1: the certificate code is in the mail, and nowhere in the notifier's
// tables (the sealed bytes are wiped once sent) nor in NotificationSent.
func TestCertificateCodeOnlyInTheMail_SE1(t *testing.T) {
	h := start(t, startOpts{})
	code := "K7Q2M9XD4TPA8WZN3HJC"
	sealed, err := seal.Seal(h.Key.Public(), []byte(code))
	if err != nil {
		t.Fatal(err)
	}
	appID, cert, to := newID(), newID(), "ready@example.jp"
	h.Publish(events.CertificateCodeIssued{ApplicationID: appID, CertificateID: cert, ApplicantID: "applicant-1",
		Reason: events.CodeForCertificateReady, Recipient: events.Recipient{Email: to, Language: "ja"}, SealedCode: sealed}, "")
	sentEnv := h.WaitEvent(events.TypeNotificationSent, appID, 10*time.Second)

	mails := h.SMTP.To(to)
	if len(mails) != 1 || !strings.Contains(mails[0].Body, "証明書コード： "+code) {
		t.Fatalf("the mail does not carry the code (%d mails)", len(mails))
	}
	if s := subjectOf(t, mails[0]); s != "Certlife クライアント証明書 証明書取得に関するご案内" {
		t.Fatalf("subject %q", s)
	}
	forms := []string{code, strings.ToLower(code), hex.EncodeToString([]byte(code))}
	ctx := context.Background()
	rows, err := h.DB.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'notifier'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 5 {
		t.Fatalf("tables %v: %v", tables, err)
	}
	for _, table := range tables {
		// Each row as text: bytea columns show as hex, so the hex form is searched too.
		rows, err := h.DB.Query(ctx, `SELECT t::text FROM notifier.`+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range texts {
			for _, f := range forms {
				if strings.Contains(strings.ToLower(row), strings.ToLower(f)) {
					t.Fatalf("notifier.%s holds the certificate code: %s", table, row)
				}
			}
		}
	}
	var sealedLeft int
	if err := h.DB.QueryRow(ctx, `SELECT count(*) FROM notifier.deliveries WHERE sealed_code IS NOT NULL`).Scan(&sealedLeft); err != nil {
		t.Fatal(err)
	}
	if sealedLeft != 0 {
		t.Fatal("the sealed code was not wiped after the send")
	}
	raw, _ := sentEnv.Marshal()
	for _, f := range forms {
		if strings.Contains(strings.ToLower(string(raw)), strings.ToLower(f)) {
			t.Fatalf("NotificationSent carries the code: %s", raw)
		}
	}
}

// SE-1: a code sealed to another key cannot be opened: the message is
// given up at once (nothing is sent), not retried.
func TestCodeSealedToAnotherKeyIsGivenUp_SE1(t *testing.T) {
	h := start(t, startOpts{})
	other, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(other.Public(), []byte("SOMECODE"))
	if err != nil {
		t.Fatal(err)
	}
	to := "wrongkey@example.jp"
	h.Publish(events.CertificateCodeIssued{ApplicationID: newID(), CertificateID: newID(), ApplicantID: "a",
		Reason: events.CodeForCertificateReady, Recipient: events.Recipient{Email: to, Language: "en"}, SealedCode: sealed}, "")
	testenv.Eventually(t, 10*time.Second, "the delivery given up", func() bool {
		ds := h.deliveries(t, to, "")
		return len(ds) == 1 && ds[0].Status == "failed"
	})
	if len(h.SMTP.To(to)) != 0 {
		t.Fatal("a mail went out without its code")
	}
}
