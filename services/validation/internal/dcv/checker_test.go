package dcv

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/domain"
)

const value = "k5zq3r7m2xv4d6w8b9n1c0p5a7s2e4f6"

func txtCheck(d string) domain.CheckRequest {
	return domain.CheckRequest{Kind: domain.CheckDNSTXT, Domain: d, Names: []string{"_pki-validation." + d, d}, Expected: value}
}

func fileCheck(host string) domain.CheckRequest {
	return domain.CheckRequest{Kind: domain.CheckHTTPFile, Domain: host, Path: "/.well-known/pki-validation/f.txt", Expected: value}
}

func check(t *testing.T, c *Checker, req domain.CheckRequest) domain.Observation {
	t.Helper()
	return c.Check(context.Background(), req)
}

// VA-2, VA-8: the DNS method finds the value at _pki-validation.<domain>
// or at the domain, through the validating resolver: a signed zone's
// answer validates (secure), an unsigned one is accepted as insecure, a
// bogus one fails; a wrong value fails naming the domain, the method,
// what was expected and what was found (VA-6).
func TestDNSTXTThroughUnbound_VA2_VA6_VA8(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t)

	w.auth.TXT(t, "_pki-validation.a.signed.test", value)
	o := check(t, c, txtCheck("a.signed.test"))
	if o.Outcome != domain.OutcomeFound || o.DNSSEC != domain.DNSSECSecure {
		t.Errorf("signed, at _pki-validation: %+v", o)
	}

	w.auth.TXT(t, "b.plain.test", "v=spf1 -all", value)
	o = check(t, c, txtCheck("b.plain.test"))
	if o.Outcome != domain.OutcomeFound || o.DNSSEC != domain.DNSSECInsecure {
		t.Errorf("unsigned, at the domain: %+v", o)
	}

	w.auth.TXT(t, "_pki-validation.c.plain.test", "an-old-value")
	req := txtCheck("c.plain.test")
	o = check(t, c, req)
	if o.Outcome != domain.OutcomeNotFound {
		t.Fatalf("wrong value: %+v", o)
	}
	f := domain.FailureOf(req, "dns", o).Error()
	for _, want := range []string{"c.plain.test", "method dns", value, "an-old-value", "_pki-validation.c.plain.test"} {
		if !strings.Contains(f, want) {
			t.Errorf("failure %q does not name %q", f, want)
		}
	}

	w.auth.TXT(t, "_pki-validation.d.bogus.test", value)
	o = check(t, c, txtCheck("d.bogus.test"))
	if o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "SERVFAIL") {
		t.Errorf("bogus: %+v", o)
	}

	// A wildcard is validated at its base name.
	w.auth.TXT(t, "_pki-validation.e.signed.test", value)
	o = check(t, c, domain.CheckRequest{Kind: domain.CheckDNSTXT, Domain: "*.e.signed.test",
		Names: []string{"_pki-validation.e.signed.test", "e.signed.test"}, Expected: value})
	if o.Outcome != domain.OutcomeFound {
		t.Errorf("wildcard: %+v", o)
	}

	// An alias is followed.
	w.auth.CNAME(t, "_pki-validation.f.plain.test", "dcv.provider.plain.test")
	w.auth.TXT(t, "dcv.provider.plain.test", value)
	if o := check(t, c, txtCheck("f.plain.test")); o.Outcome != domain.OutcomeFound {
		t.Errorf("CNAME: %+v", o)
	}
}

// VA-8: the primary perspective refuses a signed answer its resolver did
// not validate (no AD); a remote perspective (not strict) records it as
// unvalidated.
func TestSignedAnswerWithoutADRefusedAtPrimary_VA8(t *testing.T) {
	w := newWorld(t)
	w.auth.TXT(t, "_pki-validation.a.signed.test", value)
	direct := func(primary bool) *Checker {
		c, err := NewChecker(Config{DNSServer: w.auth.Addr, HTTPPort: w.web.port, Timeout: 5 * time.Second, Primary: primary})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	o := check(t, direct(true), txtCheck("a.signed.test"))
	if o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "not validated (no AD)") {
		t.Errorf("primary without a validating resolver: %+v", o)
	}
	o = check(t, direct(false), txtCheck("a.signed.test"))
	if o.Outcome != domain.OutcomeFound || o.DNSSEC != domain.DNSSECUnvalidated {
		t.Errorf("remote without a validating resolver: %+v", o)
	}
}

// VA-2: the HTTP method: a 2xx holding the value passes; a 200 with
// another value fails naming both; a 404 fails; names resolve through the
// validating resolver (a bogus zone's host cannot be reached).
func TestHTTPFile_VA2_VA6(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t)
	path := "/.well-known/pki-validation/f.txt"
	for _, h := range []string{"h1.plain.test", "h2.signed.test", "h3.plain.test", "h4.plain.test", "h5.bogus.test"} {
		w.auth.A(t, h, "127.0.0.1")
	}
	w.web.page("h1.plain.test", path, value+"\n")
	w.web.page("h2.signed.test", path, "first line\n  "+value+"  \n")
	w.web.page("h3.plain.test", path, "some-other-value")
	w.web.page("h5.bogus.test", path, value)

	if o := check(t, c, fileCheck("h1.plain.test")); o.Outcome != domain.OutcomeFound {
		t.Errorf("h1: %+v", o)
	}
	if o := check(t, c, fileCheck("h2.signed.test")); o.Outcome != domain.OutcomeFound {
		t.Errorf("h2 (signed zone, value on a line): %+v", o)
	}
	req := fileCheck("h3.plain.test")
	o := check(t, c, req)
	if o.Outcome != domain.OutcomeNotFound {
		t.Fatalf("h3: %+v", o)
	}
	f := domain.FailureOf(req, "http", o).Error()
	for _, want := range []string{"h3.plain.test", "method http", value, "some-other-value", "200"} {
		if !strings.Contains(f, want) {
			t.Errorf("failure %q does not name %q", f, want)
		}
	}
	if o := check(t, c, fileCheck("h4.plain.test")); o.Outcome != domain.OutcomeNotFound || !strings.Contains(o.Detail, "404") {
		t.Errorf("h4 (404): %+v", o)
	}
	if o := check(t, c, fileCheck("h5.bogus.test")); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "SERVFAIL") {
		t.Errorf("h5 (bogus zone): %+v", o)
	}
	if w.web.hit("h5.bogus.test", path) != 0 {
		t.Error("the bogus zone's host was fetched")
	}
	if o := check(t, c, fileCheck("nowhere.plain.test")); o.Outcome != domain.OutcomeError {
		t.Errorf("no such host: %+v", o)
	}
	if o := check(t, c, fileCheck("*.h1.plain.test")); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "wildcard") {
		t.Errorf("wildcard: %+v", o)
	}
}

// VA-2, BR 3.2.2.4.18: redirects are followed only when HTTP 301, 302,
// 307 or 308 and only to ports 80 (DCV_HTTP_PORT here) and 443; a
// meta-refresh or script redirect is content, not followed.
func TestHTTPRedirectRules_VA2(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t)
	path := "/.well-known/pki-validation/f.txt"
	hosts := []string{"r301.plain.test", "target.plain.test", "r302.plain.test", "r303.plain.test", "r307.plain.test",
		"r308.plain.test", "meta.plain.test", "js.plain.test", "loop.plain.test", "p80.plain.test"}
	for _, h := range hosts {
		w.auth.A(t, h, "127.0.0.1")
	}
	w.web.page("target.plain.test", "/value", value)

	// 301 to another host on port 80 (= DCV_HTTP_PORT): followed.
	w.web.redirect("r301.plain.test", path, http.StatusMovedPermanently, w.web.url("target.plain.test", "/value"))
	o := check(t, c, fileCheck("r301.plain.test"))
	if o.Outcome != domain.OutcomeFound || len(o.Seen) != 2 || !strings.Contains(o.Seen[0], "301") {
		t.Errorf("301: %+v", o)
	}
	// An explicit :80 is port 80, which DCV_HTTP_PORT stands for.
	w.web.redirect("p80.plain.test", path, http.StatusFound, "http://target.plain.test:80/value")
	if o := check(t, c, fileCheck("p80.plain.test")); o.Outcome != domain.OutcomeFound {
		t.Errorf("302 to :80: %+v", o)
	}
	// 302 to port 8443: refused before any connection.
	w.web.redirect("r302.plain.test", path, http.StatusFound, "http://target.plain.test:8443/value")
	o = check(t, c, fileCheck("r302.plain.test"))
	if o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "8443") || !strings.Contains(o.Detail, "port 80 or 443") {
		t.Errorf("302 to 8443: %+v", o)
	}
	// 303 is not one of the four.
	w.web.redirect("r303.plain.test", path, http.StatusSeeOther, w.web.url("target.plain.test", "/value"))
	if o := check(t, c, fileCheck("r303.plain.test")); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "303") {
		t.Errorf("303: %+v", o)
	}
	// 307 to a relative location on the same host: followed.
	w.web.redirect("r307.plain.test", path, http.StatusTemporaryRedirect, "/moved")
	w.web.page("r307.plain.test", "/moved", value)
	if o := check(t, c, fileCheck("r307.plain.test")); o.Outcome != domain.OutcomeFound {
		t.Errorf("307: %+v", o)
	}
	// 308 to https on another port: refused.
	w.web.redirect("r308.plain.test", path, http.StatusPermanentRedirect, "https://target.plain.test:8443/value")
	if o := check(t, c, fileCheck("r308.plain.test")); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "8443") {
		t.Errorf("308 to https:8443: %+v", o)
	}
	// A meta refresh and a script are not redirects.
	before := w.web.hit("target.plain.test", "/value")
	w.web.page("meta.plain.test", path, `<html><head><meta http-equiv="refresh" content="0; url=`+w.web.url("target.plain.test", "/value")+`"></head></html>`)
	w.web.page("js.plain.test", path, `<script>window.location.href="`+w.web.url("target.plain.test", "/value")+`"</script>`)
	for _, h := range []string{"meta.plain.test", "js.plain.test"} {
		if o := check(t, c, fileCheck(h)); o.Outcome != domain.OutcomeNotFound {
			t.Errorf("%s: %+v", h, o)
		}
	}
	if w.web.hit("target.plain.test", "/value") != before {
		t.Error("a meta-refresh or script redirect was followed")
	}
	// A redirect loop ends.
	w.web.redirect("loop.plain.test", path, http.StatusFound, path)
	if o := check(t, c, fileCheck("loop.plain.test")); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "more than 10") {
		t.Errorf("loop: %+v", o)
	}
}

func caaCheck(d string, p domain.CAAPolicy) domain.CheckRequest {
	p.Wildcard = domain.IsWildcard(d)
	return domain.CheckRequest{Kind: domain.CheckCAA, Domain: d, CAA: &p}
}

// VA-4: CAA through the validating resolver: the relevant RRset by
// climbing, following aliases; issue/issuewild, accounturi,
// validationmethods, the critical flag; a lookup that fails (SERVFAIL of
// a bogus zone, a timeout) is never permission.
func TestCAA_VA4_VA8(t *testing.T) {
	w := newWorld(t)
	c := w.checker(t)
	p := domain.CAAPolicy{Identities: []string{"certlife.example"}, AccountURI: "acct:cust-1@certlife.example",
		MethodLabels: domain.MethodDNS.CAALabels()}
	w.auth.CAA(t, "ours.plain.test", `0 issue "certlife.example"`)
	w.auth.CAA(t, "other.plain.test", `0 issue "other.ca"`)
	w.auth.CAA(t, "wild.plain.test", `0 issue "other.ca"`, `0 issuewild "certlife.example"`)
	w.auth.CAA(t, "parent.plain.test", `0 issue "other.ca"`)
	w.auth.CNAME(t, "alias.plain.test", "cdn.provider.plain.test")
	w.auth.CAA(t, "cdn.provider.plain.test", `0 issue "other.ca"`)
	w.auth.CAA(t, "acct.plain.test", `0 issue "certlife.example; accounturi=acct:cust-2@certlife.example"`)
	w.auth.CAA(t, "myacct.plain.test", `0 issue "certlife.example; accounturi=acct:cust-1@certlife.example; validationmethods=ca-tbr-7"`)
	w.auth.CAA(t, "methods.plain.test", `0 issue "certlife.example; validationmethods=dns-01,ca-tbr-18"`)
	w.auth.CAA(t, "critical.plain.test", `0 issue "certlife.example"`, `128 tbs "unknown"`)
	w.auth.CAA(t, "signed.test", `0 issue "certlife.example"`)
	w.auth.CAA(t, "bogus.test", `0 issue "certlife.example"`)

	cases := []struct {
		name, outcome, detail, dnssec string
	}{
		{"none.plain.test", domain.OutcomeAllowed, "no CAA record", domain.DNSSECInsecure},
		{"ours.plain.test", domain.OutcomeAllowed, "permits", ""},
		{"other.plain.test", domain.OutcomeForbidden, "names other.ca", ""},
		{"*.wild.plain.test", domain.OutcomeAllowed, "issuewild", ""},
		{"wild.plain.test", domain.OutcomeForbidden, "names other.ca", ""},
		{"deep.sub.parent.plain.test", domain.OutcomeForbidden, "CAA at parent.plain.test", ""},
		{"alias.plain.test", domain.OutcomeForbidden, "CAA at alias.plain.test", ""},
		{"acct.plain.test", domain.OutcomeForbidden, "is for account acct:cust-2@certlife.example", ""},
		{"myacct.plain.test", domain.OutcomeAllowed, "permits", ""},
		{"methods.plain.test", domain.OutcomeForbidden, "not ca-tbr-7", ""},
		{"critical.plain.test", domain.OutcomeForbidden, "critical property", ""},
		{"www.signed.test", domain.OutcomeAllowed, "CAA at signed.test", domain.DNSSECSecure},
		{"www.bogus.test", domain.OutcomeError, "SERVFAIL", ""},
	}
	for _, tc := range cases {
		o := check(t, c, caaCheck(tc.name, p))
		if o.Outcome != tc.outcome || !strings.Contains(o.Detail, tc.detail) || (tc.dnssec != "" && o.DNSSEC != tc.dnssec) {
			t.Errorf("%s: %+v, want %s with %q", tc.name, o, tc.outcome, tc.detail)
		}
	}
	// REFUSED: a server that will not answer for the name.
	refusing, err := NewChecker(Config{DNSServer: w.auth.Addr, HTTPPort: 80, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if o := check(t, refusing, caaCheck("www.elsewhere.example", p)); o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "REFUSED") {
		t.Errorf("refused: %+v", o)
	}
	// Timeout: a server that never answers.
	silent, err := NewChecker(Config{DNSServer: testenv.BlackholeDNS(t), HTTPPort: 80, Timeout: 900 * time.Millisecond, Primary: true})
	if err != nil {
		t.Fatal(err)
	}
	o := check(t, silent, caaCheck("ours.plain.test", p))
	if o.Outcome != domain.OutcomeError || !strings.Contains(o.Detail, "timeout") {
		t.Errorf("timeout: %+v", o)
	}
}
