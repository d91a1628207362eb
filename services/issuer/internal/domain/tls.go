package domain

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Day is the TLS BR's day (§6.3.2): 86,400 seconds.
const Day = 24 * time.Hour

// The SC-081 schedule of TLS BR §6.3.2 (IS-4): the maximum validity of a
// server certificate by the date it is issued. The dates are midnight UTC.
var (
	SC081Step1 = time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC) // 398 → 200 days
	SC081Step2 = time.Date(2027, 3, 15, 0, 0, 0, 0, time.UTC) // 200 → 100 days
	SC081Step3 = time.Date(2029, 3, 15, 0, 0, 0, 0, time.UTC) // 100 → 47 days
)

// MaxServerValidityDays is the most days a server certificate issued at
// t may be valid (TLS BR §6.3.2, IS-4).
func MaxServerValidityDays(t time.Time) int {
	switch t = t.UTC(); {
	case t.Before(SC081Step1):
		return 398
	case t.Before(SC081Step2):
		return 200
	case t.Before(SC081Step3):
		return 100
	default:
		return 47
	}
}

// ServerValidityMarginDays: certificates are issued this many days under
// the maximum by default (IS-4). The BR count any fraction of a second
// over a day as another day, so issuing at the exact maximum leaves no
// room for a rounding error anywhere.
const ServerValidityMarginDays = 1

// MinServerValidity is the shortest validity worth issuing: a coverage
// that ends sooner gets no certificate.
const MinServerValidity = Day

// ErrCoverage: the paid coverage cannot hold a certificate.
var ErrCoverage = errors.New("coverage")

// ServerValidity is the validity of a server certificate issued at now
// for a coverage ending at coverageEnd (IS-4): notBefore = now (whole
// seconds); notAfter such that the validity period — which RFC 5280 and
// the BR count inclusively, notBefore and notAfter both included — is
// the maximum for the issuance date less the margin, in whole days; and
// never past the coverage: a certificate ends at the cap or one second
// before the coverage does, whichever comes first.
func ServerValidity(now, coverageEnd time.Time) (notBefore, notAfter time.Time, err error) {
	nb := now.UTC().Truncate(time.Second)
	if coverageEnd.IsZero() {
		return nb, time.Time{}, fmt.Errorf("%w: the application carries no coverage end, so no validity can be set (IS-4)", ErrCoverage)
	}
	days := MaxServerValidityDays(nb) - ServerValidityMarginDays
	na := nb.Add(time.Duration(days)*Day - time.Second)
	if end := coverageEnd.UTC().Truncate(time.Second).Add(-time.Second); end.Before(na) {
		na = end
	}
	if ValidityPeriod(nb, na) < MinServerValidity {
		return nb, na, fmt.Errorf("%w: the coverage ends at %s, less than a day after issuance", ErrCoverage, coverageEnd.UTC().Format(time.RFC3339))
	}
	return nb, na, nil
}

// ValidityPeriod is the validity period as the BR count it: from
// notBefore to notAfter, both included (one second more than the
// difference).
func ValidityPeriod(notBefore, notAfter time.Time) time.Duration {
	return notAfter.Sub(notBefore) + time.Second
}

// RequiredSCTs is how many SCTs a server certificate must embed: the
// configured floor (IS-9: at least 2), raised to what the browsers' CT
// policies ask of embedded SCTs — Chrome's and Apple's: 2 for a lifetime
// of 180 days or less, 3 beyond.
func RequiredSCTs(notBefore, notAfter time.Time, floor int) int {
	need := 2
	if ValidityPeriod(notBefore, notAfter) > 180*Day {
		need = 3
	}
	return max(need, floor)
}

// MinSCTOperators is how many distinct log operators the embedded SCTs
// come from, at least (IS-9; Chrome's policy).
const MinSCTOperators = 2

// CTRetryDelays are the waits before each new issuance attempt after the
// CT logs gave too few SCTs (IS-9): a timer retries, never a loop in a
// consumer. When they run out the issuance fails for good (an operator
// may retry it). Their sum stays well under PrecertReuse, so retries
// submit the same precertificate.
var CTRetryDelays = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}

// NextCTAttempt is when the attempt after the attempt-th (1-based) runs;
// ok is false when no automatic attempt follows.
func NextCTAttempt(attempt int, now time.Time) (next time.Time, ok bool) {
	if attempt < 1 || attempt > len(CTRetryDelays) {
		return time.Time{}, false
	}
	return now.Add(CTRetryDelays[attempt-1]), true
}

// PrecertReuse: a precertificate younger than this is submitted again on
// a retry (its SCTs so far stay valid); an older one is replaced by a new
// precertificate with a new serial and a validity starting at the retry.
const PrecertReuse = 24 * time.Hour

// CheckDNSName refuses a name that cannot be a dNSName of a publicly
// trusted server certificate: not a lowercase LDH host name of at least
// two labels, an IP address, or a wildcard anywhere but as the whole
// leftmost label (TLS BR §7.1.2.7.12, RFC 5280 §4.2.1.6). Whether the
// TLD exists is zlint's to say.
func CheckDNSName(name string) error {
	if name == "" {
		return errors.New("an empty name")
	}
	if len(name) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", name)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%q is an IP address, not a host name", name)
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q is not a fully qualified domain name", name)
	}
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 2 {
			continue
		}
		if l == "" || len(l) > 63 {
			return fmt.Errorf("%q has an empty label or one longer than 63 characters", name)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q has a label starting or ending with a hyphen", name)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q holds %q: a name has lowercase letters, digits, hyphens and a leading \"*.\" only", name, c)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("%q ends in a numeric label", name)
	}
	return nil
}

// ServerNames normalizes and checks the names a server certificate
// covers: the common name first, then the additional domains, lowercased,
// without duplicates.
func ServerNames(commonName string, domains []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, n := range append([]string{commonName}, domains...) {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if seen[n] {
			continue
		}
		if err := CheckDNSName(n); err != nil {
			return nil, err
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) > 100 {
		return nil, fmt.Errorf("%d names: a certificate covers at most 100", len(out))
	}
	return out, nil
}

// CoverageReissueLead is how long before a server certificate's notAfter
// its reissue inside the coverage begins by default (IS-4: before the
// current certificate's last 30 days; COVERAGE_REISSUE_LEAD).
const CoverageReissueLead = 30 * Day

// MaxCoverageReissueLead bounds COVERAGE_REISSUE_LEAD under the shortest
// certificate (46 days from 2029-03-15), so that no certificate is
// reissued as soon as it is issued.
const MaxCoverageReissueLead = 45 * Day

// CoverageReissueAt is when the reissue of a server certificate valid
// from notBefore to notAfter, whose coverage ends at coverageEnd, is due
// (IS-4): lead before notAfter, never before notBefore. There is none
// (false) when the coverage ends with the certificate, or so soon after
// it that no certificate could fill the rest (MinServerValidity).
func CoverageReissueAt(notBefore, notAfter, coverageEnd time.Time, lead time.Duration) (time.Time, bool) {
	if coverageEnd.IsZero() || coverageEnd.Sub(notAfter) <= MinServerValidity {
		return time.Time{}, false
	}
	if lead <= 0 {
		lead = CoverageReissueLead
	}
	at := notAfter.Add(-lead)
	if at.Before(notBefore) {
		at = notBefore
	}
	return at, true
}
