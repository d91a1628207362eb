package app_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/certlife/platform/pkg/app"
)

// OP-3: every request is counted and timed by method, route pattern and
// status — the pattern, never the raw path, so that IDs make no series;
// unknown methods are "other" and unmatched paths "none"; a handler's
// panic counts as the 500 it becomes.
func TestHTTPMetricsByRoutePattern_OP3(t *testing.T) {
	reg := app.NewRegistry()
	r := app.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	r.Get("/v1/things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	r.Get("/v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	do := func(method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do("GET", "/v1/things/1")
	do("GET", "/v1/things/2")
	do("GET", "/v1/boom")
	do("GET", "/nowhere/3")
	do("BREW", "/v1/things/4")

	want := `
# HELP http_requests_total HTTP requests answered, by method, route pattern and status code.
# TYPE http_requests_total counter
http_requests_total{code="204",method="GET",route="/v1/things/{id}"} 2
http_requests_total{code="404",method="GET",route="none"} 1
http_requests_total{code="405",method="other",route="none"} 1
http_requests_total{code="500",method="GET",route="/v1/boom"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "http_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "http_request_duration_seconds"); n != 4 {
		t.Fatalf("%d duration series, want 4 (one per method and route)", n)
	}
	// Building another router on the same registry reuses the collectors.
	app.NewRouter(slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
}
