package validation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/nats-io/nats.go"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/services/validation/internal/dcv"
)

// AgentConfig is a validation-agent's configuration, from the
// environment (VA-7). It has no database: an agent only looks at the
// network from where it runs, through its own resolver.
type AgentConfig struct {
	// Name is the agent's name in MPIC_AGENTS; it answers on
	// rpc.validation.agent.<name>.check.
	Name string `env:"AGENT_NAME"`
	// Region is where it runs (an RIR service region), for the record.
	Region  string `env:"AGENT_REGION"`
	NatsURL string `env:"NATS_URL"`
	// DNSServer is the agent's own resolver: never one shared with
	// another perspective (BR 3.2.2.9: no shared cache).
	DNSServer string        `env:"DCV_DNS_SERVER"`
	HTTPPort  int           `env:"DCV_HTTP_PORT" envDefault:"80"`
	Timeout   time.Duration `env:"DCV_TIMEOUT" envDefault:"10s"`
	LogLevel  string        `env:"LOG_LEVEL" envDefault:"info"`
	// HealthAddr, when set, serves GET /healthz there (200 while the
	// agent is connected to NATS): what a supervisor waits on.
	HealthAddr string `env:"AGENT_HEALTH_ADDR"`
}

// StartAgent runs an agent on nc, in this process, until stop is called
// or nc closes: what AgentMain runs, and what tests and an all-in-one
// runner start directly.
func StartAgent(nc *nats.Conn, cfg AgentConfig, log *slog.Logger) (stop func(), err error) {
	checker, err := dcv.NewChecker(dcv.Config{DNSServer: cfg.DNSServer, HTTPPort: cfg.HTTPPort, Timeout: cfg.Timeout})
	if err != nil {
		return nil, err
	}
	a := &dcv.Agent{Name: cfg.Name, Region: cfg.Region, Checker: checker, Log: log.With("agent", cfg.Name)}
	sub, err := a.Serve(nc)
	if err != nil {
		return nil, err
	}
	if err := nc.Flush(); err != nil { // the subscription is live before we say so
		_ = sub.Unsubscribe()
		return nil, err
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// AgentMain is the validation-agent command: it reads AgentConfig from
// the environment and runs until SIGINT or SIGTERM.
func AgentMain() {
	if err := runAgent(); err != nil {
		fmt.Fprintln(os.Stderr, "validation-agent:", err)
		os.Exit(1)
	}
}

func runAgent() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var cfg AgentConfig
	if err := env.Parse(&cfg); err != nil {
		return err
	}
	if cfg.Name == "" || cfg.Region == "" || cfg.NatsURL == "" {
		return errors.New("AGENT_NAME, AGENT_REGION and NATS_URL are required")
	}
	log := app.NewLogger(cfg.LogLevel).With("service", "validation-agent")
	log.Info("starting", "agent", cfg.Name, "region", cfg.Region, "nats_url", cfg.NatsURL,
		"dcv_dns_server", cfg.DNSServer, "dcv_http_port", cfg.HTTPPort, "dcv_timeout", cfg.Timeout)
	nc, err := nats.Connect(cfg.NatsURL, nats.Name("validation-agent-"+cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	stop, err := StartAgent(nc, cfg, log)
	if err != nil {
		return err
	}
	if cfg.HealthAddr != "" {
		ln, err := net.Listen("tcp", cfg.HealthAddr)
		if err != nil {
			stop()
			return fmt.Errorf("AGENT_HEALTH_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			if !nc.IsConnected() {
				http.Error(w, "not connected to NATS", http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte("ok\n"))
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	log.Info("ready", "subject", "rpc.validation.agent."+cfg.Name+".check")
	<-ctx.Done()
	stop()
	return nc.Drain()
}
