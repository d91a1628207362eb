package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// VA-5: the reuse periods change at the SC-081 dates, decided by the
// issuance date; at each edge the day before has the old period.
func TestReusePeriodsByIssuanceDate_VA5(t *testing.T) {
	cases := []struct {
		issuance     string
		domain, orgs int
	}{
		{"2026-03-14T23:59:59Z", 398, 825},
		{"2026-03-15T00:00:00Z", 200, 398},
		{"2027-03-14T23:59:59Z", 200, 398},
		{"2027-03-15T00:00:00Z", 100, 398},
		{"2029-03-14T23:59:59Z", 100, 398},
		{"2029-03-15T00:00:00Z", 10, 398},
	}
	for _, c := range cases {
		if got := DomainReuse(at(c.issuance)); got != time.Duration(c.domain)*Day {
			t.Errorf("domain reuse at %s = %v days, want %d", c.issuance, got/Day, c.domain)
		}
		if got := OrganizationReuse(at(c.issuance)); got != time.Duration(c.orgs)*Day {
			t.Errorf("organization reuse at %s = %v days, want %d", c.issuance, got/Day, c.orgs)
		}
	}
}

// VA-5: a validation is usable for an issuance at most the reuse period
// after it, by the issuance date's period: validated 2026-09-01, usable
// for 200 days until 2027-03-14, then the 100-day period applies.
func TestValidationUsableAtReuseEdges_VA5(t *testing.T) {
	validated := at("2026-09-01T12:00:00Z")
	v := DomainValidation{Domain: "example.com", Method: MethodDNS, Status: DCVValidated, ValidatedAt: &validated}
	// 100 days after: fine under the 200-day period.
	if err := v.UsableFor(validated.Add(100 * Day)); err != nil {
		t.Errorf("100 days later: %v", err)
	}
	// 2027-03-15 is 194.5 days later: over the 100-day period then in force.
	if err := v.UsableFor(at("2027-03-15T00:00:00Z")); err == nil || !strings.Contains(err.Error(), "more than 100 days") {
		t.Errorf("at 2027-03-15: %v, want refused by the 100-day period", err)
	}
	// The day before, the 200-day period: usable.
	if err := v.UsableFor(at("2027-03-14T23:59:59Z")); err != nil {
		t.Errorf("at 2027-03-14: %v", err)
	}
	// Exactly the period is still within it; one second more is not.
	v2 := at("2027-06-01T00:00:00Z")
	v.ValidatedAt = &v2
	if err := v.UsableFor(v2.Add(100 * Day)); err != nil {
		t.Errorf("exactly 100 days: %v", err)
	}
	if err := v.UsableFor(v2.Add(100*Day + time.Second)); err == nil {
		t.Error("100 days and a second: usable")
	}
	// From 2029-03-15, 10 days.
	v3 := at("2029-03-10T00:00:00Z")
	v.ValidatedAt = &v3
	if err := v.UsableFor(at("2029-03-20T00:00:00Z")); err != nil {
		t.Errorf("10 days in 2029: %v", err)
	}
	if err := v.UsableFor(at("2029-03-20T00:00:01Z")); err == nil {
		t.Error("10 days and a second in 2029: usable")
	}
	// Not validated: never usable.
	if err := (DomainValidation{Domain: "x.com", Status: DCVPending}).UsableFor(validated); err == nil {
		t.Error("a pending validation is usable")
	}
}

// VA-2, SC-090: an e-mail validation is unusable for issuance from
// 2028-03-15, even within its reuse period.
func TestEmailValidationUnusableFromSunset_VA2(t *testing.T) {
	validated := at("2028-03-10T00:00:00Z")
	v := DomainValidation{Domain: "example.com", Method: MethodEmail, Status: DCVValidated, ValidatedAt: &validated}
	if err := v.UsableFor(at("2028-03-14T23:59:59Z")); err != nil {
		t.Errorf("before the sunset: %v", err)
	}
	if err := v.UsableFor(at("2028-03-15T00:00:00Z")); err == nil || !strings.Contains(err.Error(), "e-mail") {
		t.Errorf("at the sunset: %v, want refused", err)
	}
}

// VA-1: random values have 160 bits from the CSPRNG (≥ 112), are unique,
// and are safe in TXT records, files and URLs.
func TestRandomValues_VA1(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		v := NewRandomValue()
		if len(v) != 32 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("value %q is not 32 base32 characters", v)
		}
		if seen[v] {
			t.Fatalf("value %q drawn twice", v)
		}
		seen[v] = true
	}
	if RandomValueBytes*8 < 112 {
		t.Fatalf("%d bits < 112", RandomValueBytes*8)
	}
}

func start(t *testing.T, d string, m Method, approver string, now time.Time) (DomainValidation, string, error) {
	t.Helper()
	return Start(NewDomainValidation{ApplicationID: "app-1", CustomerID: "cust-1", Domain: d, Method: m, ApproverEmail: approver}, now)
}

// VA-1: a random value expires 30 days after it was drawn; changing the
// method draws a new one with a new lifetime (SV-8).
func TestRandomValueExpiresAfter30Days_VA1(t *testing.T) {
	now := at("2026-12-01T00:00:00Z")
	v, secret, err := start(t, "www.example.com", MethodDNS, "", now)
	if err != nil || secret != "" || v.Value == "" || v.ValueHash != HashValue(v.Value) {
		t.Fatalf("start: %v secret=%q value=%q", err, secret, v.Value)
	}
	if s := v.State(now.Add(30*Day - time.Second)); s != DCVPending {
		t.Errorf("30 days less a second: %s", s)
	}
	if s := v.State(now.Add(30 * Day)); s != DCVExpired {
		t.Errorf("30 days: %s, want expired", s)
	}
	old := v.Value
	later := now.Add(31 * Day)
	if _, err := v.ChangeMethod(MethodDNS, "", later); err != nil {
		t.Fatal(err)
	}
	if v.Value == old || v.State(later) != DCVPending || !v.ExpiresAt.Equal(later.Add(30*Day)) {
		t.Errorf("after change: value changed %v, state %s, expires %s", v.Value != old, v.State(later), v.ExpiresAt)
	}
	v.Validated(later)
	if _, err := v.ChangeMethod(MethodHTTP, "", later); !errs.Is(err, errs.KindConflict) {
		t.Errorf("change after validation: %v, want a conflict", err)
	}
}

// VA-2: the HTTP method is refused for a wildcard name; DNS is not.
func TestHTTPMethodRefusedForWildcard_VA2(t *testing.T) {
	now := at("2026-12-01T00:00:00Z")
	_, _, err := start(t, "*.example.com", MethodHTTP, "", now)
	if !errs.Is(err, errs.KindInvalid) || !strings.Contains(err.Error(), "wildcard") {
		t.Fatalf("http for a wildcard: %v", err)
	}
	v, _, err := start(t, "*.example.com", MethodDNS, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.TXTNames(); got[0] != "_pki-validation.example.com" || got[1] != "example.com" {
		t.Errorf("TXT names of a wildcard: %v", got)
	}
	// Changing an existing wildcard validation to HTTP is refused too.
	if _, err := v.ChangeMethod(MethodHTTP, "", now); !errs.Is(err, errs.KindInvalid) {
		t.Errorf("change to http: %v", err)
	}
}

// VA-2, SV-8: the e-mail method goes to a constructed address at the
// domain or a parent up to the registrable domain; it is deprecated from
// 2026-03-15 and refused from 2028-03-15; its value is handed out once
// and kept only as a hash.
func TestEmailMethod_VA2(t *testing.T) {
	now := at("2026-12-01T00:00:00Z")
	v, secret, err := start(t, "www.shop.example.co.jp", MethodEmail, "Hostmaster@Example.co.jp", now)
	if err != nil {
		t.Fatal(err)
	}
	if secret == "" || v.Value != "" || v.ValueHash != HashValue(secret) || v.ApproverEmail != "hostmaster@example.co.jp" {
		t.Fatalf("email start: secret %q value %q approver %q", secret, v.Value, v.ApproverEmail)
	}
	in := v.Instructions(now, 80)
	if !in.Deprecated || !strings.Contains(in.Note, "2028-03-15") || len(in.AllowedApprovers) != 15 {
		t.Errorf("instructions: deprecated %v, note %q, %d approvers", in.Deprecated, in.Note, len(in.AllowedApprovers))
	}
	for _, bad := range []string{"root@example.co.jp", "admin@co.jp", "admin@other.example", ""} {
		if _, _, err := start(t, "www.shop.example.co.jp", MethodEmail, bad, now); !errs.Is(err, errs.KindInvalid) {
			t.Errorf("approver %q: %v", bad, err)
		}
	}
	if _, _, err := start(t, "example.com", MethodEmail, "admin@example.com", at("2028-03-15T00:00:00Z")); err == nil ||
		!strings.Contains(err.Error(), "forbidden") {
		t.Errorf("e-mail on 2028-03-15: %v", err)
	}
	if _, _, err := start(t, "example.com", MethodEmail, "admin@example.com", at("2028-03-14T23:59:59Z")); err != nil {
		t.Errorf("e-mail on 2028-03-14: %v", err)
	}
	if in := v.Instructions(at("2026-03-14T00:00:00Z"), 80); in.Deprecated {
		t.Error("deprecated before 2026-03-15")
	}
	if _, _, err := start(t, "example.com", MethodDNS, "admin@example.com", now); !errs.Is(err, errs.KindInvalid) {
		t.Errorf("approver with dns: %v", err)
	}
}

func TestNormalizeDomain(t *testing.T) {
	good := map[string]string{"WWW.Example.COM.": "www.example.com", "*.example.com": "*.example.com", "xn--bcher-kva.example": "xn--bcher-kva.example"}
	for in, want := range good {
		if got, err := NormalizeDomain(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "localhost", "192.0.2.1", "a..b.com", "-a.com", "a_b.com", "*.com", "*.*.example.com", "exa mple.com", strings.Repeat("a", 64) + ".com"} {
		if _, err := NormalizeDomain(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// VA-2: instructions say exactly what to publish.
func TestInstructions_VA2(t *testing.T) {
	now := at("2026-12-01T00:00:00Z")
	v, _, _ := start(t, "www.example.com", MethodHTTP, "", now)
	in := v.Instructions(now, 8080)
	if !strings.HasPrefix(in.URL, "http://www.example.com:8080/.well-known/pki-validation/") || in.Value != v.Value ||
		strings.Contains(in.URL, v.Value) {
		t.Errorf("http instructions: url %q value %q", in.URL, in.Value)
	}
	if in := v.Instructions(now, 80); strings.Contains(in.URL, ":80") {
		t.Errorf("port 80 in %q", in.URL)
	}
	d, _, _ := start(t, "www.example.com", MethodDNS, "", now)
	in = d.Instructions(now, 80)
	if in.RecordType != "TXT" || in.RecordNames[0] != "_pki-validation.www.example.com" || in.Value != d.Value {
		t.Errorf("dns instructions: %+v", in)
	}
}
