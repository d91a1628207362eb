package validation

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/testenv"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/dcv"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// VA-7: one of the five remote perspectives sees a hijacked TXT answer:
// still validated (2–5 perspectives allow one non-corroboration), and
// the record names who disagreed and what it saw.
func TestMPICOneHijackedPerspectiveStillValidates_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	in := e.mustStart("app-m1", "www.m1.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.m1.plain.test", in.Value)
	e.views["ripe-1"].TXT(t, "_pki-validation.www.m1.plain.test", "hijacked-value")
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVValidated {
		t.Fatalf("one hijacked: %+v %v", r, r.Failure)
	}
	a := e.attempts("domain=www.m1.plain.test").Validations[1]
	p := perspectivesOf(a)["ripe-1"]
	if a.Kind != "domain" || a.Result != "passed" || p.Corroborates == nil || *p.Corroborates || p.Outcome != "not_found" ||
		!strings.Contains(strings.Join(p.Seen, " "), "hijacked-value") {
		t.Errorf("ripe-1's observation: %+v in %+v", p, a)
	}
}

// VA-7: two of five hijacked: refused, the failure naming both
// perspectives and what each saw.
func TestMPICTwoHijackedPerspectivesRefused_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	in := e.mustStart("app-m2", "www.m2.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.m2.plain.test", in.Value)
	e.views["arin-2"].TXT(t, "_pki-validation.www.m2.plain.test", "attacker-one")
	e.views["apnic-1"].TXT(t, "_pki-validation.www.m2.plain.test", "attacker-two")
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVPending || r.Failure == nil || len(r.Failure.Perspectives) != 2 {
		t.Fatalf("two hijacked: %+v", r)
	}
	msg := r.Failure.Error()
	for _, want := range []string{"arin-2", "apnic-1", "attacker-one", "attacker-two", "3 of 5", "at most 1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, "ripe-1") {
		t.Errorf("failure names a corroborating perspective: %q", msg)
	}
	a := e.attempts("domain=www.m2.plain.test").Validations[0]
	if a.Result != "failed" || !strings.Contains(a.Detail, "arin-2") {
		t.Errorf("recorded: %+v", a)
	}
	// The validation keeps the failure for the customer (VA-6).
	list, _ := e.dcv().Instructions(context.Background(), "app-m2")
	if list[0].LastFailure == nil || len(list[0].LastFailure.Perspectives) != 2 {
		t.Errorf("last failure: %+v", list[0].LastFailure)
	}
}

// VA-7: a perspective that does not answer in time counts as a
// non-corroboration: with another disagreeing, below quorum.
func TestMPICSilentPerspectiveCountsAsFailure_VA7(t *testing.T) {
	e := startDCV(t, envOptions{silent: []string{"ripe-2"}, config: func(c *app.Config) { c.MPICTimeout = 2 * time.Second }})
	// The silent agent alone: one non-corroboration, still validated.
	ok := e.mustStart("app-s1", "www.s1.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.s1.plain.test", ok.Value)
	if r := e.check(ok.ValidationID); r.Status != domain.DCVValidated {
		t.Fatalf("silent alone: %+v %v", r, r.Failure)
	}
	// With a hijacked one: refused, naming both.
	in := e.mustStart("app-s2", "www.s2.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.s2.plain.test", in.Value)
	e.views["arin-1"].TXT(t, "_pki-validation.www.s2.plain.test", "hijacked")
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVPending || r.Failure == nil {
		t.Fatalf("silent and hijacked: %+v", r)
	}
	msg := r.Failure.Error()
	if !strings.Contains(msg, "ripe-2") || !strings.Contains(msg, "no_answer") || !strings.Contains(msg, "arin-1") {
		t.Errorf("failure %q", msg)
	}
}

// VA-7: the HTTP method is corroborated too: a perspective whose DNS
// sends the host elsewhere (127.0.0.2, serving other content) does not
// corroborate; one such is tolerated, two are not.
func TestMPICHTTPHijack_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	for i, name := range []string{"www.w1.plain.test", "www.w2.plain.test"} {
		in := e.mustStart("app-w"+itoa(i), name, domain.MethodHTTP, "")
		u, _ := url.Parse(in.URL)
		e.host(name)
		e.web.page(name, u.Path, in.Value)
		e.altWeb.page(name, u.Path, "not-the-value")
		hijacked := []string{"apnic-1", "arin-1"}[:i+1]
		for _, a := range hijacked {
			e.views[a].A(t, name, "127.0.0.2")
		}
		r := e.check(in.ValidationID)
		if i == 0 && r.Status != domain.DCVValidated {
			t.Errorf("one hijacked: %+v %v", r, r.Failure)
		}
		if i == 1 && (r.Status != domain.DCVPending || !strings.Contains(r.Failure.Error(), "not-the-value")) {
			t.Errorf("two hijacked: %+v %v", r, r.Failure)
		}
	}
}

// VA-4, VA-7: CAA is corroborated: a perspective seeing a forbidding
// record does not corroborate; the RFC 8657 accounturi of the manual
// flow is acct:<customer>@<identity>.
func TestCheckCAACorroborated_VA4_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	now := e.p.Clock.Now()
	acct := e.dcv().ManualAccountURI("cust-9")
	if acct != "acct:cust-9@certlife.example" {
		t.Fatalf("account URI %s", acct)
	}
	e.everywhere(func(s *testenv.DNSServer) {
		s.CAA(t, "c1.plain.test", `0 issue "certlife.example; accounturi=`+acct+`; validationmethods=ca-tbr-7,ca-tbr-18"`)
	})
	r, err := e.dcv().CheckCAA(context.Background(), "www.c1.plain.test", acct, domain.MethodDNS, now, "app-c")
	if err != nil || !r.Allowed || !r.ValidUntil.Equal(r.CheckedAt.Add(8*time.Hour)) {
		t.Fatalf("allowed: %+v %v", r, err)
	}
	if r, _ := e.dcv().CheckCAA(context.Background(), "www.c1.plain.test", "acct:cust-1@certlife.example", domain.MethodDNS, now, "app-c"); r.Allowed ||
		!strings.Contains(r.Failure.Error(), "acct:cust-9@certlife.example") {
		t.Errorf("someone else's account: %+v", r)
	}
	if r, _ := e.dcv().CheckCAA(context.Background(), "www.c1.plain.test", acct, domain.MethodEmail, now, "app-c"); r.Allowed ||
		!strings.Contains(r.Failure.Error(), "ca-tbr-4") {
		t.Errorf("a method not listed: %+v", r)
	}
	// Two perspectives see a forbidding record (a hijacked CAA answer).
	for _, a := range []string{"arin-1", "ripe-2"} {
		e.views[a].CAA(t, "c1.plain.test", `0 issue "evil.ca"`)
	}
	if r, _ := e.dcv().CheckCAA(context.Background(), "www.c1.plain.test", acct, domain.MethodDNS, now, "app-c"); r.Allowed ||
		!strings.Contains(r.Failure.Error(), "evil.ca") {
		t.Errorf("two forbidding perspectives: %+v", r)
	}
	if _, err := e.dcv().CheckCAA(context.Background(), "www.c1.plain.test", acct, domain.MethodDNS, now.Add(9*time.Hour), "app-c"); err == nil {
		t.Error("an issuance 9 hours after the check was accepted")
	}
	if page := e.attempts("domain=www.c1.plain.test"); len(page.Validations) != 4 || page.Validations[0].Kind != "caa" {
		t.Errorf("recorded CAA attempts: %d", len(page.Validations))
	}
}

// VA-7: a multi-perspective configuration weaker than TLS BR 3.2.2.9 is
// refused at start, saying why.
func TestMPICConfigWeakerThanBRRefused_VA7(t *testing.T) {
	cases := map[string]func(*app.Config){
		"at least 5": func(c *app.Config) { c.MPICPerspectives = 4; c.MPICAgents = "a@arin,b@ripe,c@ripe,d@apnic" },
		"allow at most 1": func(c *app.Config) {
			c.MPICQuorumAllowedFailures = 2
			c.MPICAgents = "a@arin,b@ripe,c@ripe,d@apnic,e@arin"
		},
		"1 region":       func(c *app.Config) { c.MPICAgents = "a@arin,b@arin,c@arin,d@arin,e@arin" },
		"fewer than":     func(c *app.Config) { c.MPICPerspectives = 6; c.MPICAgents = "a@arin,b@ripe,c@ripe,d@apnic,e@arin" },
		"name@region":    func(c *app.Config) { c.MPICAgents = "a@arin,b" },
		"CAA_IDENTITIES": func(c *app.Config) { c.CAAIdentities = nil },
		"":               func(c *app.Config) { c.MPICAgents = "a@arin,b@ripe,c@ripe,d@apnic,e@arin" },
	}
	for want, edit := range cases {
		cfg, err := app.LoadConfig()
		if err != nil {
			t.Fatal(err)
		}
		edit(&cfg)
		_, err = New(&app.Deps{Name: "validation", Config: cfg, Clock: clock.NewOffset(), Log: slog.New(slog.DiscardHandler),
			Registry: prometheus.NewRegistry()})
		switch {
		case want == "" && err != nil:
			t.Errorf("a BR-conforming configuration refused: %v", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v", want, err)
		}
	}
}

// VA-7: with no agent configured the service starts, and a domain check
// fails saying there is nothing to corroborate it.
func TestNoAgentsNoValidation_VA7(t *testing.T) {
	e := startDCV(t, envOptions{config: func(c *app.Config) { c.MPICAgents = "" }})
	in := e.mustStart("app-n", "www.n.plain.test", domain.MethodDNS, "")
	e.txt("_pki-validation.www.n.plain.test", in.Value)
	r := e.check(in.ValidationID)
	if r.Status != domain.DCVPending || !strings.Contains(r.Failure.Error(), "MPIC_AGENTS") {
		t.Errorf("no agents: %+v %v", r, r.Failure)
	}
}

// VA-7: the validation-agent command runs as a real process: built,
// started with its environment, it answers checks over NATS with its own
// resolver, and stops on SIGTERM.
func TestValidationAgentProcess_VA7(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "validation-agent")
	build := exec.Command("go", "build", "-o", bin, "./cmd/validation-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	auth := testenv.StartDNS(t)
	auth.AddZone(t, "test.", testenv.Unsigned)
	auth.AddZone(t, "plain.test.", testenv.Unsigned)
	auth.TXT(t, "_pki-validation.www.p.plain.test", "the-value")
	n := testenv.StartNATS(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "AGENT_NAME=proc-1", "AGENT_REGION=ripe", "NATS_URL="+n.URL(),
		"DCV_DNS_SERVER="+auth.Addr, "DCV_HTTP_PORT=8080", "DCV_TIMEOUT=5s", "LOG_LEVEL=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	remote := &dcv.Remote{NC: nc, Timeout: 5 * time.Second, Agents: []domain.Agent{{Name: "proc-1", Region: "ripe"}}}
	req := domain.CheckRequest{Kind: domain.CheckDNSTXT, Domain: "www.p.plain.test",
		Names: []string{"_pki-validation.www.p.plain.test", "www.p.plain.test"}, Expected: "the-value"}
	var o domain.Observation
	testenv.Eventually(t, 30*time.Second, "the agent process to answer", func() bool {
		o = remote.Ask(context.Background(), "p-1", req)[0]
		return o.Outcome != domain.OutcomeNoAnswer
	})
	if o.Outcome != domain.OutcomeFound {
		t.Fatalf("agent process: %+v\n%s", o, out.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("agent exit: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Error("the agent did not stop on SIGINT")
	}
	// Without its configuration it refuses to start, saying what is missing.
	bad := exec.Command(bin)
	bad.Env = []string{"PATH=" + os.Getenv("PATH")}
	if msg, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(msg), "AGENT_NAME") {
		t.Errorf("no config: %v %s", err, msg)
	}
}

// AC-1, VA-7: ACME challenges are checked under the same rules: http-01
// at /.well-known/acme-challenge/<token>, dns-01 at _acme-challenge,
// corroborated by the remote perspectives and recorded.
func TestACMEChallenges_AC1_VA7(t *testing.T) {
	e := startDCV(t, envOptions{})
	const token, keyAuth, digest = "tok_3n-Xy", "tok_3n-Xy.thumbprint", "dGhlLWRpZ2VzdC1vZi10aGUta2V5LWF1dGg"
	e.host("www.a1.plain.test")
	e.web.page("www.a1.plain.test", "/.well-known/acme-challenge/"+token, keyAuth)
	r, err := e.dcv().CheckACMEChallenge(context.Background(), "www.a1.plain.test", domain.MethodACMEHTTP, token, keyAuth, "app-acme")
	if err != nil || !r.Passed {
		t.Fatalf("http-01: %+v %v", r, err)
	}
	e.txt("_acme-challenge.a2.plain.test", digest)
	r, err = e.dcv().CheckACMEChallenge(context.Background(), "*.a2.plain.test", domain.MethodACMEDNS, "", digest, "app-acme")
	if err != nil || !r.Passed {
		t.Fatalf("dns-01 for a wildcard: %+v %v", r, err)
	}
	for _, a := range []string{"arin-1", "apnic-1"} {
		e.views[a].TXT(t, "_acme-challenge.a2.plain.test", "spoofed")
	}
	r, err = e.dcv().CheckACMEChallenge(context.Background(), "*.a2.plain.test", domain.MethodACMEDNS, "", digest, "app-acme")
	if err != nil || r.Passed || !strings.Contains(r.Failure.Error(), "spoofed") {
		t.Errorf("dns-01 with two spoofed perspectives: %+v %v", r, err)
	}
	if _, err := e.dcv().CheckACMEChallenge(context.Background(), "*.a2.plain.test", domain.MethodACMEHTTP, token, keyAuth, "app-acme"); err == nil {
		t.Error("http-01 for a wildcard accepted")
	}
	if _, err := e.dcv().CheckACMEChallenge(context.Background(), "www.a1.plain.test", domain.MethodACMEHTTP, "../x", keyAuth, "app-acme"); err == nil {
		t.Error("a token with a path accepted")
	}
	page := e.attempts("domain=*.a2.plain.test")
	if len(page.Validations) != 2 || page.Validations[0].Method != "dns-01" || page.Validations[0].BRSection != "3.2.2.4.7" ||
		page.Validations[0].ValueSHA256 != domain.HashValue(digest) {
		t.Errorf("recorded: %+v", page.Validations)
	}
	// The manual flow does not take ACME methods.
	if _, err := e.start(validationapp.StartRequest{ApplicationID: "x", CustomerID: "c", Domain: "x.plain.test", Method: domain.MethodACMEDNS}); err == nil {
		t.Error("a manual validation with dns-01 accepted")
	}
}
