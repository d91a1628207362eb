package app_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/testenv"
)

type noRoutes struct{}

func (noRoutes) Routes(chi.Router)           {}
func (noRoutes) Start(context.Context) error { return nil }

// SE-5: GET /ops/v1/whoami tells any valid token its identity (a
// fingerprint, never the token) and roles, refuses a missing or unknown
// token, and is audited like every ops request (OP-4).
func TestWhoamiNamesTheTokensRoles_SE5(t *testing.T) {
	const reviewer, both = "whoami-reviewer-token-0123456789", "whoami-both-token-0123456789ab"
	def := app.Definition{Name: "whoamitest", New: func(*app.Deps) (app.Service, error) { return noRoutes{}, nil }}
	p := testenv.Start(t, testenv.Options{Config: func(c *app.Config) {
		c.OpsTokens = reviewer + ":reviewer," + both + ":billing+reviewer"
	}}, def)

	for name, auth := range map[string][]string{
		"no token":  nil,
		"bad token": {"Authorization", "Bearer not-a-known-token-0123456789"},
		"basic":     {"Authorization", "Basic d2hvOmFtaQ=="},
	} {
		if r := p.Do("GET", "/ops/v1/whoami", nil, auth...); r.Status != 401 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want a 401 problem", name, r.Status, r.Body)
		}
	}
	for tok, want := range map[string][]string{reviewer: {"reviewer"}, both: {"billing", "reviewer"}} {
		r := p.Do("GET", "/ops/v1/whoami", nil, "Authorization", "Bearer "+tok)
		var who app.Whoami
		r.JSON(t, &who)
		if r.Status != 200 || !slices.Equal(who.Roles, want) || !strings.HasPrefix(who.Actor, "ops:") {
			t.Fatalf("whoami: %d %s, want roles %v", r.Status, r.Body, want)
		}
		if strings.Contains(string(r.Body), tok) {
			t.Fatal("whoami shows the token")
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		var n int
		err := p.Unit("whoamitest").Deps.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM audit_log WHERE action = 'ops.request' AND subject = '/ops/v1/whoami' AND actor = $1`, who.Actor).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("audit entries of %s's whoami: %d (%v), want 1", who.Actor, n, err)
		}
	}
}
