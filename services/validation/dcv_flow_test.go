package validation

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// frozenAt is a frozen clock at t (RFC 3339).
func frozenAt(t string) *clock.Offset {
	at, err := time.Parse(time.RFC3339, t)
	if err != nil {
		panic(err)
	}
	return clock.NewFrozen(at)
}

// plaintextIn reports the tables of the schema (and the outbox) whose
// rows hold s anywhere (SE-1).
func (e *dcvEnv) plaintextIn(s string) []string {
	e.t.Helper()
	var found []string
	for _, table := range []string{"domain_validations", "validation_attempts", "audit_log", "outbox", "registry_organizations"} {
		var n int
		err := e.pool().QueryRow(context.Background(),
			`SELECT count(*) FROM `+table+` t WHERE strpos(row_to_json(t)::text, $1) > 0`, s).Scan(&n)
		if err != nil {
			e.t.Fatalf("%s: %v", table, err)
		}
		if n > 0 {
			found = append(found, table)
		}
	}
	return found
}

// SV-8, VA-2, SE-1: the e-mail method: the random value reaches the
// notifier only sealed in DomainValidationEmailRequested; nothing in the
// database, the outbox, the audit log or the stream holds it in
// plaintext; following the link (ConfirmEmail) validates, once; the
// validation record shows its hash only. The method is marked
// deprecated.
func TestEmailValidation_SE1_SV8_VA2_VA9(t *testing.T) {
	e := startDCV(t, envOptions{})
	in := e.mustStart("app-mail", "www.e1.plain.test", domain.MethodEmail, "admin@e1.plain.test")
	if in.ApproverEmail != "admin@e1.plain.test" || !in.Deprecated || in.Value != "" || in.Status != domain.DCVPending {
		t.Fatalf("instructions: %+v", in)
	}
	env := e.p.WaitEvent(events.TypeDomainValidationEmailRequested, "app-mail", wait)
	req := decode[events.DomainValidationEmailRequested](t, env)
	if req.Recipient.Email != "admin@e1.plain.test" || req.Domain != "www.e1.plain.test" || !req.Deprecated ||
		req.ValidationID != in.ValidationID.String() {
		t.Fatalf("event: %+v", req)
	}
	raw, err := e.notifier.Open(req.SealedValue)
	if err != nil {
		t.Fatal(err)
	}
	value := string(raw)
	if len(value) != 32 {
		t.Fatalf("value %q", value)
	}
	if where := e.plaintextIn(value); len(where) > 0 {
		t.Errorf("the random value is in plaintext in %v", where)
	}
	if strings.Contains(string(env.Data), value) {
		t.Error("the random value is in plaintext on the stream")
	}
	// Checking does nothing until the link is followed.
	if r := e.check(in.ValidationID); r.Status != domain.DCVPending || !strings.Contains(r.Failure.Error(), "admin@e1.plain.test") {
		t.Errorf("check: %+v", r)
	}
	if _, err := e.dcv().ConfirmEmail(context.Background(), "not-"+value); !errs.Is(err, errs.KindNotFound) {
		t.Errorf("a wrong value: %v", err)
	}
	r, err := e.dcv().ConfirmEmail(context.Background(), value)
	if err != nil || r.Status != domain.DCVValidated || r.CAA == nil || !r.CAA.Allowed {
		t.Fatalf("confirm: %+v %v", r, err)
	}
	if _, err := e.dcv().ConfirmEmail(context.Background(), value); !errs.Is(err, errs.KindNotFound) {
		t.Errorf("a second confirmation: %v", err)
	}
	page := e.attempts("domain=www.e1.plain.test")
	var mail *validationAttempt
	for i, a := range page.Validations {
		if a.Kind == "domain" {
			mail = &page.Validations[i]
		}
	}
	if mail == nil || mail.ValueSHA256 != domain.HashValue(value) || mail.Result != "passed" || mail.BRSection != "3.2.2.4.4" ||
		mail.Actor != "approver:admin@e1.plain.test" {
		t.Fatalf("recorded: %+v", page.Validations)
	}
	r2 := ops(t, e.p, "GET", "/ops/v1/validations?domain=www.e1.plain.test", nil)
	if strings.Contains(string(r2.Body), value) {
		t.Error("GET /ops/v1/validations shows the e-mail random value")
	}
	if where := e.plaintextIn(value); len(where) > 0 {
		t.Errorf("after confirmation, the random value is in plaintext in %v", where)
	}
}

// VA-2: from 2028-03-15 the e-mail method is refused (by date); before,
// it is accepted and marked deprecated.
func TestEmailMethodRefusedFrom20280315_VA2(t *testing.T) {
	e := startDCV(t, envOptions{clock: frozenAt("2028-03-14T23:00:00Z")})
	if in := e.mustStart("app-e2", "e2.plain.test", domain.MethodEmail, "postmaster@e2.plain.test"); !in.Deprecated {
		t.Errorf("not marked deprecated: %+v", in)
	}
	if err := e.p.Clock.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err := e.start(validationapp.StartRequest{ApplicationID: "app-e3", CustomerID: "c", Domain: "e3.plain.test",
		Method: domain.MethodEmail, ApproverEmail: "admin@e3.plain.test"})
	if !errs.Is(err, errs.KindInvalid) || !strings.Contains(err.Error(), "2028-03-15") {
		t.Errorf("e-mail on 2028-03-15: %v", err)
	}
	// And the earlier e-mail validation is unusable for issuance now.
	ok, us, err := e.dcv().UsableFor(context.Background(), "app-e2", e.p.Clock.Now())
	if err != nil || ok || len(us) != 1 || us[0].Usable {
		t.Errorf("usable: %v %+v %v", ok, us, err)
	}
}

// VA-1, SV-8: a random value expires 30 days after it was drawn (the
// injected clock): the check then says so and asks for a new one;
// changing the method draws a new value with a new lifetime; a validated
// domain's method cannot change.
func TestRandomValueExpiryAndMethodChange_VA1_SV8(t *testing.T) {
	e := startDCV(t, envOptions{clock: frozenAt("2026-12-01T09:00:00Z")})
	in := e.mustStart("app-x", "www.x.plain.test", domain.MethodDNS, "")
	e.p.Clock.Advance(30*24*time.Hour - time.Second)
	if r := e.check(in.ValidationID); r.Status != domain.DCVPending || len(r.Attempts) != 1 {
		t.Errorf("30 days less a second: %+v", r)
	}
	e.p.Clock.Advance(time.Second)
	e.txt("_pki-validation.www.x.plain.test", in.Value)
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVExpired || len(r.Attempts) != 0 || !strings.Contains(r.Failure.Error(), "expired") {
		t.Fatalf("at 30 days: %+v", r)
	}
	// Change to HTTP: a new value, a file name, a new lifetime.
	ch, err := e.change(in.ValidationID, domain.MethodHTTP, "")
	if err != nil || ch.Value == in.Value || ch.URL == "" || ch.Status != domain.DCVPending ||
		!ch.ExpiresAt.Equal(e.p.Clock.Now().Add(30*24*time.Hour)) {
		t.Fatalf("change: %+v %v", ch, err)
	}
	// The old TXT record no longer validates anything.
	e.host("www.x.plain.test")
	if r := e.check(in.ValidationID); r.Status != domain.DCVPending {
		t.Errorf("after change, old record: %+v", r)
	}
	u, _ := url.Parse(ch.URL)
	e.web.page("www.x.plain.test", u.Path, ch.Value)
	if r := e.check(in.ValidationID); r.Status != domain.DCVValidated {
		t.Fatalf("http after change: %+v %v", r, r.Failure)
	}
	if _, err := e.change(in.ValidationID, domain.MethodDNS, ""); !errs.Is(err, errs.KindConflict) {
		t.Errorf("change after validation: %v", err)
	}
	// Changing to e-mail requests a mail; to a bad approver is refused.
	other := e.mustStart("app-y", "www.y.plain.test", domain.MethodDNS, "")
	if _, err := e.change(other.ValidationID, domain.MethodEmail, "webmaster@example.org"); !errs.Is(err, errs.KindInvalid) {
		t.Errorf("bad approver: %v", err)
	}
	if ch, err := e.change(other.ValidationID, domain.MethodEmail, "webmaster@y.plain.test"); err != nil || ch.ApproverEmail != "webmaster@y.plain.test" {
		t.Fatalf("to e-mail: %+v %v", ch, err)
	}
	e.p.WaitEvent(events.TypeDomainValidationEmailRequested, "app-y", wait)
}

// VA-5: a validated domain is reused for the same customer within the
// reuse period (by date), never for another customer; usability for an
// issuance date follows the period in force then.
func TestDomainValidationReuse_VA5(t *testing.T) {
	e := startDCV(t, envOptions{clock: frozenAt("2026-12-01T09:00:00Z")})
	start := func(app, customer string) domain.Instructions {
		in, err := e.start(validationapp.StartRequest{ApplicationID: app, CustomerID: customer, AccountURI: e.dcv().ManualAccountURI(customer),
			Domain: "www.r.plain.test", Method: domain.MethodDNS})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	first := start("app-r1", "cust-r")
	e.txt("_pki-validation.www.r.plain.test", first.Value)
	if r := e.check(first.ValidationID); r.Status != domain.DCVValidated {
		t.Fatalf("first: %+v %v", r, r.Failure)
	}
	validatedAt := e.p.Clock.Now()
	e.p.Clock.Advance(90 * 24 * time.Hour) // 2027-03-01: the 200-day period
	if in := start("app-r2", "cust-r"); in.Status != domain.DCVValidated || in.Value != "" || !strings.Contains(in.Note, "reused") {
		t.Errorf("same customer, 90 days later: %+v", in)
	}
	if in := start("app-r3", "cust-other"); in.Status != domain.DCVPending {
		t.Errorf("another customer: %+v", in)
	}
	// app-r2 relies on the validation of 2026-12-01: usable for an
	// issuance up to 200 days after it while the 200-day period holds,
	// i.e. until 2027-03-14; from 2027-03-15 the period is 100 days.
	for _, c := range []struct {
		at string
		ok bool
	}{{"2027-03-14T23:59:59Z", true}, {"2027-03-15T00:00:00Z", false}} {
		at, _ := time.Parse(time.RFC3339, c.at)
		ok, us, err := e.dcv().UsableFor(context.Background(), "app-r2", at)
		if err != nil || ok != c.ok {
			t.Errorf("usable at %s: %v %+v %v (validated %s)", c.at, ok, us, err, validatedAt)
		}
	}
	e.p.Clock.Advance(15 * 24 * time.Hour) // 2027-03-16: 105 days old, the period is now 100 days
	if in := start("app-r4", "cust-r"); in.Status != domain.DCVPending {
		t.Errorf("after the reuse period: %+v", in)
	}
}

// validationAttempt is the API's attempt.
type validationAttempt = api.Attempt
