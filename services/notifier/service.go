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
// nor a redelivered or republished event sends a second message. See
// README.md; this file is wiring only.
package notifier

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/retention"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/notifier/internal/api"
	notifierapp "github.com/certlife/platform/services/notifier/internal/app"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/templates"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the notifier for the runtime.
var Definition = app.Definition{Name: "notifier", Migrations: app.Migrations(migrationFiles), New: New}

// smtpTimeout bounds one SMTP conversation (it runs inside the send
// timer's transaction).
const smtpTimeout = 30 * time.Second

// Service is the running notifier.
type Service struct {
	d   *app.Deps
	app *notifierapp.App
	api *api.Handlers
}

// New builds the notifier: its key, templates, SMTP sender, metrics and
// timer handlers. It refuses to start without an SMTP server (SMTP_ADDR)
// or its key file (NOTIFIER_PRIVATE_KEY_FILE) (SE-10): mail must never
// silently go nowhere, and a code it cannot open is a mail it cannot
// send. The all-in-one runner provides both in dev mode (its mail sink,
// a key under DATA_DIR).
func New(d *app.Deps) (app.Service, error) {
	if d.Config.SMTPAddr == "" {
		return nil, errors.New("SMTP_ADDR is not set: the notifier needs an SMTP server to send mail (only the all-in-one runner has a mail sink)")
	}
	keyFile := d.Config.NotifierPrivateKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(d.Config.DataDir, "notifier.key")
	}
	// Never created here: a new key would silently make every code sealed
	// to the old public key unreadable.
	key, err := seal.LoadOrCreate(keyFile, false)
	if err != nil {
		return nil, fmt.Errorf("the notifier's key file (NOTIFIER_PRIVATE_KEY_FILE, default $DATA_DIR/notifier.key) cannot be used: %w", err)
	}
	mailDomain, err := domain.MailDomain(d.Config.MailFrom)
	if err != nil {
		return nil, fmt.Errorf("MAIL_FROM %q must be an e-mail address with a domain (it names the sender and the right side of every Message-ID): %w", d.Config.MailFrom, err)
	}
	sender, err := smtpsend.New(d.Config.SMTPAddr, smtpTimeout)
	if err != nil {
		return nil, err
	}
	tmpl, err := templates.Load()
	if err != nil {
		return nil, err
	}
	m, err := notifierapp.NewMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	a := &notifierapp.App{
		Pool: d.Pool, JS: d.JS, Clock: d.Clock, Log: d.Log, Key: key, Templates: tmpl, Sender: sender, Metrics: m,
		PublicURL: d.Config.PublicURL, MailFrom: d.Config.MailFrom, MailDomain: mailDomain,
	}
	// Registered here, before the runtime starts the timer worker, so a
	// timer due at start (after a downtime) finds its handler.
	d.Timers.Handle(notifierapp.TimerSend, a.SendDue)
	d.Timers.Handle(notifierapp.TimerReminder, a.ReminderDue)
	d.Timers.Handle(notifierapp.TimerCoverageCSRReminder, a.CoverageCSRReminderDue)
	// The delivery log is bounded (NO-4 keeps it for operators): messages
	// sent or given up are pruned after DELIVERY_RETENTION; pending ones stay.
	if err := d.Retention.Register(retention.Rule{Table: "deliveries", Period: d.Config.DeliveryRetention,
		Prune: a.PruneDeliveries}); err != nil {
		return nil, err
	}
	// The public key is what intake seals codes to (NOTIFIER_PUBLIC_KEY).
	d.Log.Info("notifier key loaded", "public_key", key.Public().String())
	return &Service{d: d, app: a, api: &api.Handlers{App: a, Ops: d.Ops, Log: d.Log}}, nil
}

// Routes mounts the ops delivery log.
func (s *Service) Routes(r chi.Router) { s.api.Mount(r) }

// Start starts the consumers.
func (s *Service) Start(ctx context.Context) error {
	for _, c := range s.app.Consumers() {
		if err := s.d.Bus.Start(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
