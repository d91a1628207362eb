// Package app is the notifier's use cases (SPEC §4.6). Event handlers
// turn events into queued e-mails (NO-1, NO-4) and renewal reminder
// timers (PC-10, NO-3), each in the transaction of the event's inbox row;
// timer handlers send a queued message over SMTP (send.go) or fire a
// reminder (reminders.go) in the timer's transaction. Every state change
// and the event it emits commit together.
package app

import (
	"context"
	"github.com/jackc/pgx/v5"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/store"
	"github.com/certlife/platform/services/notifier/internal/templates"
)

// Timer kinds.
const (
	TimerSend     = "notifier.send"     // key: Message-ID
	TimerReminder = "notifier.reminder" // key: certificate/days
)

// Durable consumers.
const (
	ConsumerMail      = "notifier-mail"
	ConsumerReminders = "notifier-reminders" // the facts a reminder decision depends on
)

// App runs the notifier's use cases.
type App struct {
	Pool      *pgxpool.Pool
	JS        jetstream.JetStream
	Clock     clock.Clock
	Log       *slog.Logger
	Key       *seal.PrivateKey // opens certificate codes (SE-1)
	Templates *templates.Set
	Sender    *smtpsend.Sender
	Metrics   *Metrics
	PublicURL string // the applicant's portal, in mails
	MailFrom  string
	// MailDomain is MAIL_FROM's domain, the right side of Message-IDs (NO-1).
	MailDomain string
}

// Consumers are the notifier's durable consumers.
func (a *App) Consumers() []bus.Consumer {
	return []bus.Consumer{{
		Name: ConsumerMail,
		Handlers: map[string]bus.Handler{
			events.TypeApplicationProvisional: a.onApplicationProvisional,
			events.TypeApplicationCancelled:   a.onApplicationCancelled,
			events.TypeReviewRejected:         a.onReviewRejected,
			events.TypeApplicationRejected:    a.onApplicationRejected,
			events.TypeCertificateCodeIssued:  a.onCertificateCodeIssued,
			events.TypeCertificateRevoked:     a.onCertificateRevokedMail,
			events.TypeCertificateIssued:      a.onCertificateIssuedMail,
			events.TypeOrderPlaced:            a.onOrderPlaced,
			events.TypeInvoiceIssued:          a.onInvoiceIssued,
			events.TypeCertificateImported:    a.onCertificateImportedMail,
			events.TypePaymentConfirmed:       a.onPaymentConfirmed,
			events.TypePaymentFailed:          a.onPaymentFailed,
			events.TypeRenewalDeclined:        a.onRenewalDeclinedMail,
			events.TypeCoverageCSRRequested:   a.onCoverageCSRRequested,
		},
	}, {
		Name: ConsumerReminders,
		Handlers: map[string]bus.Handler{
			events.TypeCertificateIssued:    a.onCertificateIssued,
			events.TypeCertificateRevoked:   a.onCertificateRevoked,
			events.TypeCertificateRetrieved: a.onCertificateRetrieved,
			events.TypeCertificateImported:  a.onCertificateImported,
			events.TypeRenewalDeclined:      a.onRenewalDeclined,
		},
	}}
}

// DeliveryFilter selects deliveries of the log; empty fields match all.
type DeliveryFilter struct {
	Recipient string
	Reason    string
	Status    string
	Limit     int
}

// Deliveries are the newest deliveries matching f, for operators (NO-4).
// Sealed codes are never part of them.
func (a *App) Deliveries(ctx context.Context, f DeliveryFilter) ([]domain.Delivery, error) {
	return store.ListDeliveries(ctx, a.Pool, store.Filter(f))
}

// PruneDeliveries is the delivery log's retention rule: it deletes at
// most limit messages sent or given up before cutoff, inside tx. Pending
// messages stay. The platform's retention timer calls it in batches.
func (a *App) PruneDeliveries(ctx context.Context, tx pgx.Tx, cutoff time.Time, limit int) (int64, error) {
	return store.PruneDeliveries(ctx, tx, cutoff, limit)
}
