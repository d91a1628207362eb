// Package issuer is the platform's certificate authority service (SPEC
// §4.5): it holds the CA keys, issues client certificates at retrieval
// and server certificates (with Certificate Transparency) on approval,
// revokes them and publishes CRLs. See README.md for the choices made.
package issuer

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/issuer/internal/api"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/ct"
	"github.com/certlife/platform/services/issuer/internal/domain"
	"github.com/certlife/platform/services/issuer/internal/issuance"
)

//go:embed migrations/*.sql
var migrations embed.FS

// lintsAccepted is the one list of zlint results the issuer accepts, each
// with its reason (PC-17, IS-3). The code reads this file, so the list
// and the behaviour cannot drift apart.
//
//go:embed lints-accepted.txt
var lintsAccepted []byte

// LintsAccepted is the parsed list (tests run the zlint command with it).
func LintsAccepted() (*ca.Accepted, error) { return ca.ParseAccepted(lintsAccepted) }

// Definition registers the issuer with the platform runtime.
var Definition = app.Definition{Name: "issuer", Migrations: app.Migrations(migrations), New: New}

// distributionBase is where certificates say their CRL and issuing CA
// are: PUBLIC_URL, always over plain http — the S/MIME BR (7.1.2.3 b, c)
// require http URLs for the CRL distribution point and caIssuers, since
// relying parties fetch them without TLS (the content is signed). Outside
// dev mode PUBLIC_URL is required: a certificate carries these URLs for
// its whole life, so a guessed loopback default would be wrong forever.
func distributionBase(cfg app.Config) (string, error) {
	raw := strings.TrimRight(strings.TrimSpace(cfg.PublicURL), "/")
	if raw == "" {
		if !cfg.DevMode {
			return "", errors.New("PUBLIC_URL is required: every certificate's CRL distribution point and AIA caIssuers URL are built from it")
		}
		raw = "http://" + cfg.HTTPAddr
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("PUBLIC_URL %q must be an http(s) URL with a host and no query", raw)
	}
	u.Scheme = "http"
	return u.String(), nil
}

// Service is the running issuer.
type Service struct {
	d   *app.Deps
	svc *issuance.Service
	api *api.Handler
}

// New loads the CA from CA_DIR. Only the all-in-one's dev mode may leave
// CA_DIR unset (then $DATA_DIR/ca) and have a throwaway CA created there
// (IS-1, SE-10); a service binary without its CA files refuses to start,
// naming what is missing. A key file readable by group or others stops the
// start (SE-2).
func New(d *app.Deps) (app.Service, error) {
	if d.Config.TermClient <= 0 {
		return nil, errors.New("PRODUCT_TERM_CLIENT must be positive")
	}
	if d.Config.SessionPublicKey == "" {
		return nil, errors.New("SESSION_PUBLIC_KEY is required to verify applicant sessions (intake's session signing key)")
	}
	sessions, err := session.ParseVerifier(d.Config.SessionPublicKey)
	if err != nil {
		return nil, err
	}
	if err := ca.CheckKeyAlgorithm(d.Config.CAKeyAlgorithm); err != nil {
		return nil, err
	}
	public, err := distributionBase(d.Config)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(d.Config.PublicURL) == "" {
		d.Log.Info("PUBLIC_URL is unset: dev mode puts the listen address in CRL and AIA URLs", "base", public)
	}
	accepted, err := LintsAccepted()
	if err != nil {
		return nil, err
	}
	dir := d.Config.CADir
	if dir == "" && d.Config.DevMode {
		dir = filepath.Join(d.Config.DataDir, "ca")
	}
	if !d.Config.DevMode {
		if err := requireCAFiles(dir); err != nil {
			return nil, err
		}
	}
	logs, err := ctLogs(d.Config, d.Log)
	if err != nil {
		return nil, err
	}
	h, err := ca.Open(ca.Options{
		Dir: dir, Now: d.Clock.Now(), Log: d.Log, Dev: d.Config.DevMode,
		KeyAlgorithm: d.Config.CAKeyAlgorithm, Purposes: purposes,
		BaseURL: public, Accepted: accepted,
	})
	if err != nil {
		return nil, err
	}
	metrics := issuance.NewMetrics(d.Registry)
	svc := &issuance.Service{
		Pool: d.Pool, Clock: d.Clock, CA: h, Log: d.Log, Term: d.Config.TermClient,
		Metrics: metrics, MinSCTs: d.Config.CTMinSCTs, CoverageLead: d.Config.CoverageReissueLead,
		CT: &ct.Submitter{Logs: logs, Timeout: d.Config.CTSubmitTimeout, Log: d.Log, Observe: func(log string, ok bool) {
			result := "sct"
			if !ok {
				result = "failed"
			}
			metrics.CTSubmissions.WithLabelValues(log, result).Inc()
		}},
	}
	if err := d.Registry.Register(svc.Collector()); err != nil {
		return nil, err
	}
	return &Service{d: d, svc: svc, api: &api.Handler{Svc: svc, Sessions: sessions, Clock: d.Clock, Ops: d.Ops, Log: d.Log, Idempotent: d.Idempotent}}, nil
}

// purposes are the issuing CAs the issuer needs (IS-11): S/MIME for
// client certificates, TLS for server certificates.
var purposes = []ca.Purpose{ca.PurposeSMIME, ca.PurposeTLS}

// ctLogs reads CT_LOGS (IS-9). Outside dev mode at least two logs are
// required, since no server certificate issues with fewer; in dev mode
// an issuer without logs starts, says so, and every server issuance
// fails visibly (the all-in-one runs its own dev logs).
func ctLogs(cfg app.Config, log *slog.Logger) ([]*ct.Log, error) {
	if cfg.CTMinSCTs < 2 {
		return nil, errors.New("CT_MIN_SCTS must be at least 2 (IS-9: SCTs from at least 2 logs of different operators)")
	}
	if cfg.CTSubmitTimeout <= 0 {
		return nil, errors.New("CT_SUBMIT_TIMEOUT must be a positive duration")
	}
	// IS-4: a lead as long as a certificate would reissue it at once, and
	// its replacement too, until the coverage ends.
	if cfg.CoverageReissueLead <= 0 || cfg.CoverageReissueLead > domain.MaxCoverageReissueLead {
		return nil, fmt.Errorf("COVERAGE_REISSUE_LEAD must be positive and at most %s (under the shortest certificate's validity)",
			domain.MaxCoverageReissueLead)
	}
	logs, err := ct.ParseLogs(cfg.CTLogs)
	if err != nil {
		return nil, err
	}
	operators := map[string]bool{}
	for _, l := range logs {
		operators[l.Operator] = true
	}
	if len(operators) < 2 {
		if !cfg.DevMode {
			return nil, fmt.Errorf("CT_LOGS names logs of %d operators: at least 2 are required (IS-9), as url=base64-public-key[@operator],…", len(operators))
		}
		log.Warn("CT_LOGS names fewer than 2 log operators: server certificates cannot be issued (IS-9)", "logs", len(logs))
	}
	return logs, nil
}

// Routes mounts the issuer's routes.
func (s *Service) Routes(r chi.Router) { s.api.Routes(r) }

// Start registers the timers, makes sure a current CRL exists, and starts
// the consumer.
func (s *Service) Start(ctx context.Context) error {
	s.d.Timers.Handle(issuance.TimerCRL, s.svc.OnCRLTimer)
	s.d.Timers.Handle(issuance.TimerMassRevocation, s.svc.OnMassRevocationTimer)
	s.d.Timers.Handle(issuance.TimerPKCS12Purge, s.svc.OnPKCS12Purge)
	s.d.Timers.Handle(issuance.TimerTLSIssue, s.svc.OnTLSIssue)
	s.d.Timers.Handle(issuance.TimerCoverageReissue, s.svc.OnCoverageReissue)
	if err := s.svc.BackfillSPKI(ctx); err != nil {
		return err
	}
	if err := s.svc.EnsureCRL(ctx); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, bus.Consumer{Name: issuance.ConsumerName, Handlers: s.svc.Handlers()})
}

// caFiles are what a CA directory must hold for a service binary: the
// root and issuing certificates — S/MIME (ica1) and TLS (tls1), IS-11 —
// their keys (the root key stays offline) and the data key that seals
// PKCS#12 files at rest — which every replica must share, so it is
// provisioned, never generated.
var caFiles = []string{"root.pem", "ica1.pem", "ica1.key", "tls1.pem", "tls1.key", "data.key"}

// requireCAFiles refuses a missing CA_DIR, or one that lacks any CA file,
// naming what is missing: outside dev mode nothing is created (SE-10).
func requireCAFiles(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: CA_DIR is not set: the issuer needs a directory with its CA files (%s); only the all-in-one runner creates a throwaway dev CA",
			ca.ErrNoCA, strings.Join(caFiles, ", "))
	}
	var missing []string
	for _, f := range caFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		} else if err != nil {
			return fmt.Errorf("CA_DIR %s: %w", dir, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: CA_DIR %s lacks %s; only the all-in-one runner creates a throwaway dev CA",
			ca.ErrNoCA, dir, strings.Join(missing, ", "))
	}
	return nil
}

// PrepareDevCA creates a throwaway dev CA in dir unless one is there — what
// the all-in-one does in dev mode — for dev tooling that then starts
// issuer binaries on it (split mode). Never for production.
func PrepareDevCA(dir, baseURL, keyAlgorithm string, now time.Time, log *slog.Logger) error {
	accepted, err := LintsAccepted()
	if err != nil {
		return err
	}
	_, err = ca.Open(ca.Options{Dir: dir, Now: now, Log: log, Dev: true, KeyAlgorithm: keyAlgorithm,
		Purposes: purposes, BaseURL: baseURL, Accepted: accepted})
	return err
}
