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

// SV-1, SV-2, NO-3: a server certificate's notice is relevant until its
// expiry (after it, an order is a new one, SV-5), not once declined; an
// imported one has its own schedule and needs a customer, not an applicant.
func TestDecideServerReminder_SV1_SV2_NO3(t *testing.T) {
	notAfter := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	own := Certificate{ID: "s", CustomerID: "cu", Product: "server", Email: "x@example.jp", NotAfter: notAfter}
	imp := own
	imp.Imported, imp.ApplicantID = true, ""
	if own.Schedule() != "server" || imp.Schedule() != ScheduleServerImported {
		t.Fatalf("schedules %q %q", own.Schedule(), imp.Schedule())
	}
	declined := own
	declined.DeclinedAt = notAfter.Add(-70 * day)
	for _, tc := range []struct {
		name    string
		c       Certificate
		days    int
		offsets []int
		now     time.Time
		want    string
	}{
		{"own, 60 days before", own, 60, []int{60}, ReminderDue(notAfter, 60), ""},
		{"imported, 90 days before", imp, 90, []int{90}, ReminderDue(notAfter, 90), ""},
		{"imported, late but before expiry", imp, 90, []int{90}, notAfter.Add(-day), ""},
		{"after expiry", own, 60, []int{60}, notAfter.Add(time.Second), SuppressedExpired},
		{"declined", declined, 60, []int{60}, ReminderDue(notAfter, 60), SuppressedDeclined},
	} {
		if got := DecideReminder(tc.c, tc.days, tc.offsets, tc.now); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// The setup link rides with a notice due within a day, else it gets a mail of its own.
	if !NoticeSoon(notAfter, notAfter.Add(-89*day), []int{90}) || NoticeSoon(notAfter, notAfter.Add(-92*day), []int{90}) ||
		NoticeSoon(notAfter, notAfter.Add(-89*day), nil) {
		t.Fatal("NoticeSoon")
	}
}
