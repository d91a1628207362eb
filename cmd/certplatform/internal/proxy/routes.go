package proxy

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
)

// Any owns the routes that every service process serves alike (the
// dead-letter ops routes and the OpenAPI document): the proxy sends them
// to any replica of any service.
const Any = "*"

// Route gives a path pattern (chi syntax, every method) to the service
// that owns it.
type Route struct {
	Pattern string
	Service string
}

// Routes is split mode's route table (SPEC §5). routes_test.go walks the
// chi routes of every service and checks that each one lands on its
// owner here, and that each entry here is served by its owner: a route
// added to a service without a line here fails the test instead of
// answering 404 behind the proxy.
//
// chi matches a static segment before a parameter and a parameter before
// a catch-all, so /v1/certificates/{id}/renewals (intake) wins over
// /v1/certificates/* (issuer).
var Routes = []Route{
	// intake: applications, sessions, renewal and reissue applications.
	{"/v1/applications", "intake"},
	{"/v1/applications/*", "intake"},
	{"/v1/sessions", "intake"},
	{"/v1/certificate-codes", "intake"},
	{"/v1/certificates/{id}/renewals", "intake"},
	{"/v1/certificates/{id}/reissues", "intake"},
	{"/v1/certificates/{id}/prefill", "intake"},
	{"/ops/v1/maintenance-windows", "intake"},
	{"/ops/v1/maintenance-windows/*", "intake"},
	{"/ops/v1/applications", "intake"},
	{"/ops/v1/applications/*", "intake"},
	// intake: the ACME server (SPEC §4.10) and its ops routes.
	{"/acme/*", "intake"},
	{"/ops/v1/acme/*", "intake"},
	// intake: server customers and orders (SV-1, SV-2, SV-12).
	{"/v1/orders", "intake"},
	{"/v1/orders/*", "intake"},
	{"/v1/certificates/{id}/renewal-intent", "intake"},
	{"/v1/renewal-intents", "intake"},
	{"/v1/customers/password", "intake"},
	{"/ops/v1/certificates/import", "intake"},

	// issuer: every other certificate route, CA certificates, CRLs,
	// revocation.
	{"/v1/certificates", "issuer"},
	{"/v1/certificates/*", "issuer"},
	{"/ca/*", "issuer"},
	{"/crl/*", "issuer"},
	{"/ops/v1/revocations", "issuer"},
	{"/ops/v1/mass-revocations", "issuer"},
	{"/ops/v1/mass-revocations/*", "issuer"},
	{"/ops/v1/issuance-failures", "issuer"},
	{"/ops/v1/issuance-failures/*", "issuer"},

	// billing: coupons, prices, invoices, payments.
	{"/ops/v1/coupons", "billing"},
	{"/ops/v1/prices", "billing"},
	{"/ops/v1/invoices", "billing"},
	{"/ops/v1/bank-statements", "billing"},
	{"/ops/v1/payment-exceptions", "billing"},
	{"/ops/v1/payment-exceptions/*", "billing"},
	{"/v1/invoices/*", "billing"},
	{"/v1/webhooks/payments", "billing"},

	// validation: the review queue, the registry, validation records.
	{"/ops/v1/reviews", "validation"},
	{"/ops/v1/reviews/*", "validation"},
	{"/ops/v1/registry", "validation"},
	{"/ops/v1/validations", "validation"},
	{"/ops/v1/phone-checks", "validation"},
	{"/ops/v1/phone-checks/*", "validation"},
	// The customer's domain validation of a server application: more
	// specific than intake's /v1/applications/* (chi: a parameter
	// before a catch-all), and the e-mailed link.
	{"/v1/applications/{id}/dcv", "validation"},
	{"/v1/dcv/confirm", "validation"},

	// notifier: the delivery log.
	{"/ops/v1/deliveries", "notifier"},

	// Served by every service process (pkg/app).
	{"/v1/openapi.json", Any},
	{"/ops/v1/dead-letters", Any},
	{"/ops/v1/dead-letters/*", Any},
	{"/ops/v1/whoami", Any},
	{"/ops/v1/audit", Any},
	{"/ops/v1/audit/verify", Any},
	{"/ops/v1/outbox-quarantine", Any},
	{"/ops/v1/outbox-quarantine/*", Any},
	{"/ops/v1/timers/parked", Any},
	{"/ops/v1/timers/parked/*", Any},
}

// OwnRoutes are answered by the proxy itself, not forwarded.
var OwnRoutes = []string{"/healthz", "/readyz", "/metrics"}

// ConsoleRoutes are the ops console's pages (console.Patterns): static
// files the proxy serves itself, as the all-in-one does.
var ConsoleRoutes = console.Patterns

// Table resolves a request path to the service that owns it, with chi's
// own matching — the matching the services use.
type Table struct {
	mux    *chi.Mux
	owners map[string]string // pattern → service
}

// NewTable builds the table of routes.
func NewTable(routes []Route) *Table {
	t := &Table{mux: chi.NewRouter(), owners: map[string]string{}}
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, r := range routes {
		t.mux.Handle(r.Pattern, noop)
		t.owners[r.Pattern] = r.Service
	}
	for _, p := range append(append([]string{}, OwnRoutes...), ConsoleRoutes...) {
		t.mux.Handle(p, noop)
		t.owners[p] = ""
	}
	return t
}

// Owner returns the service owning method and path: "" for the proxy's
// own routes, Any for routes every service serves, ok=false for none.
func (t *Table) Owner(method, path string) (service string, ok bool) {
	pattern := t.mux.Find(chi.NewRouteContext(), method, path)
	if pattern == "" {
		return "", false
	}
	s, ok := t.owners[pattern]
	return s, ok
}
