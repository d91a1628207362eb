package domain

// Renewal reminders (PC-10, NO-3): when they are due for a certificate,
// and whether one that fires — on time or late, after the notifier was
// down — is still worth sending.

import (
	"fmt"
	"time"

	"github.com/certlife/platform/pkg/events"
)

const day = 24 * time.Hour

// Certificate is what the notifier knows of a certificate from the events
// it consumed. Facts may arrive in any order, so each may be missing.
type Certificate struct {
	ID            string
	ApplicantID   string
	Product       string
	Email         string
	Language      string
	NotAfter      time.Time // zero until CertificateIssued was seen
	RevokedAt     time.Time // zero unless revoked
	RenewedBy     string    // the renewal that was retrieved, if any
	CorrelationID string

	// Server certificates (SV-1, SV-2).
	CustomerID string    // the server customer
	CommonName string    // for mails about it
	Imported   bool      // bought elsewhere (CertificateImported)
	DeclinedAt time.Time // zero unless the customer declined the renewal
}

// Schedules of reminder offsets (NO-3) beside the product names: a server
// certificate bought elsewhere has its own (90 days; our own: 60).
const ScheduleServerImported = "server_imported"

// Schedule is the key of c's reminder offsets in the configuration
// (reminder_offsets.product): its product, or ScheduleServerImported.
func (c Certificate) Schedule() string {
	if c.Imported {
		return ScheduleServerImported
	}
	return c.Product
}

// renewalCloses is when a reminder of c stops being relevant: a client
// certificate can be renewed until 365 days after its expiry (PC-8); a
// server certificate only until it expires — after that an order is a
// new one, with no carried-over validity (SV-5), not a renewal.
func (c Certificate) renewalCloses() time.Time {
	if c.Product == "server" {
		return c.NotAfter
	}
	return c.NotAfter.Add(RenewalClosesAfter)
}

// ReminderDue is when the reminder daysBefore of a certificate expiring at
// notAfter is due.
func ReminderDue(notAfter time.Time, daysBefore int) time.Time {
	return notAfter.Add(-time.Duration(daysBefore) * day)
}

// Why a fired reminder was not sent.
const (
	SuppressedRevoked    = "revoked"
	SuppressedRenewed    = "renewed"
	SuppressedExpired    = "expired_past_renewal_window"
	SuppressedSuperseded = "superseded_by_later_reminder"
	SuppressedNoOffset   = "offset_no_longer_configured"
	SuppressedIncomplete = "certificate_unknown_or_incomplete"
	// SuppressedDeclined: the customer declined the renewal (SV-2).
	SuppressedDeclined = "declined"
)

// DecideReminder says whether the reminder daysBefore of c, firing at now, is
// still relevant. offsets are the product's configured offsets. It returns
// "" to send, or why not.
//
// A reminder that fires late is sent unless it no longer makes sense: the
// certificate was revoked or renewed (its renewal retrieved or issued), its
// renewal was declined (SV-2), or it expired beyond the renewal window (a
// server certificate: at its expiry); and when a shorter reminder is also due by now
// (the notifier was down across both), only the latest one goes out, so
// that one outage does not produce a burst of notices and codes.
func DecideReminder(c Certificate, daysBefore int, offsets []int, now time.Time) string {
	switch {
	case c.NotAfter.IsZero() || (c.ApplicantID == "" && c.CustomerID == "") || c.Email == "":
		return SuppressedIncomplete
	case !c.RevokedAt.IsZero():
		return SuppressedRevoked
	case c.RenewedBy != "":
		return SuppressedRenewed
	case !c.DeclinedAt.IsZero():
		return SuppressedDeclined
	case now.After(c.renewalCloses()):
		return SuppressedExpired
	}
	configured := false
	for _, d := range offsets {
		if d == daysBefore {
			configured = true
		}
		if d < daysBefore && !now.Before(ReminderDue(c.NotAfter, d)) {
			return SuppressedSuperseded
		}
	}
	if !configured {
		return SuppressedNoOffset
	}
	return ""
}

// ReminderKey is the timer key of one reminder.
func ReminderKey(certificateID string, daysBefore int) string {
	return fmt.Sprintf("%s/%d", certificateID, daysBefore)
}

// NoticeSoonWithin: a certificate imported less than this before its
// first renewal notice is due gets no welcome mail of its own; its
// password setup link rides with the notice (SV-1, SPEC §5).
const NoticeSoonWithin = day

// NoticeSoon reports whether the first (largest) reminder of offsets, for
// a certificate expiring at notAfter, is due within NoticeSoonWithin of at
// (or already due). Without offsets no notice follows at all.
func NoticeSoon(notAfter, at time.Time, offsets []int) bool {
	if len(offsets) == 0 {
		return false
	}
	first := offsets[0]
	for _, d := range offsets {
		first = max(first, d)
	}
	return !ReminderDue(notAfter, first).After(at.Add(NoticeSoonWithin))
}

// CoverageGoesOn reports whether a server certificate's subscription ends
// more than a day after the certificate (IS-4): a reissue inside the
// coverage replaces it, and its renewal notices would be early.
func CoverageGoesOn(product string, notAfter, coverageEnd time.Time) bool {
	return product == events.ProductServer && !coverageEnd.IsZero() && coverageEnd.Sub(notAfter) > 24*time.Hour
}
