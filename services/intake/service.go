// Package intake is the public face of the platform for front-end apps:
// applicants, applications, the cancel window, sessions and maintenance
// windows (SPEC §2). See README.md.
package intake

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/retention"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/intake/internal/api"
	intakeapp "github.com/certlife/platform/services/intake/internal/app"
	"github.com/certlife/platform/services/intake/internal/domain"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition is intake for the runtime.
var Definition = NewDefinition(Options{})

// Options tune what the environment does not: tests shorten the sign-in
// bounds with them. Zero values are the defaults.
type Options struct {
	// Argon2Queue is how many argon2id evaluations may wait for a slot
	// (default 8 per slot); Argon2Wait how long each may wait (3s).
	// Negative Argon2Queue: none may wait.
	Argon2Queue int
	Argon2Wait  time.Duration
	// Throttle replaces SE-3's figures.
	Throttle *domain.Throttle
	// SessionTTL is the life of a session and its token (30 minutes).
	SessionTTL time.Duration
	// AutoReapplyAfter replaces AUTO_REAPPLY_AFTER (SV-4); negative: off.
	AutoReapplyAfter time.Duration
}

// serverConfig is intake's own configuration of server orders.
type serverConfig struct {
	// AutoReapplyAfter: a paid renewal order nobody applied for within
	// this period is applied for with the previous data (SV-4); 0 = off.
	AutoReapplyAfter time.Duration `env:"AUTO_REAPPLY_AFTER" envDefault:"336h"`
}

// NewDefinition is intake with options.
func NewDefinition(o Options) app.Definition {
	return app.Definition{Name: "intake", Migrations: app.Migrations(migrations),
		New: func(d *app.Deps) (app.Service, error) { return newService(d, o) }}
}

type service struct {
	d    *app.Deps
	uc   *intakeapp.Service
	api  *api.API
	acme *api.ACME
}

// newService builds intake from its configuration: the notifier's public
// key (codes leave sealed), the session signing key, the code HMAC key
// and the sign-in bounds. A missing secret stops the start (SE-10).
func newService(d *app.Deps, o Options) (app.Service, error) {
	c := d.Config
	if c.NotifierPublicKey == "" {
		return nil, errors.New("NOTIFIER_PUBLIC_KEY is required to seal certificate codes for the notifier")
	}
	notifier, err := seal.ParsePublicKey(c.NotifierPublicKey)
	if err != nil {
		return nil, err
	}
	if c.SessionPrivateKeyFile == "" {
		return nil, errors.New("SESSION_PRIVATE_KEY_FILE is required to sign applicant sessions (Ed25519, PKCS#8 PEM, mode 0600)")
	}
	key, err := session.LoadOrCreateKey(c.SessionPrivateKeyFile, false)
	if err != nil {
		return nil, fmt.Errorf("SESSION_PRIVATE_KEY_FILE: %w", err)
	}
	signer := session.NewSigner(key)
	verifier := session.NewVerifier(signer.Public())
	if c.SessionPublicKey != "" {
		// During a rotation every key listed verifies, the signer's too.
		if verifier, err = session.ParseVerifier(c.SessionPublicKey + "," + session.EncodePublicKey(signer.Public())); err != nil {
			return nil, err
		}
	}
	codeKey, err := loadCodeKey(c.CodeHMACKeyFile)
	if err != nil {
		return nil, err
	}
	proxies, err := api.ParseProxies(c.TrustedProxies)
	if err != nil {
		return nil, err
	}
	throttle := domain.DefaultThrottle()
	if o.Throttle != nil {
		throttle = *o.Throttle
	}
	queue := o.Argon2Queue
	if queue == 0 {
		queue = intakeapp.DefaultQueue(c.Argon2Concurrency)
	}
	ttl := o.SessionTTL
	if ttl <= 0 {
		ttl = 30 * time.Minute
	}
	var sc serverConfig
	if err := env.Parse(&sc); err != nil {
		return nil, err
	}
	if o.AutoReapplyAfter != 0 {
		sc.AutoReapplyAfter = max(o.AutoReapplyAfter, 0)
	}
	if sc.AutoReapplyAfter < 0 {
		return nil, errors.New("AUTO_REAPPLY_AFTER must not be negative (0 turns it off)")
	}
	public := strings.TrimRight(strings.TrimSpace(c.PublicURL), "/")
	if public == "" {
		public = "http://" + c.HTTPAddr
	}
	metrics := intakeapp.NewMetrics(d.Registry)
	uc := &intakeapp.Service{
		Pool: d.Pool, NC: d.NC, Clock: d.Clock, Log: d.Log,
		CancelWindow: c.CancelWindow, SessionTTL: ttl, NotifierKey: notifier, CodeKey: codeKey,
		Signer: signer, Verifier: verifier, Throttle: throttle, CodeRequests: domain.DefaultCodeRequests(), Metrics: metrics,
		Hasher:    intakeapp.NewHasher(c.Argon2Concurrency, queue, o.Argon2Wait, metrics),
		PublicURL: public, ServerTermMonths: domain.MonthsOf(c.TermServer), AutoReapplyAfter: sc.AutoReapplyAfter,
	}
	if err := registerRetention(d, uc); err != nil {
		return nil, err
	}
	if err := d.Registry.Register(uc.FunnelCollector()); err != nil {
		return nil, err
	}
	acmeUC := &intakeapp.ACME{Pool: d.Pool, Clock: d.Clock, Log: d.Log, EABRequired: c.ACMEEABRequired,
		SealKey: intakeapp.ACMESealKey(codeKey), Metrics: intakeapp.NewACMEMetrics(d.Registry)}
	if err := d.Retention.Register(retention.Rule{Table: "acme_nonces", Column: "expires_at", Period: time.Minute}); err != nil {
		return nil, err
	}
	return &service{d: d, uc: uc, api: &api.API{App: uc, Ops: d.Ops, Log: d.Log, Proxies: proxies, Idempotent: d.Idempotent},
		acme: &api.ACME{App: acmeUC, Ops: d.Ops, Log: d.Log, PublicURL: c.PublicURL}}, nil
}

// registerRetention bounds what intake writes on a hot path (issue 6
// item 3): sessions a day after they expired; sign-in attempts (and the
// per-e-mail rows without a lock) and requests for a fresh code an hour
// after they left their windows.
func registerRetention(d *app.Deps, uc *intakeapp.Service) error {
	return errors.Join(
		d.Retention.Register(retention.Rule{Table: "sessions", Column: "expires_at", Period: 24 * time.Hour}),
		d.Retention.Register(retention.Rule{Table: "login_failures", Period: uc.Throttle.Window + time.Hour,
			Prune: uc.PruneLoginFailures}),
		// Requests for a fresh code count for an hour (PC-16).
		d.Retention.Register(retention.Rule{Table: "code_requests", Column: "at", Period: uc.CodeRequests.Window + time.Hour}),
		// Password-setup links a day after they expired (used or not).
		d.Retention.Register(retention.Rule{Table: "customer_setup_tokens", Column: "expires_at", Period: 24 * time.Hour}),
	)
}

// loadCodeKey reads CODE_HMAC_KEY_FILE: at least 32 bytes (surrounding
// whitespace trimmed, e.g. `openssl rand -hex 32`), mode 0600 (SE-2, SE-7).
func loadCodeKey(path string) (domain.CodeKey, error) {
	if path == "" {
		return nil, errors.New("CODE_HMAC_KEY_FILE is required: the key of the certificate-code HMAC (≥ 32 bytes, mode 0600)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("CODE_HMAC_KEY_FILE: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CODE_HMAC_KEY_FILE: %s must not be readable by group or others (chmod 600)", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CODE_HMAC_KEY_FILE: %w", err)
	}
	key := bytes.TrimSpace(raw)
	if len(key) < domain.MinCodeKey {
		return nil, fmt.Errorf("CODE_HMAC_KEY_FILE: %s holds %d bytes, at least %d are needed", path, len(key), domain.MinCodeKey)
	}
	return domain.CodeKey(key), nil
}

func (s *service) Routes(r chi.Router) {
	s.api.Routes(r)
	s.acme.Routes(r) // SPEC §4.10
}

// Hasher is the bounded argon2id runner (tests hold its slots).
func (s *service) Hasher() *intakeapp.Hasher { return s.uc.Hasher }

func (s *service) Start(ctx context.Context) error {
	s.d.Timers.Handle(intakeapp.TimerCancelWindow, s.uc.CloseWindow)
	s.d.Timers.Handle(intakeapp.TimerAutoReapply, s.uc.AutoReapply)
	if err := s.d.Bus.Start(ctx, bus.Consumer{Name: "intake-applications", Handlers: s.uc.Handlers()}); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, bus.Consumer{Name: intakeapp.ConsumerACME, Handlers: s.acme.App.Handlers()})
}
