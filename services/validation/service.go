// Package validation owns reviews (PC-6, OP-1) and the validation
// engines: domain control (SV-8, VA-1 … VA-3, VA-6), CAA (VA-4) through a
// validating resolver (VA-8), corroborated by remote perspectives — the
// validation-agent processes (VA-7) —, organization vs the registry
// (SV-7), and the record of every attempt (VA-9). The "validation-reviews"
// consumer opens a review for every finally accepted application, queues
// it for operators once it is paid, and operators (or
// REVIEW_AUTO_APPROVE) approve or reject it. See README.md; this file and
// agent.go are wiring only.
package validation

import (
	"context"
	"embed"
	"errors"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/dcv"
	"github.com/certlife/platform/services/validation/internal/domain"
	"github.com/certlife/platform/services/validation/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the validation service for the runtime.
var Definition = app.Definition{Name: "validation", Migrations: app.Migrations(migrationFiles), New: New}

// Service is validation, built from its dependencies.
type Service struct {
	d           *app.Deps
	queue       *validationapp.Queue
	dcv         *validationapp.DCV
	orgs        *validationapp.Orgs
	api         *api.API
	validations *api.Validations
	flow        *validationapp.Server
	server      *api.Server
	acme        *validationapp.ACME
}

// New builds the service. A multi-perspective configuration weaker than
// the TLS BRs is refused (VA-7); with no agent named (MPIC_AGENTS empty)
// the service starts, and every DNS/HTTP and CAA check fails saying so.
func New(d *app.Deps) (app.Service, error) {
	q := &validationapp.Queue{
		Pool: d.Pool, Clock: d.Clock, AutoApprove: d.Config.ReviewAutoApprove,
		Metrics: validationapp.NewMetrics(d.Registry), Log: d.Log,
	}
	checker, err := dcv.NewChecker(dcv.Config{DNSServer: d.Config.DCVDNSServer, HTTPPort: d.Config.DCVHTTPPort, Timeout: d.Config.DCVTimeout, Primary: true})
	if err != nil {
		return nil, err
	}
	agents, err := domain.ParseAgents(d.Config.MPICAgents)
	if err != nil {
		return nil, err
	}
	quorum := domain.Quorum{Perspectives: d.Config.MPICPerspectives, AllowedFailures: d.Config.MPICQuorumAllowedFailures, Agents: agents}
	if err := quorum.Validate(); err != nil {
		return nil, err
	}
	if !quorum.Configured() {
		d.Log.Warn("MPIC_AGENTS is empty: no remote perspective, so every domain and CAA check fails (VA-7)")
	}
	var identities []string
	for _, id := range d.Config.CAAIdentities {
		if id != "" {
			identities = append(identities, id)
		}
	}
	if len(identities) == 0 {
		return nil, errors.New("CAA_IDENTITIES is empty: name the issuer domain names this CA recognizes in CAA records (VA-4)")
	}
	var notifierKey *seal.PublicKey
	if d.Config.NotifierPublicKey != "" {
		k, err := seal.ParsePublicKey(d.Config.NotifierPublicKey)
		if err != nil {
			return nil, err
		}
		notifierKey = &k
	} else {
		d.Log.Warn("NOTIFIER_PUBLIC_KEY is empty: domain validation by e-mail is unavailable")
	}
	metrics := validationapp.NewDCVMetrics(d.Registry)
	v := &validationapp.DCV{
		Pool: d.Pool, Clock: d.Clock, Log: d.Log, Checker: checker,
		Remote: &dcv.Remote{NC: d.NC, Agents: agents, Timeout: d.Config.MPICTimeout}, Quorum: quorum,
		CAAIdentities: identities, HTTPPort: d.Config.DCVHTTPPort, NotifierKey: notifierKey, Metrics: metrics,
	}
	orgs := &validationapp.Orgs{Pool: d.Pool, Clock: d.Clock, Log: d.Log, Registry: store.Registry{Q: d.Pool}, Metrics: metrics}
	flow := &validationapp.Server{Pool: d.Pool, Clock: d.Clock, Log: d.Log, Queue: q, DCV: v, Orgs: orgs,
		CheckEvery: d.Config.DCVCheckInterval}
	flow.Install(d.Timers)
	var sessions *session.Verifier
	if d.Config.SessionPublicKey != "" {
		if sessions, err = session.ParseVerifier(d.Config.SessionPublicKey); err != nil {
			return nil, err
		}
	} else {
		d.Log.Warn("SESSION_PUBLIC_KEY is empty: the customer's domain validation routes answer 503")
	}
	return &Service{
		d: d, queue: q, dcv: v, orgs: orgs, api: &api.API{Queue: q, Log: d.Log},
		validations: &api.Validations{DCV: v, Orgs: orgs, Log: d.Log}, flow: flow,
		server: &api.Server{Flow: flow, DCV: v, Sessions: sessions, Clock: d.Clock, Log: d.Log},
		acme:   &validationapp.ACME{DCV: v, Clock: d.Clock, Log: d.Log},
	}, nil
}

// Routes mounts the review queue and the validation record for the
// reviewer role, the registry load for the admin role.
func (s *Service) Routes(r chi.Router) {
	s.server.CustomerRoutes(r)
	r.Group(func(r chi.Router) {
		r.Use(s.d.Ops.Require(opsauth.Reviewer))
		s.api.Routes(r)
		s.validations.ReviewerRoutes(r)
		s.server.PhoneRoutes(r)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.d.Ops.Require(opsauth.Admin))
		s.validations.AdminRoutes(r)
	})
}

// Start starts the review consumer and the server flow's.
func (s *Service) Start(ctx context.Context) error {
	if err := s.d.Bus.Start(ctx, s.queue.Consumer()); err != nil {
		return err
	}
	if err := s.d.Bus.Start(ctx, s.flow.Consumer()); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, s.acme.Consumer()) // ACME challenges and orders (§4.10)
}
