package main

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation"
)

// perspectives are five remote perspectives in three regions, started by
// the test (MPIC_AGENTS names them), each resolving through a DNS server
// of its own: its own view of the Internet, where a hijack shows.
var perspectives = []struct{ name, region string }{
	{"arin-1", "arin"}, {"arin-2", "arin"}, {"ripe-1", "ripe"}, {"apnic-1", "apnic"}, {"ripe-2", "ripe"},
}

// VA-7 through the HTTP API of the all-in-one: two names validated by
// DNS with 5 perspectives (MPIC_QUORUM_ALLOWED_FAILURES 1, TLS BR
// 3.2.2.9). One perspective seeing a hijacked TXT record does not stop
// the first name; two seeing one refuse the second, the failure naming
// the two disagreeing perspectives and what they saw.
func TestServerRefusalTooFewPerspectives_VA7(t *testing.T) {
	spec := make([]string, len(perspectives))
	for i, p := range perspectives {
		spec[i] = p.name + "@" + p.region
	}
	w := startServerWorld(t, func(c *app.Config) { c.MPICAgents = strings.Join(spec, ",") })
	views := map[string]*testenv.DNSServer{}
	for _, p := range perspectives {
		v := testenv.StartDNS(t)
		v.AddZone(t, "com.", testenv.Unsigned)
		v.AddZone(t, "e2e-test.com.", testenv.Unsigned)
		v.AddZone(t, "plain.e2e-test.com.", testenv.Unsigned)
		views[p.name] = v
		nc, err := nats.Connect(w.p.NATSURL, nats.Name("agent-"+p.name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		stop, err := validation.StartAgent(nc, validation.AgentConfig{Name: p.name, Region: p.region, DNSServer: v.Addr,
			HTTPPort: w.web.port, Timeout: w.cfg.DCVTimeout}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	w.setPrices()
	email := "mpic@example.co.jp"
	one, two := "www.one.plain.e2e-test.com", "www.two.plain.e2e-test.com"
	id := w.newCustomer(email, serverApplicationBody("", serverCSR(t, serverDN, one, p256(t)), email, []string{two}, "dns"))
	w.closeWindows(email, id)
	st, _ := w.dcv(email, id)
	for _, d := range st.Domains {
		w.dns.TXT(t, d.RecordNames[0], d.Value)
		for _, v := range views {
			v.TXT(t, d.RecordNames[0], d.Value)
		}
	}
	views["ripe-1"].TXT(t, "_pki-validation."+one, "hijacked-one")
	views["arin-2"].TXT(t, "_pki-validation."+two, "hijacked-two")
	views["apnic-1"].TXT(t, "_pki-validation."+two, "hijacked-three")
	refused := func() string {
		for _, f := range w.failures(id) {
			if f.Domain == two && strings.Contains(f.Detail, "hijacked-two") {
				return f.Detail
			}
		}
		return ""
	}
	w.recheckedUntil("one validated, two refused", func() bool { return w.validated(id)[one] == "dns" && refused() != "" },
		func() string { st, _ := w.dcv(email, id); raw, _ := json.Marshal(st); return string(raw) })
	detail := refused()
	for _, want := range []string{"arin-2", "apnic-1", "hijacked-three"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the refusal %q does not name %q", detail, want)
		}
	}
	if strings.Contains(detail, "ripe-1") {
		t.Errorf("the refusal names a corroborating perspective: %q", detail)
	}
	if _, ok := w.validated(id)[two]; ok {
		t.Error("validated with two of five perspectives disagreeing")
	}
	if len(w.seen(events.TypeCertificateIssued, "")) != 0 {
		t.Error("issued")
	}
}
