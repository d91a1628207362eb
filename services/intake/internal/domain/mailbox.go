package domain

import (
	"fmt"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

// Mailbox control (PC-16, S/MIME BR 3.2.2.2): a certificate code is the
// random value sent to the applicant's mailbox. It is valid as such for
// CodeValidatesFor after it was made: a sign-in with it within that time
// validates the mailbox it was sent to. A sign-in with an older code
// still authenticates (PC-7: the code stays the credential for the
// certificate steps until a newer one replaces it, PC-14) — it just
// validates nothing. Whether a validation is recent enough for an
// issuance (30 days, BR 4.2.1) is the issuer's rule, at retrieval.
const CodeValidatesFor = 24 * time.Hour

// MailboxValidation is one validated mailbox and when.
type MailboxValidation struct {
	Email string
	At    time.Time
}

// ValidatesMailbox reports the mailbox validation a sign-in at now with
// the applicant's latest code makes: the code was sent to a known
// mailbox less than CodeValidatesFor ago.
func (a Applicant) ValidatesMailbox(now time.Time) (MailboxValidation, bool) {
	if a.CodeEmail == nil || *a.CodeEmail == "" || a.CodeIssuedAt == nil || !now.Before(a.CodeIssuedAt.Add(CodeValidatesFor)) {
		return MailboxValidation{}, false
	}
	// Whole seconds: the session token carries it as Unix seconds.
	return MailboxValidation{Email: *a.CodeEmail, At: now.Truncate(time.Second)}, true
}

// LatestValidation is the applicant's recorded mailbox validation, if any.
func (a Applicant) LatestValidation() (MailboxValidation, bool) {
	if a.MailboxValidatedAt == nil || a.MailboxEmail == nil {
		return MailboxValidation{}, false
	}
	return MailboxValidation{Email: *a.MailboxEmail, At: *a.MailboxValidatedAt}, true
}

// CodeRequests bounds POST /v1/certificate-codes (PC-16): at most Max
// per e-mail within Window, counted before any work, whether or not the
// e-mail is an applicant's — so the bound says nothing about accounts.
type CodeRequests struct {
	Max    int
	Window time.Duration
}

// DefaultCodeRequests is PC-16's figure: 3 an hour.
func DefaultCodeRequests() CodeRequests { return CodeRequests{Max: 3, Window: time.Hour} }

// Admit decides whether one more request for an e-mail that made n
// since now − Window (the oldest at oldest) may go on.
func (c CodeRequests) Admit(n int, oldest, now time.Time) error {
	if n < c.Max {
		return nil
	}
	return errs.TooMany("too-many-code-requests",
		fmt.Sprintf("a new certificate code can be asked for at most %d times in %s; please wait", c.Max, c.Window),
		max(oldest.Add(c.Window).Sub(now), time.Second))
}
