// Package runner is the all-in-one platform: every service in one process
// with an embedded NATS JetStream server, Postgres found or started by
// localpg, an embedded SMTP sink, a dev CA, and (CLOCK_CONTROL) a clock
// that moves forward on request.
package runner

import (
	"context"
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

	"github.com/certlife/platform/cmd/certplatform/internal/localpg"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/seal"
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
	URL      string // base URL of the API
	OpsToken string // empty when OPS_TOKENS was given
	MailDir  string // where the embedded sink writes, empty with SMTP_ADDR
	NATSURL  string
	Clock    clock.Clock
	Units    []*app.Unit

	log      *slog.Logger
	srv      *http.Server
	ln       net.Listener
	ns       *server.Server
	nc       *nats.Conn
	pg       *localpg.Cluster
	stopMail func()
	served   chan error
}

// Start brings the platform up and serves HTTP on cfg.HTTPAddr.
func Start(ctx context.Context, cfg app.Config, log *slog.Logger) (*Platform, error) {
	return StartWithClock(ctx, cfg, log, nil)
}

// StartWithClock is Start with a given clock (tests restart a platform on
// the clock the previous one had moved). nil = the configured clock.
func StartWithClock(ctx context.Context, cfg app.Config, log *slog.Logger, clk clock.Clock) (p *Platform, err error) {
	p = &Platform{log: log}
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
	if cfg.DatabaseURL, p.pg, err = localpg.Find(ctx, cfg.DatabaseURL, cfg.DataDir, log); err != nil {
		return nil, err
	}
	if cfg.NatsURL == "" {
		if p.ns, err = startNATS(filepath.Join(cfg.DataDir, "nats")); err != nil {
			return nil, err
		}
		p.NATSURL = p.ns.ClientURL()
	} else {
		p.NATSURL = cfg.NatsURL
	}
	cfg.NatsURL = p.NATSURL
	if p.OpsToken, err = DevSecrets(&cfg); err != nil {
		return nil, err
	}
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
	if cfg.PublicURL == "" {
		cfg.PublicURL = p.URL
	}
	switch {
	case clk != nil:
		p.Clock = clk
	case cfg.ClockControl:
		p.Clock = clock.NewOffset()
	default:
		p.Clock = clock.Real{}
	}
	if err := DevCA(&cfg, p.Clock.Now(), log); err != nil {
		return nil, err
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
	if c, ok := p.Clock.(*clock.Offset); ok && cfg.ClockControl {
		r.Post("/dev/v1/clock", clockHandler(c, p.Units, log))
		r.Get("/dev/v1/clock", func(w http.ResponseWriter, _ *http.Request) {
			writeClock(w, c.Now())
		})
	}
	p.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	p.served = make(chan error, 1)
	go func() { p.served <- p.srv.Serve(p.ln) }()
	return p, nil
}

// Router is exposed for tests that need no listener.
func (p *Platform) Router() chi.Router { return p.srv.Handler.(chi.Router) }

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

// DevSecrets fills what a developer should not have to configure: the
// notifier's key pair, an ops token and a webhook secret, kept in DATA_DIR
// (0600) so they survive restarts. It returns the ops token it generated
// ("" when OPS_TOKENS was given). The all-in-one and split mode share it.
func DevSecrets(cfg *app.Config) (opsToken string, err error) {
	if cfg.NotifierPrivateKeyFile == "" {
		cfg.NotifierPrivateKeyFile = filepath.Join(cfg.DataDir, "notifier.key")
	}
	if cfg.NotifierPublicKey == "" {
		k, err := seal.LoadOrCreate(cfg.NotifierPrivateKeyFile, true)
		if err != nil {
			return "", err
		}
		cfg.NotifierPublicKey = k.Public().String()
	}
	if cfg.OpsTokens == "" {
		tok, err := persistentSecret(filepath.Join(cfg.DataDir, "ops-token"))
		if err != nil {
			return "", err
		}
		cfg.OpsTokens = tok + ":admin"
		opsToken = tok
	}
	if cfg.WebhookSecret == "" {
		s, err := persistentSecret(filepath.Join(cfg.DataDir, "webhook-secret"))
		if err != nil {
			return "", err
		}
		cfg.WebhookSecret = s
	}
	return opsToken, nil
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

// Banner is what `make run` prints for a newcomer.
func (p *Platform) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\ncertlife platform is up (all five services in one process)\n\n")
	fmt.Fprintf(&b, "  API            %s   (OpenAPI: %s/v1/openapi.json)\n", p.URL, p.URL)
	fmt.Fprintf(&b, "  metrics        %s/metrics   health: %s/healthz  %s/readyz\n", p.URL, p.URL, p.URL)
	fmt.Fprintf(&b, "  NATS           %s   (embedded: %v)\n", p.NATSURL, p.ns != nil)
	fmt.Fprintf(&b, "  Postgres       %s\n", maskDB(p.Config.DatabaseURL))
	if p.OpsToken != "" {
		fmt.Fprintf(&b, "  ops token      %s   (role admin; Authorization: Bearer …)\n", p.OpsToken)
	} else {
		fmt.Fprintf(&b, "  ops tokens     from OPS_TOKENS\n")
	}
	if p.MailDir != "" {
		fmt.Fprintf(&b, "  mail           every message lands as .eml in %s (SMTP sink at %s)\n", p.MailDir, p.Config.SMTPAddr)
	} else {
		fmt.Fprintf(&b, "  mail           sent to %s\n", p.Config.SMTPAddr)
	}
	fmt.Fprintf(&b, "  CA             %s/ca/root.pem  CRL: %s/crl/ica1.crl\n", p.URL, p.URL)
	if _, ok := p.Clock.(*clock.Offset); ok {
		fmt.Fprintf(&b, "  clock          CLOCK_CONTROL on: POST %s/dev/v1/clock {\"advance\":\"720h\"}\n", p.URL)
	}
	fmt.Fprintf(&b, "  cancel window  %s   auto-approve reviews: %v\n\n", p.Config.CancelWindow, p.Config.ReviewAutoApprove)
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
	return u
}
