package domain

import "time"

// The CA/B Forum TLS Baseline Requirements' dates that change what this
// service accepts. Every rule that depends on one is decided by the
// issuance date (or, where nothing is issued yet, the injected clock's
// now), never by the wall clock.
var (
	// SC-081 step 1 (BR §4.2.1): domain validation reusable 200 days,
	// subject identity 398 days. SC-090: e-mail methods SHOULD NOT be used.
	SC081Step1 = utcDate(2026, time.March, 15)
	// SC-081 step 2: domain validation reusable 100 days. SC-098: the CAA
	// parameters accounturi and validationmethods MUST be processed.
	SC081Step2 = utcDate(2027, time.March, 15)
	// SC-090: the e-mail methods (BR 3.2.2.4.4, .13, .14) MUST NOT be
	// used, and earlier validations by them are no longer usable.
	EmailSunset = utcDate(2028, time.March, 15)
	// SC-081 step 3: domain validation reusable 10 days.
	SC081Step3 = utcDate(2029, time.March, 15)
)

// BRVersion is the version of the TLS Baseline Requirements whose
// methods this service implements; every attempt records it with the
// method's section (BR 3.2.2.4: the CA records the method and version).
const BRVersion = "2.2.6"

// Day is the BR's day: 86,400 seconds.
const Day = 24 * time.Hour

func utcDate(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// DomainReuse is how long a domain validation may be relied on for a
// certificate issued at issuance (VA-5, BR §4.2.1 as amended by SC-081).
func DomainReuse(issuance time.Time) time.Duration {
	switch {
	case issuance.Before(SC081Step1):
		return 398 * Day
	case issuance.Before(SC081Step2):
		return 200 * Day
	case issuance.Before(SC081Step3):
		return 100 * Day
	default:
		return 10 * Day
	}
}

// OrganizationReuse is how long verified organization (subject identity)
// data may be relied on for a certificate issued at issuance (VA-5).
func OrganizationReuse(issuance time.Time) time.Duration {
	if issuance.Before(SC081Step1) {
		return 825 * Day
	}
	return 398 * Day
}

// Reusable reports whether data obtained at obtained may be relied on
// for a certificate issued at issuance, given the reuse period: it was
// obtained no more than period before issuance (and not after it).
func Reusable(obtained, issuance time.Time, period time.Duration) bool {
	age := issuance.Sub(obtained)
	return age >= 0 && age <= period
}
