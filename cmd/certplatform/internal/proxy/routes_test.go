package proxy

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
	"github.com/certlife/platform/cmd/certplatform/internal/runner"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/testenv"
)

var param = regexp.MustCompile(`\{[^}]*\}`)

// concrete turns a chi pattern into a path it matches.
func concrete(pattern string) string {
	p := param.ReplaceAllString(pattern, "0190a5e4-0000-7000-8000-000000000000")
	if n := len(p); n > 0 && p[n-1] == '*' {
		p = p[:n-1] + "x"
	}
	return p
}

type walked struct{ method, route string }

func walk(t *testing.T, r chi.Routes) []walked {
	t.Helper()
	var out []walked
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, walked{method, route})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SPEC §5, §7 (split mode): the proxy's route table cannot drift from the
// services. Every chi route of every service lands on that service in the
// table; every route all service processes share (pkg/app) lands on Any
// or the proxy itself; and every entry of the table is used by its owner.
func TestRouteTableMatchesEveryServiceRoute_SplitMode(t *testing.T) {
	p := testenv.Start(t, testenv.Options{Config: func(c *app.Config) {
		c.DevMode = true           // the issuer's throwaway CA
		c.SMTPAddr = "127.0.0.1:1" // never dialled: no mail is sent here
		if _, err := runner.DevSecrets(c); err != nil {
			t.Fatal(err)
		}
	}}, runner.Definitions...)
	table := NewTable(Routes)
	used := map[string]bool{}
	check := func(method, route, want string) {
		path := concrete(route)
		got, ok := table.Owner(method, path)
		switch {
		case !ok:
			t.Errorf("%s %s (%s) has no line in proxy.Routes: it would answer 404 behind the proxy", method, route, want)
		case got != want && !(want == Any && got == ""):
			t.Errorf("%s %s belongs to %q but the proxy sends it to %q", method, route, want, got)
		default:
			used[table.mux.Find(chi.NewRouteContext(), method, path)] = true
		}
	}
	for _, u := range p.Units {
		r := chi.NewRouter()
		u.Service.Routes(r)
		routes := walk(t, r)
		if len(routes) == 0 {
			t.Errorf("%s serves no route: the walk found nothing", u.Deps.Name)
		}
		for _, w := range routes {
			check(w.method, w.route, u.Deps.Name)
		}
	}
	// What every service process serves besides its own routes.
	ops, err := opsauth.Parse(testenv.OpsToken + ":admin")
	if err != nil {
		t.Fatal(err)
	}
	common := app.NewRouter(p.Log, app.NewRegistry())
	app.DeadLetterRoutes(common, p.JS, ops, p.Log)
	app.AuditRoutes(common, p.NC, p.JS, ops, p.Log)
	app.RuntimeOpsRoutes(common, p.Units...)
	app.WhoamiRoutes(common, ops)
	for _, w := range walk(t, common) {
		check(w.method, w.route, Any)
	}
	// The ops console's pages: the proxy serves them itself.
	pages := chi.NewRouter()
	console.Routes(pages)
	for _, w := range walk(t, pages) {
		check(w.method, w.route, "")
	}
	for _, rt := range Routes {
		if !used[rt.Pattern] {
			t.Errorf("proxy.Routes has %s → %s, which no route of %s uses", rt.Pattern, rt.Service, rt.Service)
		}
	}
	for _, own := range OwnRoutes {
		if !used[own] {
			t.Errorf("the proxy answers %s itself, but no service process serves it", own)
		}
	}
}

// The renewal and reissue routes under /v1/certificates belong to intake,
// every other certificate route to the issuer (SPEC §5).
func TestCertificateRoutesSplitBetweenIntakeAndIssuer(t *testing.T) {
	table := NewTable(Routes)
	id := "0190a5e4-0000-7000-8000-000000000000"
	for path, want := range map[string]string{
		"/v1/certificates/" + id + "/renewals":         "intake",
		"/v1/certificates/" + id + "/reissues":         "intake",
		"/v1/certificates":                             "issuer",
		"/v1/certificates/" + id + "/retrieval":        "issuer",
		"/v1/certificates/" + id + "/retrieval/pkcs12": "issuer",
		"/v1/certificates/" + id + "/renewals/extra":   "issuer",
		"/v1/applications/" + id:                       "intake",
		"/ops/v1/reviews/" + id + "/approve":           "validation",
		"/ops/v1/dead-letters/12/replay":               Any,
		"/ops/v1/applications/" + id:                   "intake",
		"/ops/v1/timers/parked/intake/k/x/retry":       Any,
		"/metrics":                                     "",
		"/ops/":                                        "",
		"/ops/reviews":                                 "",
		"/ops/assets/pages/reviews.js":                 "",
	} {
		if got, ok := table.Owner(http.MethodPost, path); !ok || got != want {
			t.Errorf("%s → %q (found %v), want %q", path, got, ok, want)
		}
	}
	for _, path := range []string{"/v2/anything", "/ops/v1/nothing-here", "/ops/a/b"} {
		if _, ok := table.Owner(http.MethodGet, path); ok {
			t.Errorf("%s has an owner", path)
		}
	}
}
