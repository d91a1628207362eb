package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
	"github.com/certlife/platform/pkg/openapi"
)

// openAPIPath is where the document is served; it is exempt from "every
// documented route is registered" until the runtime mounts it.
const openAPIPath = "/v1/openapi.json"

// chiMethods are the methods chi registers for a route that takes any
// method (r.Handle, e.g. /metrics).
var chiMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// normalize makes chi's and OpenAPI's templates comparable: parameter
// names (and chi's regexp constraints) do not matter, their places do.
func normalize(p string) string { return pathParam.ReplaceAllString(p, "{}") }

// documentedRoutes reads pkg/openapi's document: normalized path → methods.
func documentedRoutes(t *testing.T) map[string][]string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	out := map[string][]string{}
	for p, item := range doc.Paths {
		for k := range item {
			m := strings.ToUpper(k)
			if slices.Contains(chiMethods, m) {
				out[normalize(p)] = append(out[normalize(p)], m)
			}
		}
	}
	return out
}

// TestOpenAPIMatchesRouter_SE4 builds the all-in-one router (with
// CLOCK_CONTROL, as startE2E sets it) and checks that every route it
// registers is in the OpenAPI document (SPEC §5) and that every
// documented operation is a registered route.
func TestOpenAPIMatchesRouter_SE4(t *testing.T) {
	e := startE2E(t, nil, nil)
	registered := map[string][]string{}
	err := chi.Walk(e.p.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if slices.Contains(console.Patterns, route) {
			return nil // the ops console's HTML pages and files, not API
		}
		p := normalize(route)
		if !slices.Contains(registered[p], method) {
			registered[p] = append(registered[p], method)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) == 0 {
		t.Fatal("the router has no routes: the walk is broken")
	}
	documented := documentedRoutes(t)

	var undocumented, unregistered []string
	for p, ms := range registered {
		doc := documented[p]
		if anyMethod(ms) {
			// A route for every method (e.g. /metrics) is documented by
			// the methods meant to be used; it needs at least one.
			if len(doc) == 0 {
				undocumented = append(undocumented, "* "+p)
			}
			continue
		}
		for _, m := range ms {
			if !slices.Contains(doc, m) {
				undocumented = append(undocumented, m+" "+p)
			}
		}
	}
	for p, ms := range documented {
		if p == openAPIPath && registered[p] == nil {
			continue // not mounted by the runtime yet
		}
		for _, m := range ms {
			if !slices.Contains(registered[p], m) {
				unregistered = append(unregistered, m+" "+p)
			}
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unregistered)
	for _, r := range undocumented {
		t.Errorf("registered but not in pkg/openapi/openapi.json: %s", r)
	}
	for _, r := range unregistered {
		t.Errorf("documented in pkg/openapi/openapi.json but not registered: %s", r)
	}

	// The dev clock is registered only with CLOCK_CONTROL: startE2E turns
	// it on, so the comparison above must have seen it.
	if !slices.Contains(registered["/dev/v1/clock"], "POST") {
		t.Error("POST /dev/v1/clock is not registered with CLOCK_CONTROL on")
	}

	// Once mounted, the route serves this very document.
	if slices.Contains(registered[openAPIPath], "GET") {
		r := e.do(http.MethodGet, openAPIPath, nil)
		if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
			!bytes.Equal(r.Body, openapi.Document()) {
			t.Errorf("GET %s: status %d, Content-Type %q: not pkg/openapi's document", openAPIPath, r.Status, r.Header.Get("Content-Type"))
		}
	} else {
		t.Logf("GET %s is not mounted yet", openAPIPath)
	}
}

func anyMethod(ms []string) bool {
	for _, m := range chiMethods {
		if !slices.Contains(ms, m) {
			return false
		}
	}
	return true
}
