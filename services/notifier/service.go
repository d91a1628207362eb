// Package notifier is the notifier service (SPEC §4.6): it turns events
// into e-mails through a durable queue (NO-1, NO-4), renders them in the
// applicant's language (NO-2), and schedules renewal reminders (PC-10,
// NO-3).
//
// Flow of a message: an event handler inserts a delivery row and a send
// timer in the transaction of the event's inbox row; the timer sends it
// over SMTP, marks it sent and emits NotificationSent; a failed attempt is
// recorded and the timer rescheduled with backoff. The row's Message-ID is
// derived from (recipient, reason, subject), unique, so neither a retry
// nor a redelivered or republished event sends a second message.
package notifier

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/notifier/internal/api"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/templates"
	"github.com/certlife/platform/services/notifier/mailsink"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the notifier for the runtime.
var Definition = app.Definition{Name: "notifier", Migrations: app.Migrations(migrationFiles), New: New}

// Timer kinds.
const (
	timerSend     = "notifier.send"     // key: Message-ID
	timerReminder = "notifier.reminder" // key: certificate/days
)

// RetryDelays are the waits after each failed SMTP attempt; when they run
// out the message is given up (status failed).
var RetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour}

// smtpTimeout bounds one SMTP conversation (it runs inside the send
// timer's transaction).
const smtpTimeout = 30 * time.Second

// Service is the running notifier.
type Service struct {
	d       *app.Deps
	key     *seal.PrivateKey
	tmpl    *templates.Set
	sender  atomic.Pointer[smtpsend.Sender]
	metrics *metrics
	api     *api.Handlers
}

// New builds the notifier: its key, templates, metrics and timer handlers.
func New(d *app.Deps) (app.Service, error) {
	key, err := loadKey(d.Config)
	if err != nil {
		return nil, err
	}
	tmpl, err := templates.Load()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s := &Service{d: d, key: key, tmpl: tmpl, metrics: m, api: &api.Handlers{DB: d.Pool, Ops: d.Ops, Log: d.Log}}
	if d.Config.SMTPAddr != "" {
		sender, err := smtpsend.New(d.Config.SMTPAddr, smtpTimeout)
		if err != nil {
			return nil, err
		}
		s.sender.Store(sender)
	}
	// Registered here, before the runtime starts the timer worker, so a
	// timer due at start (after a downtime) finds its handler.
	d.Timers.Handle(timerSend, s.sendDue)
	d.Timers.Handle(timerReminder, s.reminderDue)
	// The public key is what intake seals codes to (NOTIFIER_PUBLIC_KEY).
	d.Log.Info("notifier key loaded", "public_key", key.Public().String())
	return s, nil
}

// loadKey reads the X25519 key that opens certificate codes (SE-1). A
// configured path must exist; only the default path under DATA_DIR is
// created on first start.
func loadKey(cfg app.Config) (*seal.PrivateKey, error) {
	path, create := cfg.NotifierPrivateKeyFile, false
	if path == "" {
		path, create = filepath.Join(cfg.DataDir, "notifier.key"), true
	}
	key, err := seal.LoadOrCreate(path, create)
	if err != nil {
		return nil, fmt.Errorf("notifier key: %w", err)
	}
	return key, nil
}

// Routes mounts the ops delivery log.
func (s *Service) Routes(r chi.Router) { s.api.Mount(r) }

// Start starts the mail sink when no SMTP server is configured, and the
// consumers.
func (s *Service) Start(ctx context.Context) error {
	if s.sender.Load() == nil {
		dir := filepath.Join(s.d.Config.DataDir, "mail")
		addr, stop, err := mailsink.Start(dir, s.d.Log)
		if err != nil {
			return err
		}
		s.d.Log.Warn("SMTP_ADDR is empty: mail is written as .eml files, not sent", "dir", dir)
		sender, err := smtpsend.New(addr, smtpTimeout)
		if err != nil {
			stop()
			return err
		}
		s.sender.Store(sender)
		go func() { <-ctx.Done(); stop() }()
	}
	if err := s.d.Bus.Start(ctx, bus.Consumer{
		Name: "notifier-mail",
		Handlers: map[string]bus.Handler{
			events.TypeApplicationProvisional: s.onApplicationProvisional,
			events.TypeApplicationCancelled:   s.onApplicationCancelled,
			events.TypeReviewRejected:         s.onReviewRejected,
			events.TypeApplicationRejected:    s.onApplicationRejected,
			events.TypeCertificateCodeIssued:  s.onCertificateCodeIssued,
			events.TypeCertificateRevoked:     s.onCertificateRevokedMail,
		},
	}); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, bus.Consumer{
		Name: consumerReminders,
		Handlers: map[string]bus.Handler{
			events.TypeCertificateIssued:    s.onCertificateIssued,
			events.TypeCertificateRevoked:   s.onCertificateRevoked,
			events.TypeCertificateRetrieved: s.onCertificateRetrieved,
		},
	})
}

var errNoSender = errors.New("no SMTP sender yet")
