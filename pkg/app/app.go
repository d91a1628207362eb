// Package app is the runtime every service shares: configuration, the
// Postgres pool in the service's schema, the bus (outbox relay, consumers),
// durable timers, health, metrics and graceful shutdown. A service only
// says what it is (a Definition); app runs it, alone or beside the others.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/idempotency"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/retention"
	"github.com/certlife/platform/pkg/timer"
)

// Service is what a service module provides to the runtime.
type Service interface {
	// Routes mounts the service's public and ops routes.
	Routes(r chi.Router)
	// Start registers consumers, request/reply handlers and timer handlers.
	Start(ctx context.Context) error
}

// Definition names a service, its schema migrations and its constructor.
type Definition struct {
	Name       string // also the Postgres schema
	Migrations fs.FS  // goose SQL files, at the root of the FS
	New        func(d *Deps) (Service, error)
}

// Migrations is the directory "migrations" of a service's embedded files,
// as Definition.Migrations wants it.
func Migrations(files fs.FS) fs.FS {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // only a build-time mistake gets here
	}
	return sub
}

// Deps are what a service is built from.
type Deps struct {
	Name     string
	Config   Config
	Pool     *pgxpool.Pool
	NC       *nats.Conn
	JS       jetstream.JetStream
	Clock    clock.Clock
	Log      *slog.Logger
	Registry prometheus.Registerer
	Bus      *bus.Bus
	Timers   *timer.Worker
	// Ops checks ops tokens; every request it lets through is recorded in
	// the service's audit log (OP-4, SE-5).
	Ops *opsauth.Tokens
	// OpsQueries are the fan-out ops queries the service answers (audit
	// log, …): see FanOut.
	OpsQueries *OpsQueries
	// Idempotency keeps the service's Idempotency-Key records (SE-6);
	// Idempotent is its middleware, to mount on every POST route that
	// creates something, after the route's authentication:
	//	r.With(d.Idempotent).Post("/v1/applications", h.submit)
	Idempotency *idempotency.Store
	Idempotent  func(http.Handler) http.Handler
	// Retention is where the service declares how long the rows of its
	// hot-path tables are kept; the platform's own tables are in already.
	Retention *retention.Registry
}

// Unit is one running service.
type Unit struct {
	Deps    *Deps
	Service Service
	relay   *bus.Relay
	opsSub  *nats.Subscription
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Shared is what the units of one process share.
type Shared struct {
	Config   Config
	NC       *nats.Conn
	JS       jetstream.JetStream
	Clock    clock.Clock
	Log      *slog.Logger
	Registry prometheus.Registerer
	Ops      *opsauth.Tokens
}

// Build opens the service's schema and builds it; nothing runs yet.
func Build(ctx context.Context, def Definition, sh Shared) (*Unit, error) {
	log := sh.Log.With("service", def.Name)
	cfg := sh.Config
	if cfg.InboxRetention == 0 { // a Config not read by LoadConfig
		cfg.InboxRetention = bus.MinInboxRetention
	}
	if cfg.OutboxQuarantineRetention == 0 {
		cfg.OutboxQuarantineRetention = 90 * 24 * time.Hour
	}
	if cfg.InboxRetention < bus.MinInboxRetention {
		return nil, fmt.Errorf("INBOX_RETENTION %s is shorter than %s: a replayed event could outlive the inbox rows that recognize it", cfg.InboxRetention, bus.MinInboxRetention)
	}
	pool, err := db.OpenWith(ctx, cfg.DatabaseURL, def.Name, def.Migrations, log, db.Options{
		StatementTimeout: cfg.DBStatementTimeout, IdleInTransactionTimeout: cfg.DBIdleInTransactionTimeout,
	})
	if err != nil {
		return nil, err
	}
	reg := prometheus.WrapRegistererWith(prometheus.Labels{"service": def.Name}, sh.Registry)
	metrics := bus.NewMetrics(reg)
	d := &Deps{
		Name: def.Name, Config: cfg, Pool: pool, NC: sh.NC, JS: sh.JS, Clock: sh.Clock,
		Log: log, Registry: reg, OpsQueries: &OpsQueries{},
		Bus: &bus.Bus{Service: def.Name, Pool: pool, NC: sh.NC, JS: sh.JS, Log: log, Metrics: metrics},
		// A timer's handler holds a transaction: its deadline stays under
		// the server's idle-in-transaction bound.
		Timers: &timer.Worker{Pool: pool, Clock: sh.Clock, Log: log, Concurrency: cfg.TimerWorkers,
			MaxAttempts: cfg.TimerMaxAttempts, Metrics: timer.NewMetrics(reg),
			Timeout: min(45*time.Second, cfg.DBIdleInTransactionTimeout*3/4)},
		Retention:   retention.NewRegistry(reg),
		Idempotency: &idempotency.Store{DB: pool, Clock: sh.Clock, Log: log, TTL: cfg.IdempotencyTTL},
	}
	d.Retention.Interval, d.Retention.Batch = cfg.RetentionInterval, cfg.RetentionBatch
	if err := registerPlatformRetention(d.Retention, cfg); err != nil {
		pool.Close()
		return nil, err
	}
	d.Idempotent = d.Idempotency.Middleware
	d.Ops = sh.Ops.WithRecorder(auditOpsRequest(pool, sh.Clock, log))
	auditQueries(d)
	runtimeQueries(d)
	svc, err := def.New(d)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", def.Name, err)
	}
	u := &Unit{
		Deps: d, Service: svc,
		relay: &bus.Relay{Pool: pool, JS: sh.JS, Log: log, Metrics: metrics, PublishTimeout: cfg.OutboxPublishTimeout},
	}
	// What /readyz says, for Prometheus (OP-3): readiness alerts need a
	// series, and a scrape that still answers while Postgres or NATS is
	// gone is exactly the case to see.
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ready", Help: "1 when the service's database and NATS answer (as /readyz), else 0.",
	}, func() float64 {
		if u.Ready(context.Background()) != nil {
			return 0
		}
		return 1
	})); err != nil {
		pool.Close()
		return nil, err
	}
	return u, nil
}

// registerPlatformRetention bounds the platform tables every service has.
// They age by the wall clock: their timestamps are Postgres's now(), and
// the inbox's bound follows JetStream's real-time windows (bus package).
func registerPlatformRetention(r *retention.Registry, cfg Config) error {
	return errors.Join(
		r.Register(retention.Rule{Table: "inbox", Column: "handled_at", Period: cfg.InboxRetention, Clock: clock.Real{}}),
		r.Register(retention.Rule{Table: "outbox_quarantine", Column: "quarantined_at", Period: cfg.OutboxQuarantineRetention, Clock: clock.Real{}}),
		// A failure count outlives its message by nothing: the stream
		// drops the message after StreamMaxAge.
		r.Register(retention.Rule{Table: "consumer_failures", Column: "updated_at", Period: bus.StreamMaxAge, Clock: clock.Real{}}),
		// An Idempotency-Key's record is replayable for IdempotencyTTL (SE-6).
		r.Register(retention.Rule{Table: "idempotency_keys", Column: "created_at", Period: cfg.IdempotencyTTL}),
	)
}

// Start runs the unit: the outbox relay, the timer worker, and the
// service's consumers.
func (u *Unit) Start(ctx context.Context) error {
	ctx, u.cancel = context.WithCancel(ctx)
	// The service registers its timer handlers first: a timer that fell
	// due while the process was down must find its handler.
	err := u.Service.Start(ctx)
	if err != nil {
		u.cancel()
		return fmt.Errorf("%s: start: %w", u.Deps.Name, err)
	}
	if err := u.Deps.Retention.Install(ctx, u.Deps.Pool, u.Deps.Timers); err != nil {
		u.cancel()
		return fmt.Errorf("%s: retention: %w", u.Deps.Name, err)
	}
	if u.opsSub, err = serveOps(ctx, u.Deps); err != nil {
		u.cancel()
		return fmt.Errorf("%s: ops queries: %w", u.Deps.Name, err)
	}
	u.wg.Add(2)
	go func() { defer u.wg.Done(); _ = u.relay.Run(ctx) }()
	go func() { defer u.wg.Done(); _ = u.Deps.Timers.Run(ctx) }()
	return nil
}

// Relay exposes the outbox relay (tests crash it on purpose).
func (u *Unit) Relay() *bus.Relay { return u.relay }

// Stop shuts down gracefully: stop consuming and finish in-flight
// handlers, stop timers, publish what is left in the outbox, close.
func (u *Unit) Stop(ctx context.Context) error {
	err := u.Deps.Bus.Stop(ctx)
	if u.opsSub != nil {
		_ = u.opsSub.Unsubscribe()
	}
	if u.cancel != nil {
		u.cancel()
	}
	u.wg.Wait()
	if _, ferr := u.relay.Flush(ctx); ferr != nil {
		err = errors.Join(err, fmt.Errorf("flush outbox: %w", ferr))
	}
	u.Deps.Pool.Close()
	return err
}

// Ready reports whether the unit's database and NATS answer.
func (u *Unit) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := u.Deps.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("%s: database: %w", u.Deps.Name, err)
	}
	if !u.Deps.NC.IsConnected() {
		return fmt.Errorf("%s: nats: %s", u.Deps.Name, u.Deps.NC.Status())
	}
	return nil
}

// HealthRoutes mounts /healthz (live) and /readyz (DB and NATS reachable).
func HealthRoutes(r chi.Router, units ...*Unit) {
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		for _, u := range units {
			if err := u.Ready(r.Context()); err != nil {
				p := httpx.NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready", err.Error())
				p.RetryAfter = 5 * time.Second
				httpx.WriteProblem(w, r, p)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ready\n"))
	})
}
