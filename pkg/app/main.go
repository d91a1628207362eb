package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/openapi"
	"github.com/certlife/platform/pkg/opsauth"
)

// NewLogger is the JSON logger every process uses.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}

// NewRegistry is a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewRouter builds the HTTP router of a process: problem answers for
// unknown routes, panic recovery, refusal of NUL and broken UTF-8 in the
// path, query and headers, health, metrics (with every request counted
// and timed by route pattern), and each unit's routes.
func NewRouter(log *slog.Logger, reg *prometheus.Registry, units ...*Unit) chi.Router {
	r := chi.NewRouter()
	// Metrics first: they see the status a recovered panic becomes.
	r.Use(NewHTTPMetrics(reg).Middleware, httpx.Recover(log), httpx.ValidInput)
	r.NotFound(httpx.NotFoundHandler)
	r.MethodNotAllowed(httpx.MethodNotAllowedHandler)
	HealthRoutes(r, units...)
	r.Handle("/metrics", readOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	r.Method(http.MethodGet, "/v1/openapi.json", openapi.Handler())
	RuntimeOpsRoutes(r, units...)
	if len(units) > 0 {
		// Audited like every ops request, in the first unit's log.
		WhoamiRoutes(r, units[0].Deps.Ops)
	}
	for _, u := range units {
		u.Service.Routes(r)
	}
	return r
}

// readOnly answers GET and HEAD with h, and every other method with a
// 405 problem naming them.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.MethodNotAllowedHandler(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ConnectNATS connects to url and makes sure the streams exist.
func ConnectNATS(ctx context.Context, url, name string, replicas int, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats: %w", err)
	}
	// Without an ack timeout an async publish whose ack was lost (the
	// NATS node died with it) never completes, and the outbox relay
	// holding it stalls for good.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if err := bus.SetupStreams(ctx, js, replicas); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Main runs one service as its own process: the per-service binary's
// whole main is app.Main(service.Definition).
func Main(def Definition) {
	if err := run(def); err != nil {
		fmt.Fprintln(os.Stderr, def.Name+":", err)
		os.Exit(1)
	}
}

func run(def Definition) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	log := NewLogger(cfg.LogLevel).With("service", def.Name)
	log.Info("starting", "config", cfg)
	if cfg.DatabaseURL == "" || cfg.NatsURL == "" {
		return errors.New("DATABASE_URL and NATS_URL are required (the all-in-one runner embeds NATS and finds Postgres)")
	}
	if cfg.ClockControl {
		return errors.New("CLOCK_CONTROL is only for the all-in-one runner")
	}
	ops, err := opsauth.Parse(cfg.OpsTokens)
	if err != nil {
		return err
	}
	nc, js, err := ConnectNATS(ctx, cfg.NatsURL, def.Name, cfg.NatsReplicas)
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := NewRegistry()
	u, err := Build(ctx, def, Shared{Config: cfg, NC: nc, JS: js, Clock: clock.Real{}, Log: NewLogger(cfg.LogLevel), Registry: reg, Ops: ops})
	if err != nil {
		return err
	}
	if err := u.Start(ctx); err != nil {
		return err
	}
	r := NewRouter(log, reg, u)
	DeadLetterRoutes(r, js, ops, log)
	AuditRoutes(r, nc, js, ops, log)
	return Serve(ctx, NewServer(cfg, r, log), log, u)
}

// Serve runs srv until ctx ends, then shuts down the HTTP server first
// (no new work), then each unit (consumers, timers, outbox flush).
func Serve(ctx context.Context, srv *http.Server, log *slog.Logger, units ...*Unit) error {
	errc := make(chan error, 1)
	go func() {
		log.Info("listening", "addr", srv.Addr)
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
		close(errc)
	}()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := []error{serveErr, srv.Shutdown(sctx)}
	for _, u := range units {
		errs = append(errs, u.Stop(sctx))
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether addr listens on loopback only.
func IsLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "localhost:") || strings.HasPrefix(addr, "[::1]")
}
