package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/opsauth"
)

// opsRouteRoles is the one table of which role each ops route requires
// (SE-5). opsauth.Admin routes are admin only; a reviewer or billing
// route also lets admin through; anyRole lets every valid token through.
// TestOpsRoutesEnforceRoles_SE5 checks that the table names every ops
// route the all-in-one serves: a new ops route without a line here fails.
//
// Lines marked pending name SPEC §5 routes built on other branches; they
// are checked once their route is mounted, and skipped until then.
var opsRouteRoles = []struct {
	Route   string // "METHOD pattern", chi syntax as the services register it
	Role    string
	Pending bool
}{
	{"GET /ops/v1/whoami", anyRole, false},

	// Review (OP-1) and the evidence reviewers look at.
	{"GET /ops/v1/reviews", opsauth.Reviewer, false},
	{"GET /ops/v1/reviews/{id}", opsauth.Reviewer, false},
	{"POST /ops/v1/reviews/{id}/approve", opsauth.Reviewer, false},
	{"POST /ops/v1/reviews/{id}/reject", opsauth.Reviewer, false},
	{"GET /ops/v1/applications", opsauth.Reviewer, false},
	{"GET /ops/v1/applications/{id}", opsauth.Reviewer, false},
	{"GET /ops/v1/validations", opsauth.Reviewer, false},
	{"GET /ops/v1/phone-checks", opsauth.Reviewer, false},
	{"POST /ops/v1/phone-checks/{id}", opsauth.Reviewer, false},

	// Billing (BI-3, BI-4): coupons, prices, bank statements, invoices,
	// imported certificates, EAB keys.
	{"POST /ops/v1/coupons", opsauth.Billing, false},
	{"GET /ops/v1/prices", opsauth.Billing, false},
	{"PUT /ops/v1/prices", opsauth.Billing, false},
	{"POST /ops/v1/bank-statements", opsauth.Billing, false},
	{"POST /ops/v1/certificates/import", opsauth.Billing, false},
	{"GET /ops/v1/invoices", opsauth.Billing, false},
	{"GET /ops/v1/payment-exceptions", opsauth.Billing, false},
	{"POST /ops/v1/payment-exceptions/{id}/resolution", opsauth.Billing, false},
	{"POST /ops/v1/acme/eab-keys", opsauth.Billing, false}, // a customer's ACME account key, handed out with the contract

	// Admin: the platform's state, certificates and their revocation,
	// keys, the audit log, failures and their replay.
	{"GET /ops/v1/audit", opsauth.Admin, false},
	{"GET /ops/v1/audit/verify", opsauth.Admin, false},
	{"GET /ops/v1/maintenance-windows", opsauth.Admin, false},
	{"POST /ops/v1/maintenance-windows", opsauth.Admin, false},
	{"DELETE /ops/v1/maintenance-windows/{id}", opsauth.Admin, false},
	{"POST /ops/v1/revocations", opsauth.Admin, false},
	{"POST /ops/v1/mass-revocations", opsauth.Admin, false},
	{"GET /ops/v1/mass-revocations/{id}", opsauth.Admin, false},
	{"GET /ops/v1/issuance-failures", opsauth.Admin, false},
	{"POST /ops/v1/issuance-failures/{id}/retry", opsauth.Admin, false},
	{"POST /ops/v1/registry", opsauth.Admin, false},
	{"GET /ops/v1/deliveries", opsauth.Admin, false},
	{"GET /ops/v1/dead-letters", opsauth.Admin, false},
	{"POST /ops/v1/dead-letters/{id}/replay", opsauth.Admin, false},
	{"GET /ops/v1/outbox-quarantine", opsauth.Admin, false},
	{"POST /ops/v1/outbox-quarantine/{service}/{id}/replay", opsauth.Admin, false},
	{"GET /ops/v1/timers/parked", opsauth.Admin, false},
	{"POST /ops/v1/timers/parked/{service}/{kind}/{key}/retry", opsauth.Admin, false},
	{"POST /ops/v1/acme/early-renewals", opsauth.Admin, false},
}

// anyRole: every valid ops token, whatever its roles.
const anyRole = "any"

// SE-5: every ops route of the all-in-one (its chi router, the console's
// static pages excepted) answers 401 without a token and with a bad one,
// 403 to a valid token without the route's role, and lets the route's
// role (and admin) through. The expected role of each route is declared
// in opsRouteRoles, which must be complete.
func TestOpsRoutesEnforceRoles_SE5(t *testing.T) {
	const reviewer, billing = "roles-reviewer-token-0123456789", "roles-billing-token-0123456789"
	e := startE2E(t, func(c *app.Config) {
		c.OpsTokens = opsToken + ":admin," + reviewer + ":reviewer," + billing + ":billing"
	}, nil)
	expected := map[string]string{}
	pending := map[string]bool{}
	for _, r := range opsRouteRoles {
		if _, dup := expected[r.Route]; dup {
			t.Fatalf("opsRouteRoles names %s twice", r.Route)
		}
		expected[r.Route], pending[r.Route] = r.Role, r.Pending
	}
	mounted := map[string]bool{}
	err := chi.Walk(e.p.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if !strings.HasPrefix(route, "/ops") || slices.Contains(console.Patterns, route) || method == http.MethodHead {
			return nil
		}
		mounted[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounted) < 20 {
		t.Fatalf("only %d ops routes found on the router", len(mounted))
	}
	for route := range mounted {
		if _, ok := expected[route]; !ok {
			t.Errorf("ops route %s has no line in opsRouteRoles: declare the role it requires", route)
		}
	}
	for _, r := range opsRouteRoles {
		if !mounted[r.Route] && !r.Pending {
			t.Errorf("opsRouteRoles names %s, which the all-in-one does not serve", r.Route)
		}
	}
	tokens := map[string]string{opsauth.Reviewer: reviewer, opsauth.Billing: billing, opsauth.Admin: opsToken}
	fill := strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000000", "{service}", "issuer",
		"{kind}", "none", "{key}", "none")
	for _, r := range opsRouteRoles {
		if !mounted[r.Route] {
			continue
		}
		method, pattern, _ := strings.Cut(r.Route, " ")
		path := fill.Replace(pattern)
		call := func(tok string) int {
			var h []string
			if tok != "" {
				h = []string{"Authorization", "Bearer " + tok}
			}
			return e.do(method, path, map[string]any{}, h...).Status
		}
		if got := call(""); got != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", r.Route, got)
		}
		if got := call("not-a-token-0123456789abcdef"); got != http.StatusUnauthorized {
			t.Errorf("%s with a bad token: %d, want 401", r.Route, got)
		}
		for _, role := range []string{opsauth.Reviewer, opsauth.Billing, opsauth.Admin} {
			allowed := r.Role == anyRole || r.Role == role || role == opsauth.Admin
			got := call(tokens[role])
			switch {
			case allowed && (got == http.StatusUnauthorized || got == http.StatusForbidden || got >= 500):
				t.Errorf("%s as %s: %d, want it let through (%s)", r.Route, role, got, describe(r.Role))
			case !allowed && got != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403 (%s)", r.Route, role, got, describe(r.Role))
			}
		}
	}
}

func describe(role string) string {
	if role == anyRole {
		return "any role"
	}
	return fmt.Sprintf("requires %s", role)
}
