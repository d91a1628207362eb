// Package runner is the all-in-one platform: every service in one process
// with an embedded NATS JetStream server, Postgres found or started by
// localpg, an embedded SMTP sink, a dev CA, and (CLOCK_CONTROL) a clock
// that moves forward on request.
package runner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
	"github.com/certlife/platform/cmd/certplatform/internal/localpg"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/ctlog"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/billing"
	"github.com/certlife/platform/services/intake"
	"github.com/certlife/platform/services/issuer"
	"github.com/certlife/platform/services/notifier"
	"github.com/certlife/platform/services/notifier/mailsink"
	"github.com/certlife/platform/services/validation"
)

// Definitions are the five services, in start order.
var Definitions = []app.Definition{
	billing.Definition, validation.Definition, issuer.Definition, notifier.Definition, intake.Definition,
}

// Platform is a running all-in-one.
type Platform struct {
	Config   app.Config
	URL      string         // base URL of the API
	Database localpg.Source // which Postgres database, on which server
	OpsToken string         // empty when OPS_TOKENS was given
	MailDir  string         // where the embedded sink writes, empty with SMTP_ADDR
	NATSURL  string
	Clock    clock.Clock
	Units    []*app.Unit
	// Files of the secrets generated for dev (empty when configured).
	OpsTokenFile, WebhookSecretFile, NotifierKeyFile string
	// DevCTLogs are the URLs of the embedded CT logs (CT_LOGS unset).
	DevCTLogs []string

	log      *slog.Logger
	srv      *http.Server
	router   chi.Router
	ln       net.Listener
	ns       *server.Server
	nc       *nats.Conn
	pg       *localpg.Cluster
	stopMail func()
	served   chan error
	ctLogs   []*http.Server
	// agentConns are the dev validation agents' NATS connections (VA-7).
	agentConns []*nats.Conn

	publicURLDefaulted bool
	devCA              bool // CA_DIR was unset: a throwaway CA under DATA_DIR
}

// Start brings the platform up and serves HTTP on cfg.HTTPAddr.
func Start(ctx context.Context, cfg app.Config, log *slog.Logger) (*Platform, error) {
	return StartWithClock(ctx, cfg, log, nil)
}

// StartWithClock is Start with a given clock (tests restart a platform on
// the clock the previous one had moved). nil = the configured clock.
func StartWithClock(ctx context.Context, cfg app.Config, log *slog.Logger, clk clock.Clock) (_ *Platform, err error) {
	// Not the named result: a failed start returns nil, and the deferred
	// Stop must still see what was started.
	p := &Platform{log: log}
	defer func() {
		if err != nil {
			p.Stop(context.Background())
		}
	}()
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	if p.Database, p.pg, err = localpg.Find(ctx, cfg.DatabaseURL, cfg.DataDir, log); err != nil {
		return nil, err
	}
	cfg.DatabaseURL = p.Database.URL
	if cfg.NatsURL == "" {
		if p.ns, err = startNATS(filepath.Join(cfg.DataDir, "nats")); err != nil {
			return nil, err
		}
		p.NATSURL = p.ns.ClientURL()
	} else {
		p.NATSURL = cfg.NatsURL
	}
	cfg.NatsURL = p.NATSURL
	gen, err := DevSecrets(&cfg)
	if err != nil {
		return nil, err
	}
	p.OpsToken, p.OpsTokenFile, p.WebhookSecretFile, p.NotifierKeyFile = gen.OpsToken, gen.OpsTokenFile, gen.WebhookSecretFile, gen.NotifierKeyFile
	if cfg.SMTPAddr == "" {
		p.MailDir = filepath.Join(cfg.DataDir, "mail")
		if cfg.SMTPAddr, p.stopMail, err = mailsink.Start(p.MailDir, log); err != nil {
			return nil, err
		}
	}
	p.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + p.ln.Addr().String()
	// The all-in-one is the dev runner (SE-10): it alone may make a
	// throwaway CA and put its own listen address in the certificates'
	// CRL and caIssuers URLs when PUBLIC_URL is unset (the banner says so).
	cfg.DevMode = true
	if cfg.PublicURL == "" {
		cfg.PublicURL = p.URL
		p.publicURLDefaulted = true
	}
	switch {
	case clk != nil:
		p.Clock = clk
	case cfg.ClockControl:
		p.Clock = clock.NewOffset()
	default:
		p.Clock = clock.Real{}
	}
	p.devCA = cfg.CADir == ""
	if err := DevCA(&cfg, p.Clock.Now(), log); err != nil {
		return nil, err
	}
	if cfg.CTLogs == "" {
		if cfg.CTLogs, err = p.startDevCTLogs(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	ops, err := opsauth.Parse(cfg.OpsTokens)
	if err != nil {
		return nil, err
	}
	nc, jsc, err := app.ConnectNATS(ctx, p.NATSURL, "certplatform", cfg.NatsReplicas)
	if err != nil {
		return nil, err
	}
	p.nc = nc
	// VA-7: MPIC_PERSPECTIVES validation agents in-process unless
	// MPIC_AGENTS names real ones, before the validation service asks them.
	if err := p.startAgents(DevAgents(&cfg), log); err != nil {
		return nil, err
	}
	reg := app.NewRegistry()
	sh := app.Shared{Config: cfg, NC: nc, JS: jsc, Clock: p.Clock, Log: log, Registry: reg, Ops: ops}
	for _, def := range Definitions {
		u, err := app.Build(ctx, def, sh)
		if err != nil {
			return nil, err
		}
		p.Units = append(p.Units, u)
		if err := u.Start(ctx); err != nil {
			return nil, err
		}
	}
	p.Config = cfg
	r := app.NewRouter(log, reg, p.Units...)
	app.DeadLetterRoutes(r, jsc, ops, log)
	app.AuditRoutes(r, nc, jsc, ops, log)
	console.Routes(r) // the ops console's pages under /ops/ (not /ops/v1/)
	if c, ok := p.Clock.(*clock.Offset); ok && cfg.ClockControl {
		r.Post("/dev/v1/clock", clockHandler(c, p.Units, log))
		r.Get("/dev/v1/clock", func(w http.ResponseWriter, _ *http.Request) {
			writeClock(w, c.Now())
		})
	}
	p.router = r
	p.srv = app.NewServer(cfg, r, log)
	p.served = make(chan error, 1)
	go func() { p.served <- p.srv.Serve(p.ln) }()
	return p, nil
}

// Router is exposed for tests that need no listener.
func (p *Platform) Router() chi.Router { return p.router }

// Wait blocks until ctx ends or the HTTP server fails.
func (p *Platform) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-p.served:
		return err
	}
}

// Stop shuts down in order: HTTP, each service (stop consuming, finish
// in-flight work, flush the outbox), NATS, the mail sink, Postgres.
func (p *Platform) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	if p.srv != nil {
		errs = append(errs, p.srv.Shutdown(ctx))
	} else if p.ln != nil {
		p.ln.Close()
	}
	for i := len(p.Units) - 1; i >= 0; i-- {
		errs = append(errs, p.Units[i].Stop(ctx))
	}
	for _, s := range p.ctLogs {
		_ = s.Close()
	}
	for _, c := range p.agentConns {
		c.Close()
	}
	if p.nc != nil {
		p.nc.Close()
	}
	if p.ns != nil {
		p.ns.Shutdown()
		p.ns.WaitForShutdown()
	}
	if p.stopMail != nil {
		p.stopMail()
	}
	p.pg.Stop()
	return errors.Join(errs...)
}

// DevCTLogCount is how many CT logs the all-in-one runs when CT_LOGS is
// unset. Three, not two: a server certificate valid more than 180 days
// (199 until 2027-03-15) needs 3 embedded SCTs under the browsers' CT
// policies, which the issuer applies (IS-9).
const DevCTLogCount = 3

// startDevCTLogs runs the dev CT logs (pkg/ctlog), each on its own
// loopback listener, stamping SCTs by the platform clock, with keys kept
// in $DATA_DIR/ct so that SCTs stay verifiable across restarts. It
// returns their CT_LOGS value.
func (p *Platform) startDevCTLogs(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "ct")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	var entries []string
	for i := 1; i <= DevCTLogCount; i++ {
		name := fmt.Sprintf("certlife-dev-log-%d", i)
		l, err := ctlog.LoadOrCreate(name, filepath.Join(dir, fmt.Sprintf("log%d.key", i)))
		if err != nil {
			return "", fmt.Errorf("dev CT log %d: %w", i, err)
		}
		l.SetClock(p.Clock.Now)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		srv := &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		p.ctLogs = append(p.ctLogs, srv)
		url := "http://" + ln.Addr().String()
		p.DevCTLogs = append(p.DevCTLogs, url)
		entries = append(entries, url+"="+l.PublicKeyBase64())
	}
	return strings.Join(entries, ","), nil
}

func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		ServerName: "certplatform", JetStream: true, StoreDir: dir,
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, err
	}
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS did not start")
	}
	return ns, nil
}

// Generated says which dev secrets DevSecrets made, for the banner.
type Generated struct {
	OpsToken, OpsTokenFile, WebhookSecretFile, NotifierKeyFile string
}

// DevSecrets fills what a developer should not have to configure: the
// notifier's and the session signer's key pairs, the certificate-code HMAC
// key, an ops token and a webhook secret, kept in DATA_DIR (0600) so they
// survive restarts. The all-in-one and split mode share it (SE-10: only
// they make secrets up).
func DevSecrets(cfg *app.Config) (g Generated, err error) {
	if cfg.NotifierPrivateKeyFile == "" {
		cfg.NotifierPrivateKeyFile = filepath.Join(cfg.DataDir, "notifier.key")
	}
	if cfg.NotifierPublicKey == "" {
		k, err := seal.LoadOrCreate(cfg.NotifierPrivateKeyFile, true)
		if err != nil {
			return g, err
		}
		cfg.NotifierPublicKey = k.Public().String()
		g.NotifierKeyFile = cfg.NotifierPrivateKeyFile
	}
	if cfg.SessionPrivateKeyFile == "" {
		cfg.SessionPrivateKeyFile = filepath.Join(cfg.DataDir, "session.key")
	}
	if cfg.SessionPublicKey == "" {
		k, err := session.LoadOrCreateKey(cfg.SessionPrivateKeyFile, true)
		if err != nil {
			return g, err
		}
		cfg.SessionPublicKey = session.EncodePublicKey(k.Public().(ed25519.PublicKey))
	}
	if cfg.CodeHMACKeyFile == "" {
		cfg.CodeHMACKeyFile = filepath.Join(cfg.DataDir, "code-hmac.key")
		if _, err := persistentSecret(cfg.CodeHMACKeyFile); err != nil {
			return g, err
		}
	}
	if cfg.OpsTokens == "" {
		g.OpsTokenFile = filepath.Join(cfg.DataDir, "ops-token")
		if g.OpsToken, err = persistentSecret(g.OpsTokenFile); err != nil {
			return g, err
		}
		cfg.OpsTokens = g.OpsToken + ":admin"
	}
	if cfg.WebhookSecret == "" {
		g.WebhookSecretFile = filepath.Join(cfg.DataDir, "webhook-secret")
		if cfg.WebhookSecret, err = persistentSecret(g.WebhookSecretFile); err != nil {
			return g, err
		}
	}
	if cfg.InvoiceRegistrationNumber == "" {
		cfg.InvoiceRegistrationNumber = app.DevInvoiceRegistrationNumber
	}
	return g, nil
}

func persistentSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// Banner is what `make run` prints for a newcomer: where everything is,
// and which development conveniences are on (SE-10: they exist only in
// this all-in-one; a per-service binary refuses to start without the real
// thing).
func (p *Platform) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncertlife platform is up (all five services in one process)\n\n")
	fmt.Fprintf(&b, "  API            %s   (OpenAPI: %s/v1/openapi.json)\n", p.URL, p.URL)
	fmt.Fprintf(&b, "  ops console    %s/ops/   (sign in with an ops token)\n", p.URL)
	fmt.Fprintf(&b, "  metrics        %s/metrics   health: %s/healthz  %s/readyz\n", p.URL, p.URL, p.URL)
	fmt.Fprintf(&b, "  NATS           %s   (embedded: %v)\n", p.NATSURL, p.ns != nil)
	created := ""
	if p.Database.Created {
		created = ", created now"
	}
	fmt.Fprintf(&b, "  Postgres       database %q on the %s%s\n", p.Database.Database, p.Database.Server, created)
	fmt.Fprintf(&b, "                 %s   (one schema per service)\n", maskDB(p.Database.URL))
	if p.OpsToken != "" {
		fmt.Fprintf(&b, "  ops token      %s   (role admin; Authorization: Bearer …)\n", p.OpsToken)
	} else {
		fmt.Fprintf(&b, "  ops tokens     from OPS_TOKENS\n")
	}
	if p.WebhookSecretFile == "" {
		fmt.Fprintf(&b, "  webhook secret from WEBHOOK_SECRET\n")
	}
	if p.MailDir != "" {
		fmt.Fprintf(&b, "  mail           every message lands as .eml in %s (SMTP sink at %s)\n", p.MailDir, p.Config.SMTPAddr)
	} else {
		fmt.Fprintf(&b, "  mail           sent to %s\n", p.Config.SMTPAddr)
	}
	fmt.Fprintf(&b, "  CA             %s/ca/root.pem (DER: /ca/root.der)  S/MIME CA: /ca/ica1.der  TLS CA: /ca/tls1.der  CRLs: /crl/ica1.crl /crl/tls1.crl /crl/root.crl\n", p.URL)
	if len(p.DevCTLogs) > 0 {
		fmt.Fprintf(&b, "  CT logs        %d embedded dev logs: %s\n", len(p.DevCTLogs), strings.Join(p.DevCTLogs, " "))
	} else {
		fmt.Fprintf(&b, "  CT logs        from CT_LOGS\n")
	}
	if len(p.agentConns) > 0 {
		fmt.Fprintf(&b, "  MPIC agents    %d in-process validation agents in %d regions (VA-7): %s\n", len(p.agentConns), len(DevAgentRegions), p.Config.MPICAgents)
	} else {
		fmt.Fprintf(&b, "  MPIC agents    from MPIC_AGENTS\n")
	}
	if p.publicURLDefaulted {
		fmt.Fprintf(&b, "  PUBLIC_URL     unset: certificates name %s in their CRL and caIssuers URLs (dev only; set PUBLIC_URL)\n", p.Config.PublicURL)
	} else {
		fmt.Fprintf(&b, "  PUBLIC_URL     %s (CRL and caIssuers URLs of new certificates)\n", p.Config.PublicURL)
	}
	fmt.Fprintf(&b, "  CA keys        CA_KEY_ALGORITHM=%s applies when the dev CA is first created\n", p.Config.CAKeyAlgorithm)
	fmt.Fprintf(&b, "  cancel window  %s   auto-approve reviews: %v\n", p.Config.CancelWindow, p.Config.ReviewAutoApprove)

	var dev []string
	if p.devCA {
		dev = append(dev, "dev CA (throwaway root and issuing CAs ica1 and tls1, keys in "+filepath.Join(p.Config.DataDir, "ca")+"; set CA_DIR for a real one)")
	}
	if p.MailDir != "" {
		dev = append(dev, "mail sink (nothing is sent; set SMTP_ADDR to send)")
	}
	if len(p.DevCTLogs) > 0 {
		dev = append(dev, "embedded CT logs (not trusted by any browser; keys in "+filepath.Join(p.Config.DataDir, "ct")+"; set CT_LOGS)")
	}
	if len(p.agentConns) > 0 {
		dev = append(dev, "in-process validation agents (one machine's view of the network, not independent perspectives; set MPIC_AGENTS)")
	}
	if p.OpsTokenFile != "" {
		dev = append(dev, "generated ops token, in "+p.OpsTokenFile+" (set OPS_TOKENS)")
	}
	if p.WebhookSecretFile != "" {
		dev = append(dev, "generated webhook secret, in "+p.WebhookSecretFile+" (set WEBHOOK_SECRET)")
	}
	if p.NotifierKeyFile != "" {
		dev = append(dev, "generated notifier key, in "+p.NotifierKeyFile+" (set NOTIFIER_PUBLIC_KEY and NOTIFIER_PRIVATE_KEY_FILE)")
	}
	if _, ok := p.Clock.(*clock.Offset); ok && p.Config.ClockControl {
		dev = append(dev, fmt.Sprintf("clock control (CLOCK_CONTROL): curl -H 'Content-Type: application/json' %s/dev/v1/clock -d '{\"advance\":\"720h\"}'", p.URL))
	}
	if len(dev) == 0 {
		fmt.Fprintf(&b, "\n  no development conveniences are on\n\n")
		return b.String()
	}
	fmt.Fprintf(&b, "\n  DEVELOPMENT CONVENIENCES ARE ON — not for production (service binaries refuse to start without real ones):\n")
	for _, d := range dev {
		fmt.Fprintf(&b, "    - %s\n", d)
	}
	b.WriteString("\n")
	return b.String()
}

func maskDB(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "@"); j >= 0 {
			if k := strings.Index(u[i+3:i+3+j], ":"); k >= 0 {
				return u[:i+3+k+1] + "*****" + u[i+3+j:]
			}
		}
	}
	if i := strings.Index(u, "password="); i >= 0 {
		j := strings.IndexByte(u[i:], ' ')
		if j < 0 {
			j = len(u) - i
		}
		return u[:i] + "password=*****" + u[i+j:]
	}
	return u
}
