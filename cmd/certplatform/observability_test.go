package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// prometheusServer is a real Prometheus (Debian's package) with its own
// configuration and storage in a temporary directory.
type prometheusServer struct {
	t          *testing.T
	url        string
	lastScrape time.Time
}

func startPrometheus(t *testing.T, bin, target string) *prometheusServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(repo, "deploy", "prometheus", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	// The scrape and evaluation intervals are short so that the test waits
	// seconds (the timeout leaves room for a loaded machine); the rules
	// are the deployment's own.
	cfg := fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 1s
rule_files:
  - %s/*.yml
scrape_configs:
  - job_name: certplatform
    static_configs: [{targets: [%q]}]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &prometheusServer{t: t, url: "http://" + addr}
	testenv.Eventually(t, 30*time.Second, "prometheus ready", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func (p *prometheusServer) api(path string, q url.Values, v any) {
	p.t.Helper()
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		p.t.Fatalf("%s: %v", path, err)
	}
	if env.Status != "success" {
		p.t.Fatalf("%s %v: %s %s", path, q, env.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		p.t.Fatal(err)
	}
}

// scrapeAfter waits for a successful scrape that began after t0.
func (p *prometheusServer) scrapeAfter(t0 time.Time) {
	p.t.Helper()
	testenv.Eventually(p.t, 60*time.Second, "a successful scrape", func() bool {
		var targets struct {
			ActiveTargets []struct {
				Health     string    `json:"health"`
				LastScrape time.Time `json:"lastScrape"`
				LastError  string    `json:"lastError"`
			} `json:"activeTargets"`
		}
		p.api("/api/v1/targets", url.Values{"state": {"active"}}, &targets)
		if len(targets.ActiveTargets) != 1 {
			return false
		}
		tg := targets.ActiveTargets[0]
		p.lastScrape = tg.LastScrape
		return tg.Health == "up" && tg.LastScrape.After(t0)
	})
}

// query runs an instant query; err is Prometheus's answer when it refused.
func (p *prometheusServer) query(expr string) (series int, err error) {
	p.t.Helper()
	resp, herr := http.Get(p.url + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if herr != nil {
		p.t.Fatal(herr)
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatal(err)
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("%s", out.Error)
	}
	if out.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(out.Data.Result), nil
}

// scrapedAfter waits until two successful scrapes began after t0 (a
// rate needs two samples, and Prometheus's first scrape may come only
// then), and the rule groups have been evaluated after them.
func (p *prometheusServer) scrapedAfter(t0 time.Time) {
	p.t.Helper()
	var scraped time.Time
	for i := 0; i < 2; i++ {
		p.scrapeAfter(t0)
		t0 = p.lastScrape
	}
	scraped = t0
	testenv.Eventually(p.t, 60*time.Second, "rules evaluated after the scrape", func() bool {
		var rules struct {
			Groups []struct {
				Name           string    `json:"name"`
				LastEvaluation time.Time `json:"lastEvaluation"`
				Rules          []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		p.api("/api/v1/rules", nil, &rules)
		if len(rules.Groups) == 0 {
			return false
		}
		for _, g := range rules.Groups {
			if !g.LastEvaluation.After(scraped) {
				return false
			}
			for _, r := range g.Rules {
				if r.Health == "err" {
					p.t.Fatalf("rule %s/%s: %s", g.Name, r.Name, r.LastError)
				}
			}
		}
		return true
	})
}

// serviceNamePrefix finds metrics named after the service that labels them.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*service="([^"]+)"`)

// OP-3: a real Prometheus scrapes the all-in-one while a client flow runs
// (coupons, an application cancelled inside its window, one through the
// cancel window, auto-approved review, code, retrieval); then every
// dashboard panel's expression and every recording rule returns series,
// and every alert parses and each metric selector in it returns series —
// no panel or alert refers to a metric that does not exist. The scrape
// itself passes `promtool check metrics`, and no metric carrying a
// service label is named after that service.
func TestPrometheusSeesEveryDashboardAndRuleMetric_OP3(t *testing.T) {
	prom := requireTool(t, "prometheus", "prometheus")
	promtool := requireTool(t, "promtool", "prometheus")
	e := startE2E(t, nil, nil)
	p := startPrometheus(t, prom, strings.TrimPrefix(e.p.URL, "http://"))

	// The flow (as TestClientFlowEndToEnd, shorter).
	coupons := e.importCoupons(2)
	c := e.submit(coupons[1], "obs-cancel@example.co.jp")
	if r := e.do("POST", "/v1/applications/"+c.ID+"/cancellation", nil, basicAuth("obs-cancel@example.co.jp")...); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	email := "obs@example.co.jp"
	a := e.submit(coupons[0], email)
	e.waitEvent(events.TypeCouponReserved, a.ID)
	e.advance("61m")
	e.waitEvent(events.TypeCertificateReady, a.ID)
	token := e.login(email, e.waitCode(email, 1))
	ready := e.eligible(token, "retrieval")
	if len(ready) != 1 {
		t.Fatalf("ready: %+v", ready)
	}
	e.retrievePKCS12(token, ready[0].ID, "a strong p12 password")
	testenv.Eventually(t, 30*time.Second, "status issued", func() bool { return e.view(a.ID, email).Status == "issued" })
	flowDone := time.Now()

	// The exposition lints clean.
	scrape := e.do("GET", "/metrics", nil)
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = bytes.NewReader(scrape.Body)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(scrape.Body), "\n") {
		if m := sampleLine.FindStringSubmatch(line); m != nil && strings.HasPrefix(m[1], m[2]+"_") {
			t.Errorf("%s carries service=%q and repeats it in its name", m[1], m[2])
		}
	}
	// HTTP requests are labelled by route pattern, never by raw path.
	if !strings.Contains(string(scrape.Body), `route="/v1/applications/{id}"`) || strings.Contains(string(scrape.Body), a.ID) {
		t.Error("http_requests_total is not labelled by route pattern")
	}

	p.scrapedAfter(flowDone)

	for _, q := range loadDashboards(t) {
		n, err := p.query(q.expr)
		switch {
		case err != nil:
			t.Errorf("%s / %s: %q: %v", q.dashboard, q.panel, q.expr, err)
		case n == 0:
			t.Errorf("%s / %s: %q returns no series", q.dashboard, q.panel, q.expr)
		}
	}
	for _, r := range loadRules(t) {
		n, err := p.query(r.Expr)
		if err != nil {
			t.Errorf("rule %s: %v", r.name(), err)
			continue
		}
		if r.Record != "" {
			if n == 0 {
				t.Errorf("recording rule %s returns no series", r.Record)
			}
			if m, _ := p.query(r.Record); m == 0 {
				t.Errorf("recording rule %s has not recorded", r.Record)
			}
			continue
		}
		// An alert is normally quiet: its metrics must exist instead.
		expr, err := promQL.ParseExpr(r.Expr)
		if err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
			continue
		}
		for _, sel := range parser.ExtractSelectors(expr) {
			q := equalitySelector(sel)
			if n, err := p.query(q); err != nil || n == 0 {
				t.Errorf("alert %s: %s returns no series (%v)", r.Alert, q, err)
			}
		}
	}
}

// equalitySelector keeps a selector's equality matchers (the metric name
// and fixed label values, which must exist); regular expressions and
// negations may rightly match nothing in a healthy platform.
func equalitySelector(ms []*labels.Matcher) string {
	var parts []string
	for _, m := range ms {
		if m.Type == labels.MatchEqual {
			parts = append(parts, m.String())
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}
