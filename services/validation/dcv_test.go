package validation

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

func perspectivesOf(a api.Attempt) map[string]api.Perspective {
	out := map[string]api.Perspective{}
	for _, p := range a.Perspectives {
		out[p.Name] = p
	}
	return out
}

// SV-8, VA-2, VA-6, VA-7, VA-9: the DNS method end to end in the
// service: instructions say what to publish; a check before publishing
// fails naming the domain, the method, the value expected and what was
// found; after publishing it validates, corroborated by the five remote
// perspectives, with CAA checked too; every attempt is recorded with
// each perspective's observation, in the service's table and in the
// audit log, and listed newest first for reviewers.
func TestDomainValidationByDNS_SV8_VA2_VA6_VA7_VA9(t *testing.T) {
	e := startDCV(t, envOptions{})
	var hooked []validationapp.CheckResult
	e.dcv().OnChecked = func(_ context.Context, tx pgx.Tx, r validationapp.CheckResult) error {
		if tx == nil {
			t.Error("OnChecked without a transaction")
		}
		hooked = append(hooked, r)
		return nil
	}
	in := e.mustStart("app-dns", "www.d1.plain.test", domain.MethodDNS, "")
	if in.Status != domain.DCVPending || in.RecordType != "TXT" || len(in.Value) != 32 ||
		strings.Join(in.RecordNames, ",") != "_pki-validation.www.d1.plain.test,www.d1.plain.test" {
		t.Fatalf("instructions: %+v", in)
	}
	// The same start again (a redelivered event) draws no new value.
	if again := e.mustStart("app-dns", "www.d1.plain.test", domain.MethodDNS, ""); again.Value != in.Value || again.ValidationID != in.ValidationID {
		t.Errorf("second start: %+v", again)
	}

	r := e.check(in.ValidationID)
	if r.Status != domain.DCVPending || r.Failure == nil {
		t.Fatalf("before publishing: %+v", r)
	}
	msg := r.Failure.Error()
	for _, want := range []string{"www.d1.plain.test", "method dns", in.Value, "_pki-validation.www.d1.plain.test TXT: none"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not name %q", msg, want)
		}
	}

	e.txt("_pki-validation.www.d1.plain.test", in.Value)
	r = e.check(in.ValidationID)
	if r.Status != domain.DCVValidated || r.Failure != nil || r.CAA == nil || !r.CAA.Allowed || len(r.Attempts) != 2 {
		t.Fatalf("after publishing: %+v (caa %+v)", r, r.CAA)
	}
	if len(hooked) != 2 || hooked[1].Status != domain.DCVValidated {
		t.Errorf("OnChecked calls: %+v", hooked)
	}
	// A validated domain is not checked again.
	if again := e.check(in.ValidationID); again.Status != domain.DCVValidated || len(again.Attempts) != 0 {
		t.Errorf("check after validation: %+v", again)
	}

	page := e.attempts("domain=www.d1.plain.test")
	if len(page.Validations) != 3 {
		t.Fatalf("attempts: %+v", page.Validations)
	}
	caa, passed, failed := page.Validations[0], page.Validations[1], page.Validations[2]
	if caa.Kind != "caa" || caa.Result != "passed" || passed.Kind != "domain" || passed.Result != "passed" ||
		failed.Result != "failed" || !passed.At.After(failed.At) && !passed.At.Equal(failed.At) {
		t.Fatalf("order or results: %+v", page.Validations)
	}
	if passed.ValueSHA256 != domain.HashValue(in.Value) || passed.Method != "dns" || passed.BRSection != "3.2.2.4.7" ||
		passed.BRVersion != domain.BRVersion || passed.ApplicationID != "app-dns" {
		t.Errorf("passed attempt: %+v", passed)
	}
	ps := perspectivesOf(passed)
	if len(ps) != 6 || !ps["primary"].Primary || ps["primary"].DNSSEC != domain.DNSSECInsecure {
		t.Fatalf("perspectives: %+v", passed.Perspectives)
	}
	for _, a := range agentNames {
		p := ps[a.Name]
		if p.Region != a.Region || p.Outcome != "found" || p.Corroborates == nil || !*p.Corroborates ||
			!strings.Contains(strings.Join(p.Seen, " "), in.Value) {
			t.Errorf("perspective %s: %+v", a.Name, p)
		}
	}
	if len(perspectivesOf(failed)) != 1 {
		t.Errorf("a failed primary check asks no remote: %+v", failed.Perspectives)
	}
	// The same attempts are in the audit log, hash-chained (OP-4).
	entries, err := audit.List(context.Background(), e.pool(), audit.Filter{Action: "validation.", Subject: "www.d1.plain.test"})
	if err != nil {
		t.Fatal(err)
	}
	actions := []string{}
	for _, en := range entries {
		actions = append(actions, en.Action)
	}
	if strings.Join(actions, ",") != "validation.domain.failed,validation.domain.passed,validation.caa.passed" {
		t.Errorf("audit actions: %v", actions)
	}
	if rep, err := audit.Verify(context.Background(), e.pool()); err != nil || !rep.OK {
		t.Errorf("audit chain: %+v %v", rep, err)
	}
	// GET …/dcv's view.
	list, err := e.dcv().Instructions(context.Background(), "app-dns")
	if err != nil || len(list) != 1 || list[0].Status != domain.DCVValidated || list[0].ValidatedAt == nil {
		t.Errorf("instructions after: %+v %v", list, err)
	}
}

// VA-2: the HTTP method end to end: the file at the URL the instructions
// give, corroborated by the remote perspectives.
func TestDomainValidationByHTTP_VA2_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	in := e.mustStart("app-http", "www.h1.plain.test", domain.MethodHTTP, "")
	u, err := url.Parse(in.URL)
	if err != nil || u.Host != "www.h1.plain.test:"+itoa(e.web.port) || !strings.HasPrefix(u.Path, "/.well-known/pki-validation/") ||
		strings.Contains(in.URL, in.Value) {
		t.Fatalf("instructions: %+v", in)
	}
	e.host("www.h1.plain.test")
	if r := e.check(in.ValidationID); r.Status != domain.DCVPending || !strings.Contains(r.Failure.Error(), "404") {
		t.Errorf("before the file: %+v", r)
	}
	e.web.page("www.h1.plain.test", u.Path, in.Value+"\n")
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVValidated {
		t.Fatalf("after the file: %+v %v", r, r.Failure)
	}
	if _, err := e.start(validationapp.StartRequest{ApplicationID: "app-http", CustomerID: "c", Domain: "*.h1.plain.test",
		Method: domain.MethodHTTP}); !errs.Is(err, errs.KindInvalid) || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("http for a wildcard: %v", err)
	}
}

// VA-8: through the validating resolver, a signed zone validates (its
// observation is secure), a zone with broken signatures fails the DNS
// method and CAA, an unsigned zone is accepted as unsigned.
func TestDNSSECSignedBogusUnsigned_VA8(t *testing.T) {
	e := startDCV(t, envOptions{})
	// The agents have their own views: only the primary serves the
	// signed and bogus zones, the agents see them unsigned.
	for _, v := range e.views {
		v.AddZone(t, "signed.test.", 0)
		v.AddZone(t, "bogus.test.", 0)
	}
	signed := e.mustStart("app-s", "www.signed.test", domain.MethodDNS, "")
	bogus := e.mustStart("app-b", "www.bogus.test", domain.MethodDNS, "")
	plain := e.mustStart("app-p", "www.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.signed.test", signed.Value)
	e.txt("_pki-validation.www.bogus.test", bogus.Value)
	e.txt("www.plain.test", plain.Value)

	if r := e.check(signed.ValidationID); r.Status != domain.DCVValidated {
		t.Errorf("signed: %+v %v", r, r.Failure)
	}
	if r := e.check(plain.ValidationID); r.Status != domain.DCVValidated {
		t.Errorf("unsigned: %+v %v", r, r.Failure)
	}
	r := e.check(bogus.ValidationID)
	if r.Status != domain.DCVPending || !strings.Contains(r.Failure.Error(), "SERVFAIL") {
		t.Errorf("bogus: %+v %v", r, r.Failure)
	}
	dnssec := func(d string) string {
		page := e.attempts("domain=" + d)
		for _, a := range page.Validations {
			if a.Kind == "domain" {
				return perspectivesOf(a)["primary"].DNSSEC
			}
		}
		return ""
	}
	if got := dnssec("www.signed.test"); got != domain.DNSSECSecure {
		t.Errorf("signed zone's observation: %q", got)
	}
	if got := dnssec("www.plain.test"); got != domain.DNSSECInsecure {
		t.Errorf("unsigned zone's observation: %q", got)
	}
	caa, err := e.dcv().CheckCAA(context.Background(), "www.bogus.test", "acct:c@certlife.example", domain.MethodDNS, e.p.Clock.Now(), "app-b")
	if err != nil || caa.Allowed || !strings.Contains(caa.Failure.Error(), "SERVFAIL") {
		t.Errorf("CAA of the bogus zone: %+v %v", caa, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
