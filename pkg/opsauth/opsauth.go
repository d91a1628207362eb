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
type Tokens struct{ entries []entry }

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

// Actor is the authenticated operator of a request ("ops:<fingerprint>").
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// Require lets through requests bearing a token with role (or admin).
func (t *Tokens) Require(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || tok == "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ops"`)
				httpx.WriteProblem(w, r, httpx.Unauthorized("an ops bearer token is required"))
				return
			}
			h := sha256.Sum256([]byte(tok))
			for _, e := range t.entries {
				if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
					if !slices.Contains(e.roles, role) && !slices.Contains(e.roles, Admin) {
						httpx.WriteProblem(w, r, httpx.Forbidden("this token lacks the "+role+" role"))
						return
					}
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, e.actor)))
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="ops"`)
			httpx.WriteProblem(w, r, httpx.Unauthorized("unknown ops token"))
		})
	}
}
