package intake_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/pkg/testenv"
)

// signIn opens a session and returns its claims, as any service reads them.
func (r *rig) signIn(t *testing.T, body map[string]any) session.Claims {
	t.Helper()
	resp := r.Do("POST", "/v1/sessions", body)
	if resp.Status != 201 {
		t.Fatalf("sign-in: %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	c, err := r.verifier.Verify(s.Token, r.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mailboxRow is the validation intake recorded for an applicant's e-mail.
func (r *rig) mailboxRow(t *testing.T, email string) (at *time.Time, mailbox *string) {
	t.Helper()
	err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(),
		`SELECT mailbox_validated_at, mailbox_validated_email FROM applicants WHERE email = $1`, email).Scan(&at, &mailbox)
	if err != nil {
		t.Fatal(err)
	}
	return at, mailbox
}

// PC-16 (S/MIME BR 3.2.2.2): a sign-in with a code less than 24 hours old
// validates the mailbox the code was sent to, and the session token says
// so (time and mailbox); at 24 hours the code still signs in (PC-7,
// PC-14: it stays the credential) but validates nothing — the token
// carries the latest earlier validation, or none. Edges to the second on
// a frozen clock.
func TestCodeYoungerThan24HoursValidatesMailbox_PC16(t *testing.T) {
	r := newRig(t, testenv.Options{Clock: clock.NewFrozen(time.Now().UTC().Truncate(time.Second))})
	const email = "mailbox@example.co.jp"
	_, _, code := r.readyCode(t, email, "new")
	mailed := r.Clock.Now()

	r.Advance(24*time.Hour - time.Second)
	first := r.Clock.Now()
	c := r.signIn(t, login(email, "an application password", code))
	if c.MailboxValidatedAt != first.Unix() || c.MailboxEmail != email {
		t.Fatalf("a code %s old: claims %+v", first.Sub(mailed), c)
	}
	if at, mbox := r.mailboxRow(t, email); at == nil || !at.Equal(first) || mbox == nil || *mbox != email {
		t.Fatalf("recorded validation %v %v", at, mbox)
	}

	r.Advance(time.Second) // the code is exactly 24 hours old
	c = r.signIn(t, login(email, "an application password", code))
	if !c.CodeVerified || c.MailboxValidatedAt != first.Unix() || c.MailboxEmail != email {
		t.Fatalf("a code 24 hours old: claims %+v, want the validation of %s", c, first)
	}
	if at, _ := r.mailboxRow(t, email); at == nil || !at.Equal(first) {
		t.Fatalf("a 24-hour-old code recorded a validation at %v", at)
	}
	// A session without the code carries no validation.
	if c := r.signIn(t, map[string]any{"email": email, "password": "an application password"}); c.MailboxValidatedAt != 0 || c.MailboxEmail != "" {
		t.Fatalf("password-only session: %+v", c)
	}

	// Never validated, and the code is 24 hours old: signed in, no validation.
	const late = "late-mailbox@example.co.jp"
	_, _, lateCode := r.readyCode(t, late, "new")
	r.Advance(24 * time.Hour)
	if c := r.signIn(t, login(late, "an application password", lateCode)); !c.CodeVerified || c.MailboxValidatedAt != 0 || c.MailboxEmail != "" {
		t.Fatalf("stale code, no earlier validation: %+v", c)
	}
	if at, _ := r.mailboxRow(t, late); at != nil {
		t.Fatalf("recorded %v", at)
	}
}

// codeRequest posts to /v1/certificate-codes.
func (r *rig) codeRequest(email, password string) testenv.Response {
	return r.Do("POST", "/v1/certificate-codes", map[string]any{"email": email, "password": password})
}

// mailboxCodes returns the codes intake issued for mailbox validation.
func (r *rig) mailboxCodes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, env := range r.Events(events.TypeCertificateCodeIssued) {
		ev, err := events.Decode[events.CertificateCodeIssued](env)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Reason == events.CodeForMailboxValidation {
			out = append(out, r.openCode(t, env))
		}
	}
	return out
}

// PC-16: POST /v1/certificate-codes answers 202 with the same body for a
// known e-mail with its password, a known one with a wrong password and
// an unknown one; only the first mails a code (sealed, to the applicant,
// by name), which replaces the previous code (PC-10) and validates the
// mailbox when used. At most 3 an hour per e-mail, known or not: the
// fourth is the same 429 for both; an hour later it works again.
func TestCertificateCodesSameAnswerOneCodeHourlyBound_PC16_PC10(t *testing.T) {
	r := newRig(t, testenv.Options{Clock: clock.NewFrozen(time.Now().UTC().Truncate(time.Second))})
	const email = "ask@example.co.jp"
	appID, _, old := r.readyCode(t, email, "new")
	r.Advance(25 * time.Hour) // the mailed code no longer validates the mailbox

	answers := []testenv.Response{
		r.codeRequest(email, "an application password"),
		r.codeRequest(email, "not the password"),
		r.codeRequest("nobody@example.co.jp", "an application password"),
	}
	for i, a := range answers {
		if a.Status != 202 || string(a.Body) != string(answers[0].Body) || a.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("answer %d: %d %s (first: %s)", i, a.Status, a.Body, answers[0].Body)
		}
	}
	var fresh string
	testenv.Eventually(t, 10*time.Second, "the new code", func() bool {
		codes := r.mailboxCodes(t)
		if len(codes) == 1 {
			fresh = codes[0]
		}
		return len(codes) == 1
	})
	provisional, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, appID, time.Second))
	for _, env := range r.Events(events.TypeCertificateCodeIssued) {
		ev, _ := events.Decode[events.CertificateCodeIssued](env)
		if ev.Reason != events.CodeForMailboxValidation {
			continue
		}
		if ev.ApplicantID != provisional.Application.ApplicantID || ev.Recipient.Email != email || ev.Recipient.Name != "辺利 太郎" ||
			ev.Recipient.Language != "ja" || ev.CertificateID != "" {
			t.Fatalf("code event %+v", ev)
		}
	}
	if fresh == old {
		t.Fatal("the same code again")
	}
	r.assertNotInSchema(t, fresh)
	// Only the latest code is accepted (PC-10); it validates the mailbox.
	if resp := r.Do("POST", "/v1/sessions", login(email, "an application password", old)); resp.Status != 401 {
		t.Fatalf("the replaced code: %d", resp.Status)
	}
	if c := r.signIn(t, login(email, "an application password", fresh)); c.MailboxValidatedAt != r.Clock.Now().Unix() || c.MailboxEmail != email {
		t.Fatalf("the new code: %+v", c)
	}

	// The hourly bound: each e-mail has had 2 (known) and 1 (unknown).
	if a := r.codeRequest(email, "not the password"); a.Status != 202 {
		t.Fatalf("third for the known e-mail: %d %s", a.Status, a.Body)
	}
	for i := 0; i < 2; i++ {
		if a := r.codeRequest("nobody@example.co.jp", "x-password"); a.Status != 202 {
			t.Fatalf("request %d for the unknown e-mail: %d %s", i+2, a.Status, a.Body)
		}
	}
	known, unknown := r.codeRequest(email, "an application password"), r.codeRequest("nobody@example.co.jp", "an application password")
	if known.Status != 429 || unknown.Status != 429 || string(known.Body) != string(unknown.Body) {
		t.Fatalf("fourth in an hour: %d %s / %d %s", known.Status, known.Body, unknown.Status, unknown.Body)
	}
	if retry, _ := strconv.Atoi(known.Header.Get("Retry-After")); retry < 1 || retry > 3600 {
		t.Fatalf("Retry-After %q", known.Header.Get("Retry-After"))
	}
	if n := len(r.mailboxCodes(t)); n != 1 {
		t.Fatalf("%d codes mailed, want 1", n)
	}
	r.Advance(time.Hour)
	if a := r.codeRequest(email, "an application password"); a.Status != 202 {
		t.Fatalf("an hour later: %d %s", a.Status, a.Body)
	}
	testenv.Eventually(t, 10*time.Second, "a second code", func() bool { return len(r.mailboxCodes(t)) == 2 })

	// Input is checked first: a missing field names itself.
	if resp := r.Do("POST", "/v1/certificate-codes", map[string]any{"email": email}); resp.Status != 422 ||
		asProblem(t, resp).fields() != "password" {
		t.Fatalf("no password: %d %s", resp.Status, resp.Body)
	}
}
