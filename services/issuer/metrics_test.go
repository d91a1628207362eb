package issuer_test

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/issuer/internal/issuance"
)

// metric reads one series of the issuer's /metrics by its exact name and
// labels (sorted, as the text format writes them).
func (e *env) metric(nameAndLabels string) (float64, bool) {
	e.t.Helper()
	r := e.Do("GET", "/metrics", nil)
	if r.Status != 200 {
		e.t.Fatalf("/metrics: %d", r.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), nameAndLabels+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err != nil {
				e.t.Fatalf("%s: %q", nameAndLabels, rest)
			}
			return v, true
		}
	}
	return 0, false
}

func expiring(product, days, renewed string) string {
	return `certificates_expiring{days="` + days + `",product="` + product + `",renewed="` + renewed + `",service="issuer"}`
}

// OP-3: certificates expiring in 30/60/90 days are counted by the
// service's clock, by product and by whether a renewal follows them, every
// combination present at zero; the CRL's age and the time to its
// nextUpdate add up to its validity.
func TestExpiringCertificatesAndCRLAge_OP3(t *testing.T) {
	e := start(t, nil)
	lone := e.issueCSR(e.session("applicant-x1"), e.approve(application("applicant-x1", events.KindNew, "", "")), newKey(t))
	renewedID := e.approve(application("applicant-x2", events.KindNew, "", ""))
	e.issueCSR(e.session("applicant-x2"), renewedID, newKey(t))
	e.approve(application("applicant-x2", events.KindRenewal, renewedID, "")) // ready, not yet retrieved

	check := func(when string, want map[string]float64) {
		t.Helper()
		for series, n := range want {
			if got, found := e.metric(series); !found || got != n {
				t.Errorf("%s: %s = %v (found %v), want %v", when, series, got, found, n)
			}
		}
	}
	zero := map[string]float64{}
	for _, p := range []string{"client", "server"} {
		for _, d := range []string{"30", "60", "90"} {
			zero[expiring(p, d, "false")], zero[expiring(p, d, "true")] = 0, 0
		}
	}
	check("a year ahead", zero)

	// 50 days before expiry: within 60 and 90 days, not 30.
	e.Clock.Set(lone.NotAfter.Add(-50 * day))
	want := map[string]float64{}
	for k := range zero {
		want[k] = 0
	}
	for _, renewed := range []string{"false", "true"} {
		want[expiring("client", "60", renewed)], want[expiring("client", "90", renewed)] = 1, 1
	}
	check("50 days before", want)

	// Expired: counted nowhere.
	e.Clock.Set(lone.NotAfter.Add(day))
	check("after expiry", zero)

	age, ok1 := e.metric(`crl_age_seconds{issuer="ica1",service="issuer"}`)
	next, ok2 := e.metric(`crl_time_to_next_update_seconds{issuer="ica1",service="issuer"}`)
	if !ok1 || !ok2 || age < 0 || math.Abs(age+next-issuance.CRLValidity.Seconds()) > 1e-3 {
		t.Fatalf("CRL age %v (%v), to next update %v (%v); validity %v", age, ok1, next, ok2, issuance.CRLValidity.Seconds())
	}
}
