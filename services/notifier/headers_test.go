package notifier_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
)

// ci: under CI=true a test whose external tool is missing fails.
var ci = os.Getenv("CI") == "true"

// pythonParse parses each raw message with Python's email package — the
// modern policy and compat32 with decode_header, as mail tools use it —
// and returns, per file, the Subject each decodes and the headers asked.
func pythonParse(t *testing.T, files []string) []map[string]string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if ci {
			t.Fatal("python3 is missing (CI=true): the Python parser check cannot run")
		}
		t.Skip("python3 not found: skipping the Python parser check (it fails under CI=true)")
	}
	const script = `
import email, email.policy, email.header, json, sys
out = []
for path in sys.argv[1:]:
    raw = open(path, 'rb').read()
    modern = email.message_from_bytes(raw, policy=email.policy.default)
    legacy = email.message_from_bytes(raw)
    out.append({
        'subject': str(modern['Subject']),
        'subject_compat32': str(email.header.make_header(email.header.decode_header(legacy['Subject']))),
        'auto_submitted': str(modern['Auto-Submitted']),
        'message_id': str(modern['Message-ID']),
    })
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, append([]string{"-c", script}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr.String())
	}
	var out []map[string]string
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != len(files) {
		t.Fatalf("python3 output %s: %v", raw, err)
	}
	return out
}

// NO-1, NO-2 on the real SMTP server of the tests, for every kind of
// mail: the subject decodes to exactly its text — no leading space — in
// Go's net/mail + mime.WordDecoder and in Python's email parser (both
// policies); Auto-Submitted: auto-generated (RFC 3834); the Message-ID's
// right side is MAIL_FROM's domain; every mail names the applicant —
// the "ready", "reissue" and "revoked" ones included — and the reissue's
// acceptance mail has no cancel paragraph (its deadline is its
// acceptance).
func TestMailHeadersSubjectsAndNames_NO1_NO2(t *testing.T) {
	h := start(t, startOpts{mailFrom: "Certlife CA <no-reply@Mail.Certlife.test>"})
	now := h.Clock.Now()
	sealed := func(code string) []byte {
		b, err := seal.Seal(h.Key.Public(), []byte(code))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ja := func(email string) events.Recipient {
		return events.Recipient{Email: email, Language: "ja", Name: "辺利 太郎"}
	}
	en := func(email string) events.Recipient {
		return events.Recipient{Email: email, Language: "en", Name: "Veri Taro"}
	}
	reissue := func(id, email, lang, reason string) events.ApplicationProvisional {
		a := application(id, email, lang)
		a.Kind, a.Coupon, a.PreviousCertificateID, a.ReissueReason = events.KindReissue, "", newID(), reason
		return events.ApplicationProvisional{Application: a, AcceptedAt: now, CancelDeadline: now}
	}
	type want struct {
		subject string
		name    string // the greeting
		absent  []string
		present []string
	}
	wants := map[string]want{}
	add := func(to string, w want, p events.Payload) {
		wants[to] = w
		h.Publish(p, "")
	}
	add("ready@example.jp", want{subject: "Certlife クライアント証明書 証明書取得に関するご案内", name: "辺利 太郎 様"},
		events.CertificateCodeIssued{ApplicationID: newID(), CertificateID: newID(), ApplicantID: "a-1",
			Reason: events.CodeForCertificateReady, Recipient: ja("ready@example.jp"), SealedCode: sealed("READY-CODE")})
	add("reissue-code@example.com", want{subject: "Certlife client certificate: your new certificate code after the reissue", name: "Dear Veri Taro,"},
		events.CertificateCodeIssued{ApplicationID: newID(), CertificateID: newID(), ApplicantID: "a-2",
			Reason: events.CodeForReissue, Recipient: en("reissue-code@example.com"), SealedCode: sealed("REISSUE-CODE")})
	add("revoked@example.jp", want{subject: "【Certlife】証明書失効のお知らせ", name: "辺利 太郎 様"},
		events.CertificateRevoked{CertificateID: newID(), ApplicationID: newID(), Serial: "0a0b", Reason: "superseded",
			RevokedAt: now, Recipient: ja("revoked@example.jp")})
	add("cancelled@example.com", want{subject: "Certlife: your application has been cancelled", name: "Dear Veri Taro,"},
		events.ApplicationCancelled{ApplicationID: newID(), Recipient: en("cancelled@example.com"), CancelledAt: now})
	add("rejected@example.jp", want{subject: "【Certlife】申請の審査結果に関するお知らせ", name: "辺利 太郎 様"},
		events.ReviewRejected{ReviewID: newID(), ApplicationID: newID(), Reason: "在籍確認ができませんでした", Reviewer: "ops:1",
			Recipient: ja("rejected@example.jp")})
	add("renewal@example.jp", want{subject: "Certlife クライアント証明書 証明書有効期限切れに関するご案内", name: "辺利 太郎 様"},
		events.CertificateCodeIssued{CertificateID: newID(), ApplicantID: "a-3", Reason: events.CodeForRenewalNotice,
			Recipient: ja("renewal@example.jp"), SealedCode: sealed("RENEW-CODE"), NotAfter: now.Add(30 * day), DaysBefore: 30})
	add("mailbox@example.jp", want{subject: "【Certlife】新しい証明書コードのお知らせ（メールアドレスの確認）", name: "辺利 太郎 様",
		present: []string{"新しい証明書コード： MAILBOX-CODE", "24 時間以内"}},
		events.CertificateCodeIssued{ApplicantID: "a-4", Reason: events.CodeForMailboxValidation,
			Recipient: ja("mailbox@example.jp"), SealedCode: sealed("MAILBOX-CODE")})
	add("reissue-ja@example.jp", want{subject: "【Certlife】再発行申請の受付完了のお知らせ", name: "辺利 太郎 様",
		absent:  []string{"取り消し期限", "申請の取り消しについて", "取り消しは"},
		present: []string{"受付と同時に失効しました", "取り消しおよび内容の変更はできません"}},
		reissue(newID(), "reissue-ja@example.jp", "ja", "key_compromise"))
	add("reissue-en@example.com", want{subject: "Certlife: your reissue application has been accepted", name: "Dear Veri Taro,",
		absent:  []string{"Cancellation deadline", "Cancelling your application", "cancel the application"},
		present: []string{"revoked when the reissued certificate is issued", "cannot be cancelled or changed"}},
		reissue(newID(), "reissue-en@example.com", "en", "superseded"))

	testenv.Eventually(t, 15*time.Second, "every mail", func() bool { return len(h.SMTP.Messages()) == len(wants) })

	dir := t.TempDir()
	var files []string
	var order []string
	idForm := regexp.MustCompile(`^<[0-9a-f]{32}@mail\.certlife\.test>$`)
	for _, m := range h.SMTP.Messages() {
		to := m.To[0]
		w, ok := wants[to]
		if !ok {
			t.Fatalf("unexpected mail to %s", to)
		}
		// Go: net/mail (which the test server parsed it with) and the word decoder.
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || got != w.subject {
			t.Errorf("%s: Go decodes the subject to %q (%v), want %q", to, got, err, w.subject)
		}
		if v := msg.Header.Get("Auto-Submitted"); v != "auto-generated" {
			t.Errorf("%s: Auto-Submitted %q", to, v)
		}
		if id := msg.Header.Get("Message-Id"); !idForm.MatchString(id) {
			t.Errorf("%s: Message-ID %q, want <32 hex@mail.certlife.test>", to, id)
		}
		// Raw form: the first encoded word is on the Subject line.
		if i := bytes.Index(m.Raw, []byte("\nSubject:")); i < 0 || bytes.HasPrefix(m.Raw[i+len("\nSubject:"):], []byte("\r\n")) ||
			bytes.HasPrefix(m.Raw[i+len("\nSubject:"):], []byte("\n")) {
			t.Errorf("%s: the Subject value starts on a folded line:\n%s", to, m.Raw[:min(len(m.Raw), 600)])
		}
		// The applicant by name, never the generic greeting.
		if !strings.Contains(m.Body, w.name) || strings.Contains(m.Body, "お客様") || strings.Contains(m.Body, "Dear customer") {
			t.Errorf("%s: the greeting is not %q:\n%s", to, w.name, m.Body)
		}
		for _, s := range w.absent {
			if strings.Contains(m.Body, s) {
				t.Errorf("%s: the body has %q:\n%s", to, s, m.Body)
			}
		}
		for _, s := range w.present {
			if !strings.Contains(m.Body, s) {
				t.Errorf("%s: the body lacks %q:\n%s", to, s, m.Body)
			}
		}
		f := filepath.Join(dir, strings.ReplaceAll(to, "@", "_")+".eml")
		if err := os.WriteFile(f, m.Raw, 0o600); err != nil {
			t.Fatal(err)
		}
		files, order = append(files, f), append(order, to)
	}

	// Python: the same .eml files.
	for i, p := range pythonParse(t, files) {
		to, w := order[i], wants[order[i]]
		if p["subject"] != w.subject || p["subject_compat32"] != w.subject {
			t.Errorf("%s: Python decodes the subject to %q (policy default) and %q (compat32), want %q",
				to, p["subject"], p["subject_compat32"], w.subject)
		}
		if p["auto_submitted"] != "auto-generated" || !idForm.MatchString(p["message_id"]) {
			t.Errorf("%s: Python reads Auto-Submitted %q, Message-ID %q", to, p["auto_submitted"], p["message_id"])
		}
	}
}
