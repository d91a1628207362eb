package domain

// Renewal reminders (PC-10, NO-3): when they are due for a certificate,
// and whether one that fires — on time or late, after the notifier was
// down — is still worth sending.

import (
	"fmt"
	"time"
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
)

// DecideReminder says whether the reminder daysBefore of c, firing at now, is
// still relevant. offsets are the product's configured offsets. It returns
// "" to send, or why not.
//
// A reminder that fires late is sent unless it no longer makes sense: the
// certificate was revoked or renewed (its renewal retrieved), or it expired
// beyond the renewal window; and when a shorter reminder is also due by now
// (the notifier was down across both), only the latest one goes out, so
// that one outage does not produce a burst of notices and codes.
func DecideReminder(c Certificate, daysBefore int, offsets []int, now time.Time) string {
	switch {
	case c.NotAfter.IsZero() || c.ApplicantID == "" || c.Email == "":
		return SuppressedIncomplete
	case !c.RevokedAt.IsZero():
		return SuppressedRevoked
	case c.RenewedBy != "":
		return SuppressedRenewed
	case now.After(c.NotAfter.Add(RenewalClosesAfter)):
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
