package domain

import (
	"testing"
	"time"
)

// PC-10, NO-3: which fired reminders are still worth sending.
func TestDecideReminder_PC10_NO3(t *testing.T) {
	notAfter := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	live := Certificate{ID: "c", ApplicantID: "a", Product: "client", Email: "x@example.jp", NotAfter: notAfter}
	offsets := []int{30, 10}
	cases := []struct {
		name string
		c    func(Certificate) Certificate
		days int
		now  time.Time
		want string
	}{
		{"30 days before, on time", nil, 30, ReminderDue(notAfter, 30), ""},
		{"30 days before, a week late", nil, 30, ReminderDue(notAfter, 30).Add(7 * day), ""},
		{"30-day reminder when the 10-day one is due too", nil, 30, ReminderDue(notAfter, 10), SuppressedSuperseded},
		{"10 days before", nil, 10, ReminderDue(notAfter, 10), ""},
		{"10-day reminder after expiry, inside the renewal window", nil, 10, notAfter.Add(100 * day), ""},
		{"past the renewal window", nil, 10, notAfter.Add(366 * day), SuppressedExpired},
		{"revoked", func(c Certificate) Certificate { c.RevokedAt = notAfter.Add(-40 * day); return c }, 30, ReminderDue(notAfter, 30), SuppressedRevoked},
		{"renewal retrieved", func(c Certificate) Certificate { c.RenewedBy = "c2"; return c }, 10, ReminderDue(notAfter, 10), SuppressedRenewed},
		{"unknown certificate", func(Certificate) Certificate { return Certificate{ID: "c"} }, 30, ReminderDue(notAfter, 30), SuppressedIncomplete},
		{"offset removed from the configuration", nil, 60, ReminderDue(notAfter, 60), SuppressedNoOffset},
	}
	for _, tc := range cases {
		c := live
		if tc.c != nil {
			c = tc.c(c)
		}
		if got := DecideReminder(c, tc.days, offsets, tc.now); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
