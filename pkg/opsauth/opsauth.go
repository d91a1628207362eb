// Package opsauth authenticates operators: bearer tokens with roles, read
// from OPS_TOKENS as "token:role[+role…],…" (SE-5).
package opsauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/certlife/platform/pkg/httpx"
)

// Roles.
const (
	Reviewer = "reviewer"
	Billing  = "billing"
	Admin    = "admin"
)

var knownRoles = []string{Reviewer, Billing, Admin}

type entry struct {
	hash  [32]byte
	roles []string
	actor string
}

// Tokens is the set of accepted ops tokens. Only their hashes are kept.
type Tokens struct {
	entries []entry
	record  Recorder
}

// Recorder is told of every request a token was checked for, after it
// was answered: the audit log of the service that served it (OP-4, SE-5).
// actor is empty when no valid token was shown.
type Recorder func(r *http.Request, actor string, status int)

// WithRecorder is t, with every request also given to rec.
func (t *Tokens) WithRecorder(rec Recorder) *Tokens {
	c := *t
	c.record = rec
	return &c
}

// Parse reads the OPS_TOKENS format.
func Parse(spec string) (*Tokens, error) {
	t := &Tokens{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		tok, roles, ok := strings.Cut(item, ":")
		if !ok || len(tok) < 16 {
			return nil, fmt.Errorf("OPS_TOKENS: each entry is token:role[+role], tokens of 16+ characters")
		}
		e := entry{hash: sha256.Sum256([]byte(tok))}
		for _, r := range strings.Split(roles, "+") {
			if !slices.Contains(knownRoles, r) {
				return nil, fmt.Errorf("OPS_TOKENS: unknown role %q", r)
			}
			e.roles = append(e.roles, r)
		}
		// The actor recorded in audit and logs is a fingerprint, never the token.
		e.actor = "ops:" + hex.EncodeToString(e.hash[:4])
		t.entries = append(t.entries, e)
	}
	return t, nil
}

type actorKey struct{}

type rolesKey struct{}

// Actor is the authenticated operator of a request ("ops:<fingerprint>").
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// Roles are the roles of the request's token, in the order OPS_TOKENS
// gave them (empty for a request no token was checked for). The console
// shows only what they allow; the routes enforce them (Require).
func Roles(ctx context.Context) []string {
	r, _ := ctx.Value(rolesKey{}).([]string)
	return slices.Clone(r)
}

// Any is the role argument of Require that lets through every valid
// token, whatever its roles (GET /ops/v1/whoami).
const Any = ""

// Require lets through requests bearing a token with role (or admin);
// role Any lets through every valid token.
// The request is recorded (WithRecorder) before its answer leaves, so a
// client that has its answer finds the record.
func (t *Tokens) Require(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t.record == nil {
				t.serve(w, r, role, next, func(string) {})
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			sw.before = func(status int) { t.record(r, sw.actor, status) }
			t.serve(sw, r, role, next, func(a string) { sw.actor = a })
			sw.flush(http.StatusOK)
		})
	}
}

func (t *Tokens) serve(w http.ResponseWriter, r *http.Request, role string, next http.Handler, identified func(actor string)) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ops"`)
		httpx.WriteProblem(w, r, httpx.Unauthorized("an ops bearer token is required"))
		return
	}
	h := sha256.Sum256([]byte(tok))
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			identified(e.actor)
			if role != Any && !slices.Contains(e.roles, role) && !slices.Contains(e.roles, Admin) {
				httpx.WriteProblem(w, r, httpx.Forbidden("this token lacks the "+role+" role"))
				return
			}
			ctx := context.WithValue(r.Context(), actorKey{}, e.actor)
			next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, rolesKey{}, e.roles)))
			return
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="ops"`)
	httpx.WriteProblem(w, r, httpx.Unauthorized("unknown ops token"))
}

// statusWriter calls before once, with the status, just before the
// answer's header is written.
type statusWriter struct {
	http.ResponseWriter
	before func(status int)
	actor  string // set once the token is known
	done   bool
}

func (s *statusWriter) flush(status int) {
	if !s.done {
		s.done = true
		s.before(status)
	}
}

func (s *statusWriter) WriteHeader(code int) {
	s.flush(code)
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.flush(http.StatusOK)
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
