package dcv

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// VA-7: an agent answers checks over NATS request/reply on its own
// subject; the primary asks every configured agent at once, and one that
// is not connected, or never answers, is observed as no_answer.
func TestAgentsOverNATS_VA7(t *testing.T) {
	w := newWorld(t)
	w.auth.TXT(t, "_pki-validation.a.plain.test", value)
	n := testenv.StartNATS(t)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	log := slog.New(slog.DiscardHandler)
	// The agent looks through the authoritative server directly (a
	// perspective of its own, no shared cache).
	c, err := NewChecker(Config{DNSServer: w.auth.Addr, HTTPPort: w.web.port, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	agent := &Agent{Name: "tokyo-1", Region: "apnic", Checker: c, Log: log}
	if _, err := agent.Serve(nc); err != nil {
		t.Fatal(err)
	}
	// A subscriber that takes requests and never answers.
	if _, err := nc.Subscribe(events.AgentCheckSubject("silent-1"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r := &Remote{NC: nc, Timeout: 1500 * time.Millisecond, Agents: []domain.Agent{
		{Name: "tokyo-1", Region: "apnic"}, {Name: "silent-1", Region: "ripe"}, {Name: "absent-1", Region: "arin"},
	}}
	obs := r.Ask(context.Background(), "check-1", txtCheck("a.plain.test"))
	if len(obs) != 3 {
		t.Fatalf("observations: %+v", obs)
	}
	if o := obs[0]; o.Perspective != "tokyo-1" || o.Region != "apnic" || o.Outcome != domain.OutcomeFound ||
		len(o.Seen) == 0 || !strings.Contains(o.Seen[0], value) {
		t.Errorf("tokyo-1: %+v", o)
	}
	if o := obs[1]; o.Outcome != domain.OutcomeNoAnswer || !strings.Contains(o.Detail, "no answer within") {
		t.Errorf("silent-1: %+v", o)
	}
	if o := obs[2]; o.Outcome != domain.OutcomeNoAnswer || !strings.Contains(o.Detail, "not connected") {
		t.Errorf("absent-1: %+v", o)
	}

	// The agent refuses what no check of the service would ask: it is not
	// an open resolver or fetcher.
	for _, bad := range []events.PerspectiveCheckRequest{
		{CheckID: "x", Kind: "http-file", Domain: "127.0.0.1", Path: "/.well-known/pki-validation/f", Expected: "v"},
		{CheckID: "x", Kind: "http-file", Domain: "a.plain.test", Path: "/admin", Expected: "v"},
		{CheckID: "x", Kind: "dns-txt", Domain: "a.plain.test", Names: []string{"elsewhere.example"}, Expected: "v"},
		{CheckID: "x", Kind: "shell", Domain: "a.plain.test"},
	} {
		raw, _ := json.Marshal(bad)
		m, err := nc.Request(events.AgentCheckSubject("tokyo-1"), raw, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.PerspectiveCheckResponse
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Outcome != domain.OutcomeError || !strings.HasPrefix(resp.Detail, "refused") || resp.Agent != "tokyo-1" {
			t.Errorf("%+v: %+v", bad, resp)
		}
	}
	// Malformed JSON gets an answer too, not silence.
	m, err := nc.Request(events.AgentCheckSubject("tokyo-1"), []byte("{"), 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), "malformed") {
		t.Errorf("malformed: %v %s", err, m.Data)
	}
}
