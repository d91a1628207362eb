package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// RequestCode serves POST /v1/certificate-codes (PC-16): when the e-mail
// and application password match, the applicant is mailed a fresh
// certificate code that replaces the previous one (PC-10: only the
// latest is accepted), to validate the mailbox again. Whatever the
// outcome the caller gives one answer, so nothing tells whether the
// account exists:
//
//   - the request takes the sign-in path (reserve, slow, check, settle):
//     one argon2id whatever is wrong, and a wrong password counts as a
//     failed sign-in (SE-3). An unknown e-mail and a known one with a
//     wrong password do the same work; only the right password — which
//     whoever sends it already knows — mails a code;
//   - before any work the e-mail's requests in the last hour are
//     counted, known e-mail or not: a fourth is refused (429), the same
//     for every e-mail.
//
// It returns nil when the request was handled (matched or not).
func (s *Service) RequestCode(ctx context.Context, email, password, addr string) error {
	email = domain.NormalizeEmail(email)
	a, err := s.reserve(ctx, email, addr, func(tx pgx.Tx, now time.Time) error {
		n, oldest, err := store.CountCodeRequests(ctx, tx, email, now.Add(-s.CodeRequests.Window))
		if err != nil {
			return err
		}
		if err := s.CodeRequests.Admit(n, oldest, now); err != nil {
			return err
		}
		return store.AddCodeRequest(ctx, tx, email, now)
	})
	if err != nil {
		return err
	}
	if err := s.slow(ctx, a); err != nil {
		return s.abandon(ctx, a, err)
	}
	// The newest account with the e-mail, as for a password-only session.
	match, _, err := s.check(ctx, email, Credentials{Email: email, Password: password})
	if err != nil {
		return s.abandon(ctx, a, err)
	}
	if match == nil {
		return s.fail(ctx, a, nil)
	}
	return s.succeed(ctx, a, func(tx pgx.Tx) error {
		to, err := s.recipient(ctx, tx, *match)
		if err != nil {
			return err
		}
		return s.issueCode(ctx, tx, "", match.ID, events.CertificateCodeIssued{
			ApplicantID: match.ID.String(), Reason: events.CodeForMailboxValidation, Recipient: to,
		})
	})
}
