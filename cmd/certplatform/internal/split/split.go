// Package split is `make run-split` (SPEC §2 scale-out, §7): the platform
// as separate processes on one machine — a 3-node NATS JetStream cluster
// on loopback (streams with 3 replicas), two replicas each of intake and
// issuer, one of every other service (the per-service binaries), an SMTP
// mail sink and a reverse proxy on HTTP_ADDR. The supervisor prepares the
// dev CA and secrets once, gives every process its configuration
// explicitly, writes each PID to $DATA_DIR/run/<name>.pid, restarts a
// process that dies and stops them all on SIGINT or SIGTERM.
package split

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/cmd/certplatform/internal/localpg"
	"github.com/certlife/platform/cmd/certplatform/internal/runner"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/ctlog"
)

// DBName is split mode's database when DATABASE_URL is unset: its own,
// beside the all-in-one's, on the same server.
const DBName = "certplatform_split"

// NATSNodes is the size of the JetStream cluster, and the replica count of
// its streams.
const NATSNodes = 3

// Group is a service and how many replicas of it run.
type Group struct {
	Service  string // also the binary's name, bin/<service>
	Replicas int
}

// Services is what split mode runs of each service, in start order.
var Services = []Group{
	{"billing", 1},
	{"validation", 1},
	{"issuer", 2},
	{"notifier", 1},
	{"intake", 2},
}

// readyTimeout bounds the start of each stage (a loaded CI machine runs
// migrations and elections slowly).
const readyTimeout = 3 * time.Minute

// State is what a running split mode looks like, written to
// $DATA_DIR/run/split.json once every process is ready (tests and scripts
// read it; it is removed on stop).
type State struct {
	PID       int        `json:"pid"` // the supervisor's
	API       string     `json:"api"`
	NATSURL   string     `json:"nats_url"`
	MailDir   string     `json:"mail_dir,omitempty"`
	Processes []ProcInfo `json:"processes"`
}

// ProcInfo describes one process.
type ProcInfo struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Health  string `json:"health,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	PIDFile string `json:"pid_file"`
	Log     string `json:"log"`
}

// Supervisor runs split mode.
type Supervisor struct {
	Config   app.Config // as given to every service (secrets filled, URLs set)
	State    State
	OpsToken string // generated ops token; "" when OPS_TOKENS was given

	log           *slog.Logger
	self, binDir  string
	runDir, dir   string
	webhookSecret string // where the webhook secret is, for the banner
	stages        [][]*proc
	stopping      atomic.Bool
	pg            *localpg.Cluster
	stopOnce      sync.Once
	lock          *os.File // split.pid, locked while the supervisor lives
}

// Main runs `certplatform split` until SIGINT or SIGTERM.
func Main(args []string) error {
	fs := flag.NewFlagSet("split", flag.ContinueOnError)
	bin := fs.String("bin", "", "directory holding the service binaries (default: this binary's directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	log := app.NewLogger(cfg.LogLevel).With("process", "split")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := Start(ctx, cfg, *bin, log)
	if err != nil {
		return err
	}
	fmt.Fprint(os.Stderr, s.Banner())
	<-ctx.Done()
	log.Info("stopping every process")
	s.Stop()
	return nil
}

// Start prepares split mode and starts every process, stage by stage,
// each stage once the one before is ready. binDir "" = the directory of
// the running binary.
func Start(ctx context.Context, cfg app.Config, binDir string, log *slog.Logger) (s *Supervisor, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if binDir == "" {
		binDir = filepath.Dir(self)
	}
	if cfg.ClockControl {
		return nil, errors.New("CLOCK_CONTROL is only for the all-in-one runner (`make run`); split mode runs on the real clock")
	}
	if cfg.NatsURL != "" {
		log.Warn("NATS_URL is ignored: split mode runs its own NATS cluster", "nats_url", cfg.NatsURL)
	}
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	s = &Supervisor{log: log, self: self, binDir: binDir,
		runDir: filepath.Join(cfg.DataDir, "run"), dir: filepath.Join(cfg.DataDir, "split")}
	for _, d := range []string{s.runDir, s.dir, filepath.Join(s.dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := s.claim(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.prepare(ctx, &cfg); err != nil {
		return nil, err
	}
	if err := s.plan(cfg); err != nil {
		return nil, err
	}
	for i, stage := range s.stages {
		if err := s.startStage(ctx, stage); err != nil {
			return nil, err
		}
		if i == 0 {
			if err := setupStreams(ctx, s.Config.NatsURL, s.log); err != nil {
				return nil, err
			}
		}
	}
	raw, _ := json.MarshalIndent(s.State, "", "  ")
	if err := writeAtomic(filepath.Join(s.runDir, "split.json"), raw); err != nil {
		return nil, err
	}
	return s, nil
}

// claim writes the supervisor's PID file and holds a lock on it for its
// whole life (the kernel drops the lock when the process ends, however it
// ends), refusing to start beside a running split mode on the same DATA_DIR.
func (s *Supervisor) claim() error {
	path := filepath.Join(s.runDir, "split.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(f)
		f.Close()
		return fmt.Errorf("split mode already runs on this DATA_DIR (pid %s in %s)", strings.TrimSpace(string(b)), path)
	}
	s.lock = f
	_ = os.Remove(filepath.Join(s.runDir, "split.json")) // left by a supervisor killed with -9
	s.State.PID = os.Getpid()
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// prepare fills the configuration every process shares: the database
// (created when missing), the dev secrets and the dev CA (created once,
// by the same code as the all-in-one's), the addresses.
func (s *Supervisor) prepare(ctx context.Context, cfg *app.Config) error {
	var err error
	if cfg.DatabaseURL != "" {
		if err := localpg.Ensure(ctx, cfg.DatabaseURL); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	} else {
		var src localpg.Source
		if src, s.pg, err = localpg.FindNamed(ctx, "", cfg.DataDir, DBName, s.log); err != nil {
			return err
		}
		cfg.DatabaseURL = src.URL
	}
	if cfg.WebhookSecret == "" {
		s.webhookSecret = filepath.Join(cfg.DataDir, "webhook-secret")
	}
	gen, err := runner.DevSecrets(cfg)
	if err != nil {
		return err
	}
	s.OpsToken = gen.OpsToken
	cfg.NatsReplicas = NATSNodes
	cfg.ClockControl = false
	// Every request reaches a service through the proxy on loopback: the
	// client's address is the X-Forwarded-For entry it adds (SE-3).
	if cfg.TrustedProxies == "" {
		cfg.TrustedProxies = "127.0.0.1/32,::1/128"
	}
	return nil
}

// plan lays out every process, stage by stage: NATS, the mail sink, the
// services, the proxy. It allocates the loopback ports once, so that a
// restarted process comes back on the same address.
func (s *Supervisor) plan(cfg app.Config) error {
	ports := newPorts()
	proxyAddr := cfg.HTTPAddr
	if host, port, err := net.SplitHostPort(proxyAddr); err != nil {
		return fmt.Errorf("HTTP_ADDR %q: %w", proxyAddr, err)
	} else if port == "0" {
		p, err := ports.take()
		if err != nil {
			return err
		}
		proxyAddr = net.JoinHostPort(host, strconv.Itoa(p))
	} else {
		ln, err := net.Listen("tcp", proxyAddr)
		if err != nil {
			return fmt.Errorf("HTTP_ADDR %s cannot be used (is `make run` running?): %w", proxyAddr, err)
		}
		ln.Close()
		n, _ := strconv.Atoi(port)
		ports.taken[n] = true
	}
	s.State.API = "http://" + proxyAddr
	if cfg.PublicURL == "" {
		cfg.PublicURL = s.State.API
	}
	// The CA is made once, before any issuer replica starts, with the
	// public URL its certificates name.
	if err := runner.DevCA(&cfg, time.Now(), s.log); err != nil {
		return err
	}

	// Stage 1: the NATS cluster.
	type node struct{ client, cluster, monitor string }
	nodes := make([]node, NATSNodes)
	var urls []string
	for i := range nodes {
		for _, a := range []*string{&nodes[i].client, &nodes[i].cluster, &nodes[i].monitor} {
			p, err := ports.take()
			if err != nil {
				return err
			}
			*a = "127.0.0.1:" + strconv.Itoa(p)
		}
		urls = append(urls, "nats://"+nodes[i].client)
	}
	cfg.NatsURL = strings.Join(urls, ",")
	s.State.NATSURL = cfg.NatsURL
	var stage []Spec
	for i, n := range nodes {
		var routes []string
		for j, o := range nodes {
			if j != i {
				routes = append(routes, "nats://"+o.cluster)
			}
		}
		name := fmt.Sprintf("nats-%d", i+1)
		stage = append(stage, Spec{
			Name: name, Path: s.self, Addr: n.client, Health: "http://" + n.monitor + "/healthz",
			Args: []string{"nats-node", "-name", name, "-client", n.client, "-cluster", n.cluster,
				"-monitor", n.monitor, "-routes", strings.Join(routes, ","), "-store", filepath.Join(s.dir, name)},
		})
	}
	s.addStage(stage)

	// Stage 2: the mail sink, unless SMTP_ADDR names a real server.
	if cfg.SMTPAddr == "" {
		p, err := ports.take()
		if err != nil {
			return err
		}
		cfg.SMTPAddr = "127.0.0.1:" + strconv.Itoa(p)
		s.State.MailDir = filepath.Join(cfg.DataDir, "mail")
		s.addStage([]Spec{{Name: "mailsink", Path: s.self, Addr: cfg.SMTPAddr,
			Args: []string{"mailsink", "-listen", cfg.SMTPAddr, "-dir", s.State.MailDir}}})
	}

	// Stage 2 also runs the dev CT logs, unless CT_LOGS names real ones:
	// the same logs and keys as the all-in-one's ($DATA_DIR/ct), each a
	// process (IS-9: no server certificate issues without SCTs).
	if cfg.CTLogs == "" {
		var specs []Spec
		var entries []string
		for i := 1; i <= runner.DevCTLogCount; i++ {
			name := fmt.Sprintf("certlife-dev-log-%d", i)
			key := filepath.Join(cfg.DataDir, "ct", fmt.Sprintf("log%d.key", i))
			if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
				return err
			}
			l, err := ctlog.LoadOrCreate(name, key)
			if err != nil {
				return fmt.Errorf("dev CT log %d: %w", i, err)
			}
			p, err := ports.take()
			if err != nil {
				return err
			}
			addr := "127.0.0.1:" + strconv.Itoa(p)
			entries = append(entries, "http://"+addr+"="+l.PublicKeyBase64())
			specs = append(specs, Spec{Name: fmt.Sprintf("ct-log-%d", i), Path: s.self, Addr: addr,
				Args: []string{"ct-log", "-name", name, "-key", key, "-listen", addr}})
		}
		cfg.CTLogs = strings.Join(entries, ",")
		s.addStage(specs)
	}

	// Stage 2b (VA-7): the validation agents, one process per remote
	// perspective (validation-agent: no database, its own resolver), in
	// two regions, unless MPIC_AGENTS names real ones; their names go
	// into the services' MPIC_AGENTS.
	if agents := runner.DevAgents(&cfg); len(agents) > 0 {
		bin := filepath.Join(s.binDir, "validation-agent")
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("no validation-agent binary in %s (`make build` puts it in bin/; or give -bin DIR): %w", s.binDir, err)
		}
		var specs []Spec
		for _, a := range agents {
			p, err := ports.take()
			if err != nil {
				return err
			}
			addr := "127.0.0.1:" + strconv.Itoa(p)
			specs = append(specs, Spec{Name: a.Name, Path: bin, Addr: addr, Health: "http://" + addr + "/healthz",
				Env: []string{"AGENT_NAME=" + a.Name, "AGENT_REGION=" + a.Region, "NATS_URL=" + cfg.NatsURL,
					"DCV_DNS_SERVER=" + a.DNSServer, "DCV_HTTP_PORT=" + strconv.Itoa(a.HTTPPort),
					"DCV_TIMEOUT=" + a.Timeout.String(), "LOG_LEVEL=" + a.LogLevel, "AGENT_HEALTH_ADDR=" + addr}})
		}
		s.addStage(specs)
	}

	// Stage 3: the services, every replica given the same configuration.
	shared := ServiceEnv(cfg)
	upstreams := map[string][]string{}
	stage = nil
	for _, g := range Services {
		if _, err := os.Stat(filepath.Join(s.binDir, g.Service)); err != nil {
			return fmt.Errorf("no %s binary in %s (`make build` puts them in bin/; or give -bin DIR): %w", g.Service, s.binDir, err)
		}
		for i := 1; i <= g.Replicas; i++ {
			p, err := ports.take()
			if err != nil {
				return err
			}
			name := fmt.Sprintf("%s-%d", g.Service, i)
			addr := "127.0.0.1:" + strconv.Itoa(p)
			upstreams[g.Service] = append(upstreams[g.Service], "http://"+addr)
			stage = append(stage, Spec{
				Name: name, Path: filepath.Join(s.binDir, g.Service), Addr: addr,
				Health: "http://" + addr + "/readyz", Metrics: "http://" + addr + "/metrics",
				Env: append(append([]string(nil), shared...),
					"HTTP_ADDR="+addr, "DATA_DIR="+filepath.Join(s.dir, name)),
			})
		}
	}
	s.addStage(stage)

	// Last: the proxy, once every service answers.
	args := []string{"proxy", "-listen", proxyAddr}
	for _, g := range Services {
		args = append(args, "-upstream", g.Service+"="+strings.Join(upstreams[g.Service], ","))
	}
	s.addStage([]Spec{{Name: "proxy", Path: s.self, Addr: proxyAddr, Args: args,
		Env:    []string{"LOG_LEVEL=" + cfg.LogLevel},
		Health: s.State.API + "/readyz", Metrics: s.State.API + "/metrics"}})
	s.Config = cfg
	return nil
}

func (s *Supervisor) addStage(specs []Spec) {
	var stage []*proc
	for _, sp := range specs {
		p := &proc{Spec: sp, runDir: s.runDir, logDir: filepath.Join(s.dir, "log"), log: s.log,
			stopping: &s.stopping, stop: make(chan struct{}), done: make(chan struct{})}
		stage = append(stage, p)
		s.State.Processes = append(s.State.Processes, ProcInfo{Name: sp.Name, Addr: sp.Addr, Health: sp.Health,
			Metrics: sp.Metrics, PIDFile: p.pidFile(), Log: p.logFile()})
	}
	s.stages = append(s.stages, stage)
}

// startStage starts every process of a stage and waits until each is ready.
func (s *Supervisor) startStage(ctx context.Context, stage []*proc) error {
	for _, p := range stage {
		started := make(chan error, 1)
		p.started.Store(true)
		go p.supervise(started)
		if err := <-started; err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	errs := make(chan error, len(stage))
	for _, p := range stage {
		go func() { errs <- p.waitReady(ctx) }()
	}
	var all []error
	for range stage {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// setupStreams creates the platform's streams with NATSNodes replicas
// once the cluster has a JetStream leader, before any service starts:
// creating a replicated stream takes an election, and seven services
// asking for it at once each wait out their start timeout.
func setupStreams(ctx context.Context, url string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
		if err == nil {
			var js jetstream.JetStream
			if js, err = jetstream.New(nc); err == nil {
				actx, acancel := context.WithTimeout(ctx, 30*time.Second)
				if _, err = js.AccountInfo(actx); err == nil {
					err = bus.SetupStreams(actx, js, NATSNodes)
				}
				acancel()
			}
			nc.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		log.Info("waiting for the NATS cluster", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("the NATS cluster did not take the streams: %v", last)
}

// Stop stops every process, the last stage first, and a private Postgres
// cluster if one was started.
func (s *Supervisor) Stop() {
	s.stopOnce.Do(func() {
		s.stopping.Store(true)
		for i := len(s.stages) - 1; i >= 0; i-- {
			var wg sync.WaitGroup
			for _, p := range s.stages[i] {
				wg.Add(1)
				go func() { defer wg.Done(); p.Stop() }()
			}
			wg.Wait()
		}
		s.pg.Stop()
		_ = os.Remove(filepath.Join(s.runDir, "split.json"))
		if s.lock != nil {
			_ = os.Remove(s.lock.Name())
			s.lock.Close()
		}
	})
}

// ports hands out free loopback ports below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999 by default), so that an
// outgoing connection cannot take the port of a process being restarted.
type ports struct {
	taken  map[int]bool
	lo, hi int
}

func newPorts() *ports {
	hi := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 2048 {
				hi = v
			}
		}
	}
	return &ports{taken: map[int]bool{}, lo: max(1024, hi-12000), hi: hi}
}

func (ps *ports) take() (int, error) {
	for range 1000 {
		p := ps.lo + rand.IntN(ps.hi-ps.lo)
		if ps.taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		ps.taken[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port between %d and %d", ps.lo, ps.hi)
}
