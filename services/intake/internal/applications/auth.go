package applications

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/services/intake/internal/secret"
	"github.com/certlife/platform/services/intake/internal/store"
)

// Principal is the applicant a request acts for.
type Principal struct {
	ApplicantID uuid.UUID
}

// Owns reports whether the application is the principal's.
func (p Principal) Owns(a store.Application) bool { return a.ApplicantID == p.ApplicantID }

// Throttling of failed logins (SE-3).
const (
	failureWindow   = 15 * time.Minute
	emailFailures   = 10
	lockDuration    = 15 * time.Minute
	addressFailures = 30 // an office behind one NAT address is allowed more
)

func unauthorized() *httpx.Problem {
	// One answer for every mismatch: no hint which field was wrong (PC-7).
	return httpx.Unauthorized(secret.ErrMismatch.Error())
}

// locked answers 429 when the e-mail or the client address is locked out.
func (s *Service) locked(ctx context.Context, email, addr string, now time.Time) error {
	n, at, err := store.Failures(ctx, s.Pool, "lock:"+email, now.Add(-lockDuration))
	if err != nil {
		return err
	}
	if n > 0 {
		return tooMany(at.Add(lockDuration).Sub(now))
	}
	n, oldest, err := store.Failures(ctx, s.Pool, "addr:"+addr, now.Add(-failureWindow))
	if err != nil {
		return err
	}
	if n >= addressFailures {
		return tooMany(oldest.Add(failureWindow).Sub(now))
	}
	return nil
}

func tooMany(retry time.Duration) *httpx.Problem {
	p := httpx.NewProblem(http.StatusTooManyRequests, "too-many-failures", "Too many failed attempts",
		"sign-in is locked for a while after repeated failures")
	p.RetryAfter = max(retry, time.Second)
	return p
}

// fail records a failed attempt, and locks the e-mail at the tenth
// failure within the window.
func (s *Service) fail(ctx context.Context, email, addr string, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.RecordFailure(ctx, tx, now, "email:"+email, "addr:"+addr); err != nil {
			return err
		}
		n, _, err := store.Failures(ctx, tx, "email:"+email, now.Add(-failureWindow))
		if err != nil {
			return err
		}
		if n >= emailFailures {
			if err := store.ClearFailures(ctx, tx, "email:"+email); err != nil {
				return err
			}
			return store.RecordFailure(ctx, tx, now, "lock:"+email)
		}
		return nil
	})
}

// Session is a new session for an applicant.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Login checks e-mail + application password + latest certificate code
// and opens a session (PC-7, SE-3).
func (s *Service) Login(ctx context.Context, email, password, code, addr string) (Session, error) {
	now := s.Clock.Now()
	email = strings.ToLower(strings.TrimSpace(email))
	if err := s.locked(ctx, email, addr, now); err != nil {
		return Session{}, err
	}
	candidates, err := store.ApplicantsByEmail(ctx, s.Pool, email)
	if err != nil {
		return Session{}, err
	}
	var match *store.Applicant
	code = secret.NormalizeCode(code)
	for i, a := range candidates {
		if a.CodeHash != nil && secret.Verify(a.PasswordHash, password) && secret.Verify(*a.CodeHash, code) {
			match = &candidates[i]
			break
		}
	}
	if len(candidates) == 0 {
		secret.BurnTime()
	}
	if match == nil {
		if err := s.fail(ctx, email, addr, now); err != nil {
			return Session{}, err
		}
		return Session{}, unauthorized()
	}
	token, hash, err := secret.NewToken()
	if err != nil {
		return Session{}, err
	}
	exp := now.Add(s.SessionTTL)
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := store.ClearFailures(ctx, tx, "email:"+email); err != nil {
			return err
		}
		return store.InsertSession(ctx, tx, hash, match.ID, now, exp)
	})
	return Session{Token: token, ExpiresAt: exp}, err
}

// Authenticate resolves the Authorization header of an application
// endpoint: a session bearer token, or Basic e-mail:password (usable
// before any certificate code exists). application, when set, is the
// application whose applicant a Basic login must be.
func (s *Service) Authenticate(ctx context.Context, r *http.Request, application uuid.UUID) (Principal, error) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		id, _, err := store.SessionApplicant(ctx, s.Pool, secret.TokenHash(tok), s.Clock.Now())
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, httpx.Unauthorized("the session is unknown or has expired")
		}
		return Principal{ApplicantID: id}, err
	}
	email, password, ok := r.BasicAuth()
	if !ok {
		return Principal{}, httpx.Unauthorized("applicant authentication is required (Bearer session token or Basic e-mail and application password)")
	}
	now := s.Clock.Now()
	email = strings.ToLower(strings.TrimSpace(email))
	addr := clientAddr(r)
	if err := s.locked(ctx, email, addr, now); err != nil {
		return Principal{}, err
	}
	app, err := store.GetApplication(ctx, s.Pool, application, false)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Principal{}, err
	}
	if err == nil {
		a, err := store.GetApplicant(ctx, s.Pool, app.ApplicantID)
		if err != nil {
			return Principal{}, err
		}
		if a.Email == email && secret.Verify(a.PasswordHash, password) {
			return Principal{ApplicantID: a.ID}, nil
		}
	} else {
		secret.BurnTime()
	}
	if err := s.fail(ctx, email, addr, now); err != nil {
		return Principal{}, err
	}
	// Unknown application and wrong credentials look alike.
	return Principal{}, httpx.NotFound()
}

// Introspect answers other services about a session token.
func (s *Service) Introspect(ctx context.Context, req events.SessionIntrospectRequest) (events.SessionIntrospectResponse, error) {
	if req.Token == "" {
		return events.SessionIntrospectResponse{}, nil
	}
	id, exp, err := store.SessionApplicant(ctx, s.Pool, secret.TokenHash(req.Token), s.Clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		return events.SessionIntrospectResponse{}, nil
	}
	if err != nil {
		return events.SessionIntrospectResponse{}, err
	}
	a, err := store.GetApplicant(ctx, s.Pool, id)
	if err != nil {
		return events.SessionIntrospectResponse{}, err
	}
	return events.SessionIntrospectResponse{Active: true, ApplicantID: id.String(), Email: a.Email, ExpiresAt: exp}, nil
}

// clientAddr is the client's address for throttling. Headers such as
// X-Real-IP are not trusted: a client could rotate them to dodge the limit.
func clientAddr(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return host
}

// ClientAddr is exported for the HTTP layer.
func ClientAddr(r *http.Request) string { return clientAddr(r) }

func jsonUnmarshal(raw []byte, v any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}
