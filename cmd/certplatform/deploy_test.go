package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// repo is the repository root (tests run in cmd/certplatform).
const repo = "../.."

// requireTool is the path of an external command. Missing, it fails the
// test under CI=true (.ci/run installs it) and skips it elsewhere.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (Debian package %s; .ci/run installs it)", name, pkg)
	}
	t.Skipf("%s is missing (apt-get install %s)", name, pkg)
	return ""
}

func runCmd(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// OP-3: the Prometheus configuration of deploy/compose, the alert and
// recording rules, and the rules' unit tests pass promtool.
func TestPrometheusRulesAndConfig_OP3(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	dir := filepath.Join(repo, "deploy", "prometheus")
	rules, _ := filepath.Glob(filepath.Join(dir, "rules", "*.yml"))
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(rules) < 2 || len(tests) < 2 {
		t.Fatalf("rules %v, tests %v", rules, tests)
	}
	for i := range rules {
		rules[i] = filepath.Base(rules[i])
	}
	for i := range tests {
		tests[i] = filepath.Base(tests[i])
	}
	runCmd(t, filepath.Join(dir, "rules"), promtool, append([]string{"check", "rules"}, rules...)...)
	runCmd(t, dir, promtool, "check", "config", "prometheus.yml")
	out := runCmd(t, filepath.Join(dir, "tests"), promtool, append([]string{"test", "rules"}, tests...)...)
	if strings.Count(out, "SUCCESS") != len(tests) {
		t.Fatalf("promtool test rules:\n%s", out)
	}
	// Every alert has a unit test (a rule added without one fails here).
	tested := map[string]bool{}
	for _, f := range tests {
		var file struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		readYAML(t, filepath.Join(dir, "tests", f), &file)
		for _, tc := range file.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					tested[a.Alertname] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert != "" && !tested[r.Alert] {
			t.Errorf("alert %s has no promtool test where it fires", r.Alert)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rule is an alerting or recording rule of deploy/prometheus/rules.
type rule struct {
	Alert  string `yaml:"alert"`
	Record string `yaml:"record"`
	Expr   string `yaml:"expr"`
}

func (r rule) name() string { return r.Alert + r.Record }

func loadRules(t *testing.T) []rule {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repo, "deploy", "prometheus", "rules", "*.yml"))
	var out []rule
	for _, f := range files {
		var file struct {
			Groups []struct {
				Rules []rule `yaml:"rules"`
			} `yaml:"groups"`
		}
		readYAML(t, f, &file)
		for _, g := range file.Groups {
			out = append(out, g.Rules...)
		}
	}
	if len(out) == 0 {
		t.Fatal("no rules")
	}
	return out
}

// panelQuery is one query of one dashboard panel.
type panelQuery struct{ dashboard, panel, expr string }

// grafanaDatasourceUID is the uid the provisioned Prometheus data source
// has, and every panel must name.
func grafanaDatasourceUID(t *testing.T) string {
	t.Helper()
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(repo, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].UID == "" {
		t.Fatalf("provisioned data sources: %+v", ds.Datasources)
	}
	return ds.Datasources[0].UID
}

type gPanel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []gPanel `json:"panels"` // rows
}

// loadDashboards reads every provisioned dashboard, checks its shape, and
// returns its queries.
func loadDashboards(t *testing.T) []panelQuery {
	t.Helper()
	uid := grafanaDatasourceUID(t)
	files, _ := filepath.Glob(filepath.Join(repo, "deploy", "grafana", "dashboards", "*.json"))
	sort.Strings(files)
	var out []panelQuery
	uids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID    string   `json:"uid"`
			Title  string   `json:"title"`
			Panels []gPanel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
			t.Fatalf("%s: uid %q title %q, %d panels", f, d.UID, d.Title, len(d.Panels))
		}
		if other, dup := uids[d.UID]; dup {
			t.Fatalf("%s and %s share uid %s", f, other, d.UID)
		}
		uids[d.UID] = f
		ids := map[int]bool{}
		var walk func(ps []gPanel)
		walk = func(ps []gPanel) {
			for _, p := range ps {
				walk(p.Panels)
				if p.Type == "row" {
					continue
				}
				if ids[p.ID] || p.Title == "" || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
					t.Errorf("%s: panel %d %q: duplicate id, no title or bad gridPos %+v", f, p.ID, p.Title, p.GridPos)
				}
				ids[p.ID] = true
				if p.Datasource.UID != uid || len(p.Targets) == 0 {
					t.Errorf("%s: panel %q: data source %q (want %q), %d queries", f, p.Title, p.Datasource.UID, uid, len(p.Targets))
				}
				refs := map[string]bool{}
				for _, q := range p.Targets {
					if q.Expr == "" || q.RefID == "" || refs[q.RefID] {
						t.Errorf("%s: panel %q: empty query or duplicate refId %q", f, p.Title, q.RefID)
					}
					refs[q.RefID] = true
					// Grafana variables would not reach Prometheus as written.
					if strings.Contains(q.Expr, "$") {
						t.Errorf("%s: panel %q: %q uses a Grafana variable", f, p.Title, q.Expr)
					}
					out = append(out, panelQuery{filepath.Base(f), p.Title, q.Expr})
				}
			}
		}
		walk(d.Panels)
	}
	if len(uids) < 4 {
		t.Fatalf("%d dashboards, want at least 4 (overview, pipeline, certificates, mail)", len(uids))
	}
	return out
}

var promQL = parser.NewParser(parser.Options{})

// OP-3: the dashboards are provisioned JSON with one data source, and
// every panel's expression and every rule's is valid PromQL (the
// real-Prometheus test checks they return series).
func TestGrafanaDashboardsParse_OP3(t *testing.T) {
	queries := loadDashboards(t)
	for _, q := range queries {
		if _, err := promQL.ParseExpr(q.expr); err != nil {
			t.Errorf("%s / %s: %q: %v", q.dashboard, q.panel, q.expr, err)
		}
	}
	var prov struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(repo, "deploy", "grafana", "provisioning", "dashboards", "certlife.yml"), &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		t.Fatalf("dashboard provider: %+v", prov.Providers)
	}
	for _, r := range loadRules(t) {
		if _, err := promQL.ParseExpr(r.Expr); err != nil {
			t.Errorf("rule %s: %v", r.name(), err)
		}
	}
}
