package domain

import (
	"time"
	"unicode/utf8"
)

// Delivery statuses: pending until the SMTP server accepts the message
// (sent) or it is given up (failed).
const (
	StatusPending = "pending"
	StatusSent    = "sent"
	StatusFailed  = "failed"
)

// Delivery is one message of the delivery log (NO-4).
type Delivery struct {
	ID            int64
	MessageID     string
	Reason        string
	Recipient     string
	Language      string
	SubjectID     string
	CausedBy      string // the event that caused the message
	CorrelationID string
	Data          Data
	SealedCode    []byte // the certificate code sealed to the notifier's key, until sent or given up
	SealedLinks   []byte // a renewal notice's one-click links (JSON), sealed likewise
	SealedSetup   []byte // a password setup link, sealed likewise
	Status        string
	Attempts      int
	LastError     *string
	NextAttemptAt *time.Time
	CreatedAt     time.Time
	SentAt        *time.Time
	FailedAt      *time.Time
}

// RetryDelays are the waits after each failed SMTP attempt; when they run
// out the message is given up (status failed).
var RetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour}

// NextAttempt is when a message is tried again after its attempt-th
// attempt (1-based) failed at now; ok is false when it is to be given up.
func NextAttempt(attempt int, now time.Time) (next time.Time, ok bool) {
	if attempt < 1 || attempt > len(RetryDelays) {
		return time.Time{}, false
	}
	return now.Add(RetryDelays[attempt-1]), true
}

// maxLastError bounds the error text kept with a delivery, in bytes.
const maxLastError = 1000

// MarkSent records that the SMTP server accepted the message. The sealed
// code goes: it lives on only in the mail.
func (d *Delivery) MarkSent(now time.Time) {
	d.Status, d.Attempts, d.SentAt, d.NextAttemptAt, d.SealedCode = StatusSent, d.Attempts+1, &now, nil, nil
	d.SealedLinks, d.SealedSetup = nil, nil
}

// MarkRetry records a failed attempt and when the next one is due.
func (d *Delivery) MarkRetry(errText string, next time.Time) {
	e := truncate(errText, maxLastError)
	d.Attempts, d.LastError, d.NextAttemptAt = d.Attempts+1, &e, &next
}

// MarkFailed gives the message up; attempted says whether this was an
// SMTP attempt (rather than a message that could not even be composed).
// The sealed code goes too: a code that could not be delivered is of no
// use, and the applicant gets a new one.
func (d *Delivery) MarkFailed(errText string, now time.Time, attempted bool) {
	e := truncate(errText, maxLastError)
	if attempted {
		d.Attempts++
	}
	d.Status, d.LastError, d.FailedAt, d.NextAttemptAt, d.SealedCode = StatusFailed, &e, &now, nil, nil
	d.SealedLinks, d.SealedSetup = nil, nil
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
