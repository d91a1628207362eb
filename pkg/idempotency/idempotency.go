// Package idempotency gives POST routes that create something the
// Idempotency-Key header of SE-6: a retry of a request whose response was
// lost returns the first response (status, headers, body) instead of
// doing the work twice; the same key with another body is a 422.
//
// It is HTTP middleware over a table in the service's own schema (platform
// migration 00003). A request claims its key by inserting a row (unique
// scope) before the handler runs, so concurrent duplicates make one
// effect: a duplicate that finds the key in progress waits up to Wait for
// the first to finish and replays its response, else answers 409
// idempotency-in-progress with Retry-After. 5xx (and 401, 403, 404, 408,
// 429, which depend on credentials or time and change nothing) are not
// kept, so a retry runs again. Records expire after TTL; Prune deletes
// them (called by the retention timers).
//
// Limit: the handler's effect and the record of its response are two
// transactions. If the process dies between them, the key stays in
// progress until Lease passes, and then a retry runs the handler again.
package idempotency

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/seal"
)

// Header names.
const (
	KeyHeader      = "Idempotency-Key"
	ReplayedHeader = "Idempotent-Replayed"
)

// Defaults for a Store's zero fields.
const (
	DefaultTTL     = 24 * time.Hour
	DefaultLease   = 5 * time.Minute
	DefaultWait    = 5 * time.Second
	DefaultMaxBody = 8 << 20
	MaxKeyLength   = 255
)

// Store keeps the records of one service's schema.
type Store struct {
	DB    db.Querier // the service's pool
	Clock clock.Clock
	Log   *slog.Logger
	// TTL is how long a response is kept for replay (IDEMPOTENCY_TTL).
	TTL time.Duration
	// Lease is how long a key stays in progress before a retry may take
	// it over (the first request's process died). Longer than any handler.
	Lease time.Duration
	// Wait is how long a concurrent duplicate waits for the first request
	// before answering 409.
	Wait time.Duration
	// MaxBody bounds the bodies it reads to fingerprint (413 beyond);
	// the handler's own, smaller bound still applies.
	MaxBody int64
}

func (s *Store) ttl() time.Duration   { return or(s.TTL, DefaultTTL) }
func (s *Store) lease() time.Duration { return or(s.Lease, DefaultLease) }
func (s *Store) wait() time.Duration  { return or(s.Wait, DefaultWait) }

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

type principalKey struct{}

// WithPrincipal names the authenticated caller of a request, for an auth
// middleware mounted before Middleware: keys are scoped to it. Without
// it the scope is the ops actor, else a hash of the Bearer token, else
// the Basic user name (never the password: SE-1 allows passwords only as
// argon2id hashes), else "anonymous".
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

func principal(r *http.Request) string {
	if p, _ := r.Context().Value(principalKey{}).(string); p != "" {
		return "principal:" + p
	}
	if a := opsauth.Actor(r.Context()); a != "" {
		return a
	}
	if user, _, ok := r.BasicAuth(); ok {
		return "basic:" + strings.ToLower(strings.TrimSpace(user))
	}
	if h := r.Header.Get("Authorization"); h != "" {
		sum := sha256.Sum256([]byte(h))
		return "authorization:" + string(sum[:])
	}
	return "anonymous"
}

// ValidKey: 1 to 255 printable ASCII characters.
func ValidKey(k string) bool {
	if k == "" || len(k) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

type record struct {
	fingerprint []byte
	status      *int
	headers     []byte
	body        []byte
	leaseUntil  *time.Time
}

// Middleware applies SE-6 to POST requests that carry Idempotency-Key;
// others pass through. Mount it on each route that creates something,
// after the route's authentication:
//
//	r.With(ops.Require(opsauth.Billing), d.Idempotent).Post("/ops/v1/coupons", h)
func (s *Store) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, present := r.Header[KeyHeader]
		if r.Method != http.MethodPost || !present {
			next.ServeHTTP(w, r)
			return
		}
		if len(keys) != 1 || !ValidKey(keys[0]) {
			httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusBadRequest, "idempotency-key-invalid",
				"Invalid Idempotency-Key", "send one Idempotency-Key of 1 to 255 printable ASCII characters (a UUID is best)"))
			return
		}
		key := keys[0]
		limit := s.MaxBody
		if limit <= 0 {
			limit = DefaultMaxBody
		}
		body, p := httpx.ReadBody(w, r, limit)
		if p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		r.Body = readCloser{bytes.NewReader(body)}

		scope := sha256.New()
		for _, part := range []string{principal(r), r.Method, r.URL.Path, key} {
			scope.Write([]byte(part))
			scope.Write([]byte{0})
		}
		// The fingerprint is keyed by the Idempotency-Key, which is only in
		// the scope hash: a body's secret cannot be brute-forced from it.
		fp := hmac.New(sha256.New, []byte(key))
		fp.Write([]byte(r.URL.RawQuery))
		fp.Write([]byte{0})
		fp.Write(body)
		// The stored response is sealed under a key derived from the
		// Idempotency-Key too: a response that carries a secret (the
		// generated PKCS#12 password of a retrieval, IS-8) is never in the
		// database in plaintext (SE-1), and only a caller holding the key
		// can have it replayed.
		sk := hmac.New(sha256.New, []byte(key))
		sk.Write([]byte("certlife idempotent response v1"))
		sk.Write(scope.Sum(nil))
		c := call{s: s, scope: scope.Sum(nil), fingerprint: fp.Sum(nil), sealKey: sk.Sum(nil), owner: uuid.New()}
		c.serve(w, r, next)
	})
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

type call struct {
	s           *Store
	scope       []byte
	fingerprint []byte
	sealKey     []byte
	owner       uuid.UUID
}

// seal encrypts a response body for storage (AES-256-GCM, bound to the
// key's scope).
func (c *call) seal(body []byte) ([]byte, error) { return seal.SealAEAD(c.sealKey, body, c.scope) }

func (c *call) open(sealed []byte) ([]byte, error) { return seal.OpenAEAD(c.sealKey, sealed, c.scope) }

func (c *call) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := r.Context()
	var deadline time.Time
	pause := 20 * time.Millisecond
	for {
		claimed, err := c.claim(ctx, r)
		if err != nil {
			httpx.WriteError(w, r, c.s.Log, err)
			return
		}
		if claimed {
			c.run(w, r, next)
			return
		}
		rec, err := c.load(ctx)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // released (a 5xx) or expired since the claim: try again
		}
		if err != nil {
			httpx.WriteError(w, r, c.s.Log, err)
			return
		}
		if !hmac.Equal(rec.fingerprint, c.fingerprint) {
			httpx.WriteProblem(w, r, httpx.NewProblem(http.StatusUnprocessableEntity, "idempotency-key-reused",
				"Idempotency-Key reused", "this Idempotency-Key was used with another request body; use a new key for a new request"))
			return
		}
		if rec.status != nil {
			body, err := c.open(rec.body)
			if err != nil {
				httpx.WriteError(w, r, c.s.Log, fmt.Errorf("idempotency: stored response: %w", err))
				return
			}
			rec.body = body
			replay(w, rec)
			return
		}
		// In progress: wait a little for the first request's answer.
		if deadline.IsZero() {
			deadline = time.Now().Add(c.s.wait())
		}
		if !time.Now().Before(deadline) {
			p := httpx.NewProblem(http.StatusConflict, "idempotency-in-progress", "Request in progress",
				"a request with this Idempotency-Key is still being processed; retry shortly")
			p.RetryAfter = time.Second
			httpx.WriteProblem(w, r, p)
			return
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// claim inserts the record in progress, or takes over an expired record
// or an abandoned one (lease passed) of the same request.
func (c *call) claim(ctx context.Context, r *http.Request) (bool, error) {
	now := c.s.Clock.Now()
	tag, err := c.s.DB.Exec(ctx, `
		INSERT INTO idempotency_keys (scope, method, path, fingerprint, owner, lease_until, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (scope) DO UPDATE SET
			fingerprint = EXCLUDED.fingerprint, owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
			status = NULL, headers = NULL, body = NULL,
			created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
		WHERE idempotency_keys.expires_at <= $7
		   OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= $7
		       AND idempotency_keys.fingerprint = EXCLUDED.fingerprint)`,
		c.scope, r.Method, r.URL.Path, c.fingerprint, c.owner, now.Add(c.s.lease()), now, now.Add(c.s.ttl()))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (c *call) load(ctx context.Context) (record, error) {
	var rec record
	err := c.s.DB.QueryRow(ctx, `SELECT fingerprint, status, headers, body, lease_until
		FROM idempotency_keys WHERE scope = $1 AND expires_at > $2`, c.scope, c.s.Clock.Now()).
		Scan(&rec.fingerprint, &rec.status, &rec.headers, &rec.body, &rec.leaseUntil)
	return rec, err
}

// run executes the request as the key's owner and keeps its response,
// or releases the key when the response is not to be kept.
func (c *call) run(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := &recorder{ResponseWriter: w}
	finished := false
	defer func() {
		// Written even when the client has gone: the work was done.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if !finished || !storable(status) {
			if _, err := c.s.DB.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND owner = $2`, c.scope, c.owner); err != nil {
				c.logWarn("idempotency key not released", err)
			}
			return
		}
		headers, _ := json.Marshal(rec.kept)
		sealed, err := c.seal(rec.body.Bytes())
		if err != nil {
			c.logWarn("idempotent response not sealed", err)
			return
		}
		if _, err := c.s.DB.Exec(ctx, `UPDATE idempotency_keys
			SET status = $3, headers = $4, body = $5, owner = NULL, lease_until = NULL
			WHERE scope = $1 AND owner = $2`, c.scope, c.owner, status, headers, sealed); err != nil {
			// The key stays in progress until its lease passes; then a retry runs again.
			c.logWarn("idempotent response not recorded", err)
		}
	}()
	next.ServeHTTP(rec, r)
	finished = true // a panic leaves it false: the key is released, the panic goes on
}

func (c *call) logWarn(msg string, err error) {
	if c.s.Log != nil {
		c.s.Log.Warn(msg, "err", err)
	}
}

// storable: a response is kept unless it is a server failure or depends
// on the caller's credentials or on time rather than on the request.
func storable(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status >= 200 && status < 500
}

// notKept are headers a replay must not repeat.
var notKept = map[string]bool{
	"Date": true, "Content-Length": true, "Set-Cookie": true, "Connection": true,
	"Transfer-Encoding": true, "Retry-After": true, ReplayedHeader: true,
}

func replay(w http.ResponseWriter, rec record) {
	var headers http.Header
	_ = json.Unmarshal(rec.headers, &headers)
	for k, vs := range headers {
		w.Header()[k] = vs
	}
	w.Header().Set(ReplayedHeader, "true")
	w.WriteHeader(*rec.status)
	_, _ = w.Write(rec.body)
}

// recorder passes the response through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	kept   http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
		r.kept = http.Header{}
		for k, vs := range r.Header() {
			if !notKept[k] {
				r.kept[k] = append([]string(nil), vs...)
			}
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Prune deletes up to limit records that expired by now; the retention
// timers call it per service. It returns how many it deleted.
func Prune(ctx context.Context, q db.Querier, now time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope IN (
		SELECT scope FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`, now, limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Prune deletes up to limit expired records of this store.
func (s *Store) Prune(ctx context.Context, limit int) (int64, error) {
	return Prune(ctx, s.DB, s.Clock.Now(), limit)
}
