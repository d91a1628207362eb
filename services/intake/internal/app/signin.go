package app

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/intake/internal/domain"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Every sign-in — a session login or a Basic request — takes the same
// path (PC-7, SE-3, SE-7):
//
//  1. reserve: the attempt is recorded as a failure-in-progress in the
//     transaction that checks the e-mail's lock and count, under the
//     e-mail's row lock, before any password work; a full count or a lock
//     is 429 at once;
//  2. slow: an address that failed often waits a little (never refused);
//  3. check: exactly one argon2id of the password, against the account's
//     hash or a dummy one, whatever is wrong; the certificate code is
//     compared as a MAC in constant time;
//  4. settle: success deletes the reservation, failure confirms it (and
//     the tenth locks the e-mail), a refused or abandoned check forgets it.

// Credentials are what a sign-in presents.
type Credentials struct {
	Email    string
	Password string
	// Code is the certificate code; HasCode false opens a password-only
	// session (SPEC §5), which no certificate step accepts.
	Code    string
	HasCode bool
	// Addr is the client address (the HTTP edge applies TRUSTED_PROXIES).
	Addr string
}

// Session is a new session.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

type attempt struct {
	id    int64
	email string
	delay time.Duration
}

// reserve counts the attempt before its password work (SE-3). more, when
// given, runs under the e-mail's lock after the throttle admitted the
// attempt (a further bound, counted before the work too).
func (s *Service) reserve(ctx context.Context, email, addr string, more func(tx pgx.Tx, now time.Time) error) (attempt, error) {
	now := s.Clock.Now()
	since := now.Add(-s.Throttle.Window)
	a := attempt{email: email}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		st, err := store.LockEmail(ctx, tx, email, since)
		if err != nil {
			return err
		}
		if err := s.Throttle.Admit(st, now); err != nil {
			return err
		}
		if more != nil {
			if err := more(tx, now); err != nil {
				return err
			}
		}
		n, err := store.AddressFailures(ctx, tx, addr, since)
		if err != nil {
			return err
		}
		a.delay = s.Throttle.AddressDelay(n)
		a.id, err = store.ReserveAttempt(ctx, tx, email, addr, now)
		return err
	})
	if errs.Is(err, errs.KindTooMany) {
		s.Metrics.signIns.WithLabelValues("locked").Inc()
	}
	return a, err
}

// slow waits out the address's delay.
func (s *Service) slow(ctx context.Context, a attempt) error {
	if a.delay <= 0 {
		return nil
	}
	s.Metrics.addressDelays.Inc()
	t := time.NewTimer(a.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abandon forgets a reservation whose check never ran (busy, cancelled):
// it was not a guess, and must not count as one.
func (s *Service) abandon(ctx context.Context, a attempt, cause error) error {
	if errs.Is(cause, errs.KindUnavailable) {
		s.Metrics.signIns.WithLabelValues("busy").Inc()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := store.ForgetAttempt(ctx, s.Pool, a.id); err != nil {
		s.Log.Warn("sign-in reservation not released; it expires with the window", "err", err)
	}
	return cause
}

// fail confirms the reservation as a failure, locks the e-mail at the
// limit, and returns the generic answer.
func (s *Service) fail(ctx context.Context, a attempt, answer error) error {
	s.Metrics.signIns.WithLabelValues("failure").Inc()
	// The failure is recorded even if the client went away meanwhile.
	ctx = context.WithoutCancel(ctx)
	now := s.Clock.Now()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n, err := store.ConfirmFailure(ctx, tx, a.id, a.email, now.Add(-s.Throttle.Window))
		if err != nil {
			return err
		}
		if s.Throttle.Locks(n) {
			return store.LockUntil(ctx, tx, a.email, now.Add(s.Throttle.Lock))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return answer
}

// succeed releases the reservation and the e-mail's failures, and runs
// more (the session row, a code upgrade) in the same transaction.
func (s *Service) succeed(ctx context.Context, a attempt, more func(tx pgx.Tx) error) error {
	s.Metrics.signIns.WithLabelValues("success").Inc()
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.ForgetAttempt(ctx, tx, a.id); err != nil {
			return err
		}
		if err := store.ClearFailures(ctx, tx, a.email); err != nil {
			return err
		}
		if more != nil {
			return more(tx)
		}
		return nil
	})
}

// Login checks e-mail + application password (+ latest certificate code)
// and opens a session (PC-7, SE-3, SE-7).
func (s *Service) Login(ctx context.Context, c Credentials) (Session, error) {
	email := domain.NormalizeEmail(c.Email)
	a, err := s.reserve(ctx, email, c.Addr, nil)
	if err != nil {
		return Session{}, err
	}
	if err := s.slow(ctx, a); err != nil {
		return Session{}, s.abandon(ctx, a, err)
	}
	if !c.HasCode {
		// A server customer's e-mail opens a customer session (SPEC §5);
		// an account without a password yet (imported) cannot sign in.
		cust, err := store.CustomerByEmail(ctx, s.Pool, email)
		if err == nil && cust.PasswordHash != nil {
			return s.loginCustomer(ctx, a, cust, c.Password)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Session{}, s.abandon(ctx, a, err)
		}
	}
	match, legacy, err := s.check(ctx, email, c)
	if err != nil {
		return Session{}, s.abandon(ctx, a, err)
	}
	if match == nil {
		return Session{}, s.fail(ctx, a, domain.ErrMismatch())
	}
	now := s.Clock.Now()
	row := store.Session{ID: domain.NewID(), ApplicantID: match.ID, CodeVerified: c.HasCode,
		CreatedAt: now, ExpiresAt: now.Add(s.SessionTTL).Truncate(time.Second)}
	claims := session.Claims{SessionID: row.ID.String(), Subject: match.ID.String(),
		CodeVerified: row.CodeVerified, IssuedAt: now.Unix(), ExpiresAt: row.ExpiresAt.Unix()}
	// PC-16: a code less than 24 hours old validates the mailbox it was
	// sent to; an older one still signs in, carrying the latest earlier
	// validation (the issuer decides at retrieval whether it is recent
	// enough). Only sessions opened with the code carry one.
	fresh, validates := match.ValidatesMailbox(now)
	if c.HasCode {
		v, ok := fresh, validates
		if !ok {
			v, ok = match.LatestValidation()
		}
		if ok {
			claims.MailboxValidatedAt, claims.MailboxEmail = v.At.Unix(), v.Email
		}
	}
	token, err := s.Signer.Sign(claims)
	if err != nil {
		return Session{}, s.abandon(ctx, a, err)
	}
	err = s.succeed(ctx, a, func(tx pgx.Tx) error {
		if legacy != "" {
			// A code verified against its argon2id hash is stored as a MAC
			// from now on (SE-7).
			if err := store.UpgradeCode(ctx, tx, match.ID, legacy, s.CodeKey.MAC(c.Code)); err != nil {
				return err
			}
		}
		if c.HasCode && validates {
			if err := store.RecordMailboxValidation(ctx, tx, match.ID, fresh); err != nil {
				return err
			}
		}
		return store.InsertSession(ctx, tx, row)
	})
	if err != nil {
		return Session{}, err
	}
	return Session{Token: token, ExpiresAt: row.ExpiresAt}, nil
}

// loginCustomer checks a server customer's password — one argon2id, as
// every sign-in — and opens a customer session (pkg/session Customer).
func (s *Service) loginCustomer(ctx context.Context, a attempt, cust domain.Customer, password string) (Session, error) {
	ok, err := s.Hasher.Verify(ctx, *cust.PasswordHash, password)
	if err != nil {
		return Session{}, s.abandon(ctx, a, err)
	}
	if !ok {
		return Session{}, s.fail(ctx, a, domain.ErrMismatch())
	}
	now := s.Clock.Now()
	row := store.Session{ID: domain.NewID(), ApplicantID: cust.ID, Customer: true,
		CreatedAt: now, ExpiresAt: now.Add(s.SessionTTL).Truncate(time.Second)}
	token, err := s.Signer.Sign(session.Claims{SessionID: row.ID.String(), Subject: cust.ID.String(), Customer: true,
		IssuedAt: now.Unix(), ExpiresAt: row.ExpiresAt.Unix()})
	if err != nil {
		return Session{}, s.abandon(ctx, a, err)
	}
	if err := s.succeed(ctx, a, func(tx pgx.Tx) error { return store.InsertSession(ctx, tx, row) }); err != nil {
		return Session{}, err
	}
	return Session{Token: token, ExpiresAt: row.ExpiresAt}, nil
}

// authCustomer authenticates a server customer by e-mail and password on
// the sign-in path (reserve, slow, one argon2id, settle): a server
// application that gives the password of an existing account.
func (s *Service) authCustomer(ctx context.Context, email, password, addr string) (domain.Customer, error) {
	email = domain.NormalizeEmail(email)
	a, err := s.reserve(ctx, email, addr, nil)
	if err != nil {
		return domain.Customer{}, err
	}
	if err := s.slow(ctx, a); err != nil {
		return domain.Customer{}, s.abandon(ctx, a, err)
	}
	cust, err := store.CustomerByEmail(ctx, s.Pool, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return domain.Customer{}, s.abandon(ctx, a, err)
	}
	hash := domain.DummyHash
	if err == nil && cust.PasswordHash != nil {
		hash = *cust.PasswordHash
	}
	ok, verr := s.Hasher.Verify(ctx, hash, password)
	if verr != nil {
		return domain.Customer{}, s.abandon(ctx, a, verr)
	}
	if !ok || err != nil || cust.PasswordHash == nil {
		return domain.Customer{}, s.fail(ctx, a, domain.ErrMismatch())
	}
	return cust, s.succeed(ctx, a, nil)
}

// check finds the applicant the credentials name, with exactly one
// argon2id evaluation of the password whatever is wrong (SE-7). legacy is
// the argon2id code hash the code matched, when it was not yet a MAC.
func (s *Service) check(ctx context.Context, email string, c Credentials) (match *domain.Applicant, legacy string, err error) {
	candidates, err := store.ApplicantsByEmail(ctx, s.Pool, email)
	if err != nil {
		return nil, "", err
	}
	var who *domain.Applicant
	if !c.HasCode {
		// A password-only session: the newest account with the e-mail.
		// (Older accounts sharing it sign in with their code, or use
		// Basic on their application.)
		if len(candidates) > 0 {
			who = &candidates[0]
		}
	} else {
		// The code picks the account: its MAC is compared with every
		// candidate's, without stopping at the first match.
		mac := s.CodeKey.MAC(c.Code)
		for i := range candidates {
			if domain.SameMAC(candidates[i].CodeMAC, mac) {
				who = &candidates[i]
			}
		}
		if who == nil {
			// Codes issued before MACs: their argon2id hashes, until
			// replaced. Only accounts that still have one pay for it.
			for i := range candidates {
				h := candidates[i].LegacyCodeHash
				if h == nil || candidates[i].CodeMAC != nil {
					continue
				}
				ok, err := s.Hasher.Verify(ctx, *h, domain.NormalizeCode(c.Code))
				if err != nil {
					return nil, "", err
				}
				if ok {
					who, legacy = &candidates[i], *h
				}
			}
		}
	}
	hash := domain.DummyHash
	if who != nil {
		hash = who.PasswordHash
	}
	ok, err := s.Hasher.Verify(ctx, hash, c.Password)
	if err != nil || !ok || who == nil {
		return nil, "", err
	}
	return who, legacy, nil
}

// BasicAuth authenticates an application endpoint with the e-mail and
// application password (SPEC §5: before any code exists). It takes the
// same counted, bounded path as a login. A wrong password and someone
// else's or an unknown application look alike: 404.
func (s *Service) BasicAuth(ctx context.Context, application uuid.UUID, email, password, addr string) (domain.Principal, error) {
	email = domain.NormalizeEmail(email)
	a, err := s.reserve(ctx, email, addr, nil)
	if err != nil {
		return domain.Principal{}, err
	}
	if err := s.slow(ctx, a); err != nil {
		return domain.Principal{}, s.abandon(ctx, a, err)
	}
	var who *domain.Applicant
	customer := false
	hash := domain.DummyHash
	app, err := store.GetApplication(ctx, s.Pool, application)
	if err == nil && app.Product == events.ProductServer {
		// A server application: its customer's e-mail and password.
		var c domain.Customer
		if c, err = store.GetCustomer(ctx, s.Pool, app.ApplicantID); err == nil && c.Email == email && c.PasswordHash != nil {
			who, customer, hash = &domain.Applicant{ID: c.ID}, true, *c.PasswordHash
		}
	} else if err == nil {
		var ap domain.Applicant
		if ap, err = store.GetApplicant(ctx, s.Pool, app.ApplicantID); err == nil && ap.Email == email {
			who, hash = &ap, ap.PasswordHash
		}
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return domain.Principal{}, s.abandon(ctx, a, err)
	}
	ok, err := s.Hasher.Verify(ctx, hash, password)
	if err != nil {
		return domain.Principal{}, s.abandon(ctx, a, err)
	}
	if !ok || who == nil {
		return domain.Principal{}, s.fail(ctx, a, domain.ErrNotFound())
	}
	if err := s.succeed(ctx, a, nil); err != nil {
		return domain.Principal{}, err
	}
	return domain.Principal{ApplicantID: who.ID, Customer: customer}, nil
}

// SessionPrincipal resolves a bearer token: its signature and expiry
// (pkg/session, as every service checks it), and — intake holding the
// session rows — that the session was not deleted.
func (s *Service) SessionPrincipal(ctx context.Context, token string) (domain.Principal, error) {
	now := s.Clock.Now()
	c, err := s.Verifier.Verify(token, now)
	if err != nil {
		return domain.Principal{}, errs.Unauthorized("the session is unknown or has expired")
	}
	sid, err1 := uuid.Parse(c.SessionID)
	applicant, err2 := uuid.Parse(c.Subject)
	if err1 != nil || err2 != nil {
		return domain.Principal{}, errs.Unauthorized("the session is unknown or has expired")
	}
	live, err := store.SessionLive(ctx, s.Pool, sid, now)
	if err != nil {
		return domain.Principal{}, err
	}
	if !live {
		return domain.Principal{}, errs.Unauthorized("the session is unknown or has expired")
	}
	return domain.Principal{ApplicantID: applicant, CodeVerified: c.CodeVerified && !c.Customer, Customer: c.Customer}, nil
}
