// Package issuer is the platform's certificate authority service (SPEC
// §4.5): it holds the CA keys, issues client certificates at retrieval,
// revokes them and publishes CRLs. See README.md for the choices made.
package issuer

import (
	"context"
	"embed"
	"errors"
	"path/filepath"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/issuer/internal/api"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/issuance"
	"github.com/certlife/platform/services/issuer/internal/profile"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition registers the issuer with the platform runtime.
var Definition = app.Definition{Name: "issuer", Migrations: app.Migrations(migrations), New: New}

// DefaultPublicURL is used for CRL and AIA URLs when PUBLIC_URL is empty.
const DefaultPublicURL = "http://127.0.0.1:8080"

// distributionBase is where certificates say their CRL and issuing CA
// are: PUBLIC_URL, always over plain http — the S/MIME BR (7.1.2.3)
// require http URLs for the CRL distribution point and caIssuers, since
// relying parties fetch them without TLS (the content is signed).
func distributionBase(publicURL string) string {
	base := strings.TrimRight(strings.TrimSpace(publicURL), "/")
	if base == "" {
		return DefaultPublicURL
	}
	if rest, ok := strings.CutPrefix(base, "https://"); ok {
		return "http://" + rest
	}
	return base
}

// Service is the running issuer.
type Service struct {
	d   *app.Deps
	svc *issuance.Service
	api *api.Handler
}

// New loads (or, in dev, creates) the CA from CA_DIR, default
// $DATA_DIR/ca. A key file readable by group or others stops the start (SE-2).
func New(d *app.Deps) (app.Service, error) {
	if d.Config.TermClient <= 0 {
		return nil, errors.New("PRODUCT_TERM_CLIENT must be positive")
	}
	dir := d.Config.CADir
	if dir == "" {
		dir = filepath.Join(d.Config.DataDir, "ca")
	}
	h, err := ca.Open(dir, d.Clock.Now(), d.Log)
	if err != nil {
		return nil, err
	}
	if d.Config.SessionPublicKey == "" {
		return nil, errors.New("SESSION_PUBLIC_KEY is required to verify applicant sessions (intake's session signing key)")
	}
	sessions, err := session.ParseVerifier(d.Config.SessionPublicKey)
	if err != nil {
		return nil, err
	}
	public := distributionBase(d.Config.PublicURL)
	svc := &issuance.Service{
		Pool: d.Pool, Clock: d.Clock, CA: h, Log: d.Log, Term: d.Config.TermClient,
		URLs: profile.URLs{
			CRL:       public + "/crl/" + ca.IssuingName + ".crl",
			CAIssuers: public + "/ca/" + ca.IssuingName + ".pem",
		},
		Metrics: issuance.NewMetrics(d.Registry),
	}
	return &Service{d: d, svc: svc, api: &api.Handler{Svc: svc, Sessions: sessions, Clock: d.Clock, Ops: d.Ops, Log: d.Log}}, nil
}

// Routes mounts the issuer's routes.
func (s *Service) Routes(r chi.Router) { s.api.Routes(r) }

// Start registers the timers, makes sure a current CRL exists, and starts
// the consumer.
func (s *Service) Start(ctx context.Context) error {
	s.d.Timers.Handle(issuance.TimerCRL, s.svc.OnCRLTimer)
	s.d.Timers.Handle(issuance.TimerPKCS12Purge, s.svc.OnPKCS12Purge)
	if err := s.svc.EnsureCRL(ctx); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, bus.Consumer{Name: issuance.ConsumerName, Handlers: s.svc.Handlers()})
}
