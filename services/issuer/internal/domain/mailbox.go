package domain

import (
	"strings"
	"time"
)

// MailboxValidationReuse is how long a mailbox validation may be reused
// for an issuance (PC-16, S/MIME BR 4.2.1: 30 days). Intake records the
// validation — a sign-in with a certificate code less than 24 hours old —
// and carries the latest one in the session token; the issuer, which
// issues, decides here whether it is recent enough.
const MailboxValidationReuse = 30 * 24 * time.Hour

// MailboxValidated reports whether the certificate's mailbox was
// validated in the last 30 days at now: a validation of that address
// (compared without case; intake stores addresses lower-case) less than
// 30 days before now. A validation a little after now is intake's clock
// running ahead of this one, not a reason to refuse.
func MailboxValidated(certEmail, validatedEmail string, validatedAt, now time.Time) bool {
	if certEmail == "" || !strings.EqualFold(certEmail, validatedEmail) || validatedAt.IsZero() {
		return false
	}
	return now.Before(validatedAt.Add(MailboxValidationReuse))
}
