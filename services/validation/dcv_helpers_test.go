package validation

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

const adminToken = "tok-admin-0123456789ab"

// agentNames are the five remote perspectives of the tests, in two (in
// fact three) regions.
var agentNames = []domain.Agent{
	{Name: "arin-1", Region: "arin"}, {Name: "arin-2", Region: "arin"}, {Name: "ripe-1", Region: "ripe"},
	{Name: "apnic-1", Region: "apnic"}, {Name: "ripe-2", Region: "ripe"},
}

// dcvEnv is the validation service with a small Internet around it: the
// primary perspective resolves through Unbound in front of its own
// authoritative server (with a signed, a bogus and unsigned zones), each
// of the five agents through an authoritative server of its own (its own
// view of the DNS: a hijack shows in one view only), and web servers on
// 127.0.0.1 and 127.0.0.2 on one port (DCV_HTTP_PORT).
type dcvEnv struct {
	t        *testing.T
	p        *testenv.Platform
	svc      *Service
	primary  *testenv.DNSServer
	views    map[string]*testenv.DNSServer // agent name → its DNS
	web      *siteServer                   // 127.0.0.1
	altWeb   *siteServer                   // 127.0.0.2, for hijacked addresses
	notifier *seal.PrivateKey
	stops    map[string]func()
}

type envOptions struct {
	clock *clock.Offset
	// silent agents are configured and subscribed but never answer.
	silent []string
	config func(*app.Config)
}

func zones(t *testing.T, s *testenv.DNSServer, signed bool) {
	s.AddZone(t, "test.", testenv.Unsigned)
	s.AddZone(t, "plain.test.", testenv.Unsigned)
	if signed {
		s.AddZone(t, "signed.test.", testenv.Signed)
		s.AddZone(t, "bogus.test.", testenv.Bogus)
	}
}

func startDCV(t *testing.T, o envOptions) *dcvEnv {
	t.Helper()
	e := &dcvEnv{t: t, views: map[string]*testenv.DNSServer{}, stops: map[string]func(){}}
	e.primary = testenv.StartDNS(t)
	zones(t, e.primary, true)
	unbound := testenv.StartUnbound(t, e.primary)
	for _, a := range agentNames {
		v := testenv.StartDNS(t)
		zones(t, v, false)
		e.views[a.Name] = v
	}
	e.web, e.altWeb = startSitePair(t)
	k, err := seal.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e.notifier = k
	var spec []string
	for _, a := range agentNames {
		spec = append(spec, a.Name+"@"+a.Region)
	}
	e.p = testenv.Start(t, testenv.Options{Clock: o.clock, Config: func(c *app.Config) {
		c.OpsTokens = testenv.OpsToken + ":admin," + adminToken + ":admin," + billingToken + ":billing," + reviewerToken + ":reviewer"
		c.DCVDNSServer, c.DCVHTTPPort = unbound.Addr, e.web.port
		c.DCVTimeout, c.MPICTimeout = 5*time.Second, 8*time.Second
		c.MPICAgents = strings.Join(spec, ",")
		c.NotifierPublicKey = k.Public().String()
		if o.config != nil {
			o.config(c)
		}
	}}, Definition)
	e.svc = e.p.Unit("validation").Service.(*Service)
	log := slog.New(slog.DiscardHandler)
	for _, a := range agentNames {
		nc, err := nats.Connect(e.p.NATS.URL(), nats.Name("agent-"+a.Name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if contains(o.silent, a.Name) {
			if _, err := nc.Subscribe(events.AgentCheckSubject(a.Name), func(*nats.Msg) {}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Each agent: its own DNS server, the same HTTP port.
		stop, err := StartAgent(nc, AgentConfig{Name: a.Name, Region: a.Region, DNSServer: e.views[a.Name].Addr,
			HTTPPort: e.web.port, Timeout: 5 * time.Second}, log)
		if err != nil {
			t.Fatal(err)
		}
		e.stops[a.Name] = stop
	}
	return e
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// everywhere applies fn to the primary's DNS and every agent's.
func (e *dcvEnv) everywhere(fn func(s *testenv.DNSServer)) {
	fn(e.primary)
	for _, v := range e.views {
		fn(v)
	}
}

// txt publishes a TXT record in every view.
func (e *dcvEnv) txt(name string, values ...string) {
	e.everywhere(func(s *testenv.DNSServer) { s.TXT(e.t, name, values...) })
}

// host makes name resolve to 127.0.0.1 in every view.
func (e *dcvEnv) host(name string) {
	e.everywhere(func(s *testenv.DNSServer) { s.A(e.t, name, "127.0.0.1") })
}

func (e *dcvEnv) dcv() *validationapp.DCV { return e.svc.dcv }

func (e *dcvEnv) pool() db.Querier { return e.p.Unit("validation").Deps.Pool }

// start starts a validation in a transaction of its own.
func (e *dcvEnv) start(r validationapp.StartRequest) (domain.Instructions, error) {
	var in domain.Instructions
	err := db.InTx(context.Background(), e.p.Unit("validation").Deps.Pool, func(tx pgx.Tx) error {
		var err error
		in, err = e.dcv().StartDomainValidation(context.Background(), tx, r)
		return err
	})
	return in, err
}

func (e *dcvEnv) mustStart(applicationID, d string, m domain.Method, approver string) domain.Instructions {
	e.t.Helper()
	in, err := e.start(validationapp.StartRequest{ApplicationID: applicationID, CustomerID: "cust-" + applicationID,
		AccountURI: e.dcv().ManualAccountURI("cust-" + applicationID), Domain: d, Method: m, ApproverEmail: approver, Language: "en"})
	if err != nil {
		e.t.Fatalf("start %s %s: %v", d, m, err)
	}
	return in
}

func (e *dcvEnv) change(id uuid.UUID, m domain.Method, approver string) (domain.Instructions, error) {
	var in domain.Instructions
	err := db.InTx(context.Background(), e.p.Unit("validation").Deps.Pool, func(tx pgx.Tx) error {
		var err error
		in, err = e.dcv().ChangeMethod(context.Background(), tx, id, m, approver, "applicant:test")
		return err
	})
	return in, err
}

func (e *dcvEnv) check(id uuid.UUID) validationapp.CheckResult {
	e.t.Helper()
	r, err := e.dcv().CheckDomain(context.Background(), id)
	if err != nil {
		e.t.Fatalf("check: %v", err)
	}
	return r
}

// attempts lists the validation record of a domain over HTTP, as a
// reviewer (VA-9).
func (e *dcvEnv) attempts(query string) api.AttemptPage {
	e.t.Helper()
	r := ops(e.t, e.p, "GET", "/ops/v1/validations?"+query, nil)
	mustStatus(e.t, r, http.StatusOK)
	var page api.AttemptPage
	r.JSON(e.t, &page)
	return page
}

// siteServer is a web server answering by host and path.
type siteServer struct {
	port  int
	mu    sync.Mutex
	pages map[string]string
}

func (s *siteServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	s.mu.Lock()
	body, ok := s.pages[host+r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(body))
}

func (s *siteServer) page(host, path, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[host+path] = body
}

// startSitePair starts web servers on 127.0.0.1 and 127.0.0.2 on the
// same port.
func startSitePair(t *testing.T) (*siteServer, *siteServer) {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		ln1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln1.Addr().(*net.TCPAddr).Port
		ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		if err != nil {
			_ = ln1.Close()
			continue
		}
		return serveSite(t, ln1, port), serveSite(t, ln2, port)
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return nil, nil
}

func serveSite(t *testing.T, ln net.Listener, port int) *siteServer {
	s := &siteServer{port: port, pages: map[string]string{}}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}
