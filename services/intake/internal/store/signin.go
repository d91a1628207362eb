package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/services/intake/internal/domain"
)

// LockEmail takes the e-mail's throttle row for the rest of q's
// transaction — creating it if needed — so that the attempts of one
// e-mail are reserved one after the other (SE-3), and returns its state
// since `since`.
func LockEmail(ctx context.Context, q Q, email string, since time.Time) (domain.EmailState, error) {
	var s domain.EmailState
	// One statement that always returns the row, locked: an insert that
	// found the row, then a SELECT … FOR UPDATE, lost it when retention
	// deleted it in between (no rows → a 500).
	if err := q.QueryRow(ctx, `INSERT INTO login_emails (email) VALUES ($1)
		ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email RETURNING locked_until`, email).Scan(&s.LockedUntil); err != nil {
		return s, err
	}
	var oldest *time.Time
	err := q.QueryRow(ctx, `SELECT count(*), min(at) FROM login_failures WHERE email = $1 AND at > $2`, email, since).
		Scan(&s.Open, &oldest)
	if oldest != nil {
		s.Oldest = *oldest
	}
	return s, err
}

// AddressFailures counts attempts from addr since `since` that did not succeed.
func AddressFailures(ctx context.Context, q Q, addr string, since time.Time) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE addr = $1 AND at > $2`, addr, since).Scan(&n)
	return n, err
}

// ReserveAttempt records an attempt before its password is checked: it
// counts as a failure until it is settled.
func ReserveAttempt(ctx context.Context, q Q, email, addr string, at time.Time) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `INSERT INTO login_failures (email, addr, at, pending) VALUES ($1, $2, $3, true) RETURNING id`,
		email, addr, at).Scan(&id)
	return id, err
}

// ConfirmFailure settles a reserved attempt as a failure and returns the
// e-mail's failures since `since`.
func ConfirmFailure(ctx context.Context, q Q, id int64, email string, since time.Time) (int, error) {
	// The e-mail's row lock orders concurrent settlements, so that the
	// failure that reaches the limit sees every one before it.
	if _, err := q.Exec(ctx, `SELECT 1 FROM login_emails WHERE email = $1 FOR UPDATE`, email); err != nil {
		return 0, err
	}
	if _, err := q.Exec(ctx, `UPDATE login_failures SET pending = false WHERE id = $1`, id); err != nil {
		return 0, err
	}
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE email = $1 AND at > $2 AND NOT pending`, email, since).Scan(&n)
	return n, err
}

// LockUntil locks the e-mail until t.
func LockUntil(ctx context.Context, q Q, email string, t time.Time) error {
	_, err := q.Exec(ctx, `UPDATE login_emails SET locked_until = $2 WHERE email = $1`, email, t)
	return err
}

// ForgetAttempt removes a reserved attempt: it succeeded, or it was never
// checked (the password work was refused as busy).
func ForgetAttempt(ctx context.Context, q Q, id int64) error {
	_, err := q.Exec(ctx, `DELETE FROM login_failures WHERE id = $1`, id)
	return err
}

// ClearFailures forgets the e-mail's settled failures after a successful
// sign-in. Attempts still being checked stay reserved.
func ClearFailures(ctx context.Context, q Q, email string) error {
	_, err := q.Exec(ctx, `DELETE FROM login_failures WHERE email = $1 AND NOT pending`, email)
	return err
}

// PruneLoginFailures deletes attempts older than before (retention: the
// throttle looks back one window only) and e-mail rows with no lock left
// at now. It returns the rows deleted.
func PruneLoginFailures(ctx context.Context, q Q, before, now time.Time) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM login_failures WHERE at < $1`, before)
	if err != nil {
		return 0, err
	}
	n := tag.RowsAffected()
	tag, err = q.Exec(ctx, `DELETE FROM login_emails e WHERE (e.locked_until IS NULL OR e.locked_until < $1)
		AND NOT EXISTS (SELECT 1 FROM login_failures f WHERE f.email = e.email)`, now)
	return n + tag.RowsAffected(), err
}

// Session is a row of sessions.
type Session struct {
	ID           uuid.UUID
	ApplicantID  uuid.UUID
	CodeVerified bool
	// Customer: ApplicantID is a server customer's ID.
	Customer  bool
	CreatedAt time.Time
	ExpiresAt time.Time
}

// InsertSession records a session.
func InsertSession(ctx context.Context, q Q, s Session) error {
	_, err := q.Exec(ctx, `INSERT INTO sessions (id, applicant_id, code_verified, customer, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.ID, s.ApplicantID, s.CodeVerified, s.Customer, s.CreatedAt, s.ExpiresAt)
	return err
}

// SessionLive reports whether the session still exists and has not expired at now.
func SessionLive(ctx context.Context, q Q, id uuid.UUID, now time.Time) (bool, error) {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1 AND expires_at > $2`, id, now).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
