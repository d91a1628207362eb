package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/services/issuer/internal/domain"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// IS-4 (TLS BR §6.3.2, SC-081): the cap by issuance date at each edge,
// to the second, and the default validity one day under it, counted as
// the BR count (86,400-second days, notBefore and notAfter included).
func TestServerValidityCapsAtEachDateEdge_IS4(t *testing.T) {
	farCoverage := at("2035-01-01T00:00:00Z")
	for _, tc := range []struct {
		issued string
		max    int
	}{
		{"2025-05-16T00:00:00Z", 398},
		{"2026-03-14T23:59:59Z", 398},
		{"2026-03-15T00:00:00Z", 200},
		{"2026-03-15T08:59:59+09:00", 398}, // still 14 March in UTC
		{"2026-03-15T09:00:00+09:00", 200}, // midnight UTC
		{"2026-11-29T12:00:00Z", 200},
		{"2027-03-14T23:59:59Z", 200},
		{"2027-03-15T00:00:00Z", 100},
		{"2029-03-14T23:59:59Z", 100},
		{"2029-03-15T00:00:00Z", 47},
		{"2031-01-01T00:00:00Z", 47},
	} {
		now := at(tc.issued)
		if got := domain.MaxServerValidityDays(now); got != tc.max {
			t.Errorf("%s: max %d days, want %d", tc.issued, got, tc.max)
		}
		nb, na, err := domain.ServerValidity(now.Add(300*time.Millisecond), farCoverage)
		if err != nil {
			t.Fatalf("%s: %v", tc.issued, err)
		}
		if !nb.Equal(now) {
			t.Errorf("%s: notBefore %s, want the issuance second", tc.issued, nb)
		}
		want := time.Duration(tc.max-1) * 24 * time.Hour
		if got := domain.ValidityPeriod(nb, na); got != want {
			t.Errorf("%s: validity %s, want %d days (one under the maximum)", tc.issued, got, tc.max-1)
		}
		if got := na.Sub(nb); got != want-time.Second {
			t.Errorf("%s: notAfter − notBefore = %s, want %s", tc.issued, got, want-time.Second)
		}
		if domain.ValidityPeriod(nb, na) > time.Duration(tc.max)*24*time.Hour {
			t.Errorf("%s: over the maximum", tc.issued)
		}
	}
}

// IS-4: a certificate never outlives the paid coverage; a coverage that
// ends within a day, has ended, or is unknown gets no certificate.
func TestServerValidityNeverPastCoverage_IS4(t *testing.T) {
	now := at("2026-12-01T10:00:00Z")
	end := now.Add(30*24*time.Hour + 1500*time.Millisecond)
	nb, na, err := domain.ServerValidity(now, end)
	if err != nil {
		t.Fatal(err)
	}
	// The coverage ends at 10:00:01.5: the last whole second the
	// certificate covers (notAfter is inclusive) is 10:00:00.
	if !na.Equal(at("2026-12-31T10:00:00Z")) || !nb.Equal(now) {
		t.Fatalf("validity %s – %s, want to end at the last whole second before the coverage ends", nb, na)
	}
	// A coverage longer than the cap: the cap wins.
	if _, na, _ := domain.ServerValidity(now, now.AddDate(2, 0, 0)); domain.ValidityPeriod(now, na) != 199*24*time.Hour {
		t.Fatalf("capped validity %s", domain.ValidityPeriod(now, na))
	}
	for name, end := range map[string]time.Time{
		"ended":          now.Add(-time.Hour),
		"within the day": now.Add(23 * time.Hour),
		"unknown":        {},
	} {
		if _, _, err := domain.ServerValidity(now, end); !errors.Is(err, domain.ErrCoverage) {
			t.Errorf("coverage %s: %v, want a refusal", name, err)
		}
	}
	// Exactly one day of coverage is enough.
	if _, _, err := domain.ServerValidity(now, now.Add(24*time.Hour)); err != nil {
		t.Fatalf("a day of coverage: %v", err)
	}
}

// IS-9: SCTs to embed — the configured floor, raised to the browsers'
// rule of 3 for a lifetime over 180 days.
func TestRequiredSCTsByLifetime_IS9(t *testing.T) {
	nb := at("2027-03-15T00:00:00Z")
	for _, tc := range []struct {
		days  time.Duration
		floor int
		want  int
	}{
		{99, 2, 2}, {180, 2, 2}, {181, 2, 3}, {199, 2, 3}, {397, 2, 3}, {46, 3, 3}, {199, 4, 4},
	} {
		na := nb.Add(tc.days*24*time.Hour - time.Second)
		if got := domain.RequiredSCTs(nb, na, tc.floor); got != tc.want {
			t.Errorf("%d days, floor %d: %d SCTs, want %d", tc.days, tc.floor, got, tc.want)
		}
	}
	// 180 days and one second is over 180 days.
	if got := domain.RequiredSCTs(nb, nb.Add(180*24*time.Hour), 2); got != 3 {
		t.Errorf("180 days + 1 s: %d SCTs, want 3", got)
	}
}

// IS-9: CT retries by timer, bounded; the last attempt is final.
func TestCTRetriesAreBounded_IS9(t *testing.T) {
	now := at("2026-12-01T00:00:00Z")
	var total time.Duration
	for i := 1; i <= len(domain.CTRetryDelays); i++ {
		next, ok := domain.NextCTAttempt(i, now)
		if !ok || !next.After(now) {
			t.Fatalf("attempt %d: no next attempt", i)
		}
		total += next.Sub(now)
	}
	if _, ok := domain.NextCTAttempt(len(domain.CTRetryDelays)+1, now); ok {
		t.Fatal("retries never end")
	}
	if total >= domain.PrecertReuse {
		t.Fatalf("the retries span %s, beyond the precertificate's reuse (%s)", total, domain.PrecertReuse)
	}
}

// The names of a server certificate: lowercase host names, a wildcard
// only as the whole leftmost label, no IP address, no duplicates, the
// common name first.
func TestServerNames_SV8(t *testing.T) {
	got, err := domain.ServerNames("WWW.Example.com.", []string{"example.com", "www.example.com", "*.shop.example.com"})
	if err != nil || strings.Join(got, ",") != "www.example.com,example.com,*.shop.example.com" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "localhost", "127.0.0.1", "::1", "a..example.com", "-a.example.com", "a-.example.com",
		"w*w.example.com", "www.*.example.com", "*.com", "ex_ample.com", "exämple.com", "example.123",
		strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "com"} {
		if _, err := domain.ServerNames(bad, nil); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// IS-4: the reissue inside a longer coverage is due the lead before
// notAfter, never before notBefore; none when the coverage ends with
// the certificate (or within a day of it).
func TestCoverageReissueAt_IS4(t *testing.T) {
	nb, na := at("2027-04-01T00:00:00Z"), at("2027-07-08T23:59:59Z")
	if got, ok := domain.CoverageReissueAt(nb, na, at("2028-04-01T00:00:00Z"), 0); !ok || !got.Equal(na.Add(-30*domain.Day)) {
		t.Fatalf("default lead: %s %v", got, ok)
	}
	if got, ok := domain.CoverageReissueAt(nb, na, at("2028-04-01T00:00:00Z"), 200*domain.Day); !ok || !got.Equal(nb) {
		t.Fatalf("lead longer than the certificate: %s %v", got, ok)
	}
	for _, end := range []string{"2027-07-09T00:00:00Z", "2027-07-09T23:59:59Z", "0001-01-01T00:00:00Z"} {
		if _, ok := domain.CoverageReissueAt(nb, na, at(end), 0); ok {
			t.Fatalf("coverage ending %s: a reissue", end)
		}
	}
	if _, ok := domain.CoverageReissueAt(nb, na, at("2027-07-10T00:00:00Z"), 0); !ok {
		t.Fatal("coverage a day and a second longer: no reissue")
	}
}
