package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/store"
)

// reminderTimer is the payload of a reminder timer.
type reminderTimer struct {
	CertificateID string `json:"certificate_id"`
	DaysBefore    int    `json:"days_before"`
}

// onCertificateIssued records the certificate and schedules its renewal
// reminders at the product's offsets before expiry (PC-10, NO-3). The
// timers are durable: one that came due while the notifier was down fires
// when it is back, and is checked for relevance then.
func (a *App) onCertificateIssued(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateIssued](env)
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	c := domain.Certificate{
		ID: p.CertificateID, ApplicantID: p.ApplicantID, Product: p.Product,
		Email: p.Recipient.Email, Language: p.Recipient.Language, NotAfter: p.NotAfter, CorrelationID: env.CorrelationID,
		CustomerID: p.CustomerID,
	}
	if len(p.DNSNames) > 0 {
		c.CommonName = p.DNSNames[0]
	}
	if err := store.UpsertIssued(ctx, tx, c, nil, now); err != nil {
		return err
	}
	// A client renewal is issued when it is retrieved (PC-15), so its
	// issuance also means the previous certificate was renewed. A server
	// certificate that replaces another (a renewal, or a new order made
	// for it, SV-5) ends the other's notices too.
	if p.PreviousCertificateID != "" && (p.Kind == events.KindRenewal || p.Product == events.ProductServer) {
		if err := store.MarkRenewed(ctx, tx, p.PreviousCertificateID, p.CertificateID, now); err != nil {
			return err
		}
	}
	if p.NotAfter.IsZero() {
		a.Log.Warn("certificate without not_after: no reminders", "certificate", p.CertificateID, "event", env.ID)
		return nil
	}
	if domain.CoverageGoesOn(p.Product, p.NotAfter, p.CoverageEnd) {
		// IS-4: the subscription outlasts this certificate, which the
		// issuer has reissued before it ends; the last certificate of the
		// coverage carries the renewal notices.
		a.Log.Info("server certificate inside a longer coverage: no renewal notices", "certificate", p.CertificateID,
			"not_after", p.NotAfter, "coverage_end", p.CoverageEnd)
		return nil
	}
	return a.scheduleReminders(ctx, tx, c)
}

// scheduleReminders sets a timer for each configured offset of c's
// schedule (NO-3). Re-scheduling an existing one is harmless: a reminder
// already sent is never sent again (store.ReminderSent).
func (a *App) scheduleReminders(ctx context.Context, tx pgx.Tx, c domain.Certificate) error {
	offsets, err := store.Offsets(ctx, tx, c.Schedule())
	if err != nil {
		return err
	}
	for _, days := range offsets {
		due := domain.ReminderDue(c.NotAfter, days)
		if err := timer.Schedule(ctx, tx, TimerReminder, domain.ReminderKey(c.ID, days), due,
			reminderTimer{CertificateID: c.ID, DaysBefore: days}); err != nil {
			return err
		}
	}
	return nil
}

// onCertificateImported records a server certificate bought elsewhere and
// schedules its notices on the imported schedule (SV-1: 90 days). When
// its first notice is due soon, the customer's password setup link is
// kept (sealed) to ride with that notice; otherwise the mail consumer
// sends it at once with a welcome mail (onCertificateImportedMail).
func (a *App) onCertificateImported(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateImported](env)
	if err != nil {
		return err
	}
	c := domain.Certificate{
		ID: p.CertificateID, CustomerID: p.CustomerID, Product: events.ProductServer, Imported: true,
		Email: p.Recipient.Email, Language: p.Recipient.Language, NotAfter: p.NotAfter, CorrelationID: env.CorrelationID,
		CommonName: p.CommonName,
	}
	var setup []byte
	if len(p.SealedSetupLink) > 0 {
		offsets, err := store.Offsets(ctx, tx, c.Schedule())
		if err != nil {
			return err
		}
		if domain.NoticeSoon(p.NotAfter, env.OccurredAt, offsets) {
			setup = p.SealedSetupLink
		}
	}
	if err := store.UpsertIssued(ctx, tx, c, setup, a.Clock.Now()); err != nil {
		return err
	}
	return a.scheduleReminders(ctx, tx, c)
}

// onRenewalDeclined: the customer declined the renewal; the certificate's
// remaining notices are not sent (SV-2, NO-3).
func (a *App) onRenewalDeclined(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.RenewalDeclined](env)
	if err != nil {
		return err
	}
	at := p.DeclinedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	return store.MarkDeclined(ctx, tx, p.CertificateID, at, a.Clock.Now())
}

func (a *App) onCertificateRevoked(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateRevoked](env)
	if err != nil {
		return err
	}
	at := p.RevokedAt
	if at.IsZero() {
		at = env.OccurredAt
	}
	return store.MarkRevoked(ctx, tx, p.CertificateID, at, a.Clock.Now())
}

// onCertificateRetrieved: once a renewal of a certificate is retrieved,
// its remaining reminders are not sent (PC-10).
func (a *App) onCertificateRetrieved(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CertificateRetrieved](env)
	if err != nil {
		return err
	}
	if p.Kind != events.KindRenewal || p.PreviousCertificateID == "" {
		return nil
	}
	return store.MarkRenewed(ctx, tx, p.PreviousCertificateID, p.CertificateID, a.Clock.Now())
}

// maxBacklogDeferrals bounds how often a reminder waits for the consumer
// (about four minutes with the timer worker's backoff), so that a busy
// stream never holds reminders back for long.
const maxBacklogDeferrals = 8

var errBacklog = errors.New("renewal reminder deferred: the reminder consumer has unhandled events")

// reminderBacklog is how many events the reminder consumer has not
// handled yet.
func (a *App) reminderBacklog(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := a.JS.Consumer(ctx, events.Stream, ConsumerReminders)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// ReminderDue fires one reminder: if it is still relevant it emits
// RenewalDue — for a client certificate intake answers with a fresh code,
// mailed as the renewal notice; for a server certificate (Product server,
// CustomerID set) intake makes the renewal order, billing its invoice,
// and InvoiceIssued with its Notice is mailed as the notice (SV-1) —
// otherwise it records why not.
func (a *App) ReminderDue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	var rt reminderTimer
	if err := json.Unmarshal(t.Payload, &rt); err != nil || rt.CertificateID == "" {
		a.Log.Error("reminder timer with a bad payload dropped", "key", t.Key, "err", err)
		return nil
	}
	if t.Attempts < maxBacklogDeferrals {
		// Events that arrived while the notifier was down (a revocation, a
		// retrieved renewal) may make this reminder irrelevant: let the
		// consumer catch up first. The returned error makes the timer
		// worker try again shortly, with backoff.
		n, err := a.reminderBacklog(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", errBacklog, err)
		}
		if n > 0 {
			return fmt.Errorf("%w (%d pending)", errBacklog, n)
		}
	}
	now := a.Clock.Now()
	c, err := store.LockCertificate(ctx, tx, rt.CertificateID)
	if err != nil && !errs.Is(err, errs.KindNotFound) {
		return err
	}
	if sent, err := store.ReminderSent(ctx, tx, rt.CertificateID, rt.DaysBefore); err != nil || sent {
		return err
	}
	c.ID = rt.CertificateID
	offsets, err := store.Offsets(ctx, tx, c.Schedule())
	if err != nil {
		return err
	}
	why := domain.DecideReminder(c, rt.DaysBefore, offsets, now)
	due := t.DueAt
	if !c.NotAfter.IsZero() {
		due = domain.ReminderDue(c.NotAfter, rt.DaysBefore)
	}
	if err := store.RecordReminder(ctx, tx, c.ID, rt.DaysBefore, due, now, why); err != nil {
		return err
	}
	if why != "" {
		a.Metrics.reminders.WithLabelValues("suppressed", why).Inc()
		a.Log.Info("renewal reminder suppressed", "certificate", c.ID, "days_before", rt.DaysBefore, "why", why)
		return nil
	}
	env, err := events.New(events.RenewalDue{
		CertificateID: c.ID, ApplicantID: c.ApplicantID, CustomerID: c.CustomerID, Product: c.Product,
		Recipient: events.Recipient{Email: c.Email, Language: c.Language},
		NotAfter:  c.NotAfter, DaysBefore: rt.DaysBefore,
	}, now, c.CorrelationID)
	if err != nil {
		return fmt.Errorf("RenewalDue %s: %w", c.ID, err)
	}
	if err := bus.Emit(ctx, tx, env); err != nil {
		return err
	}
	a.Metrics.reminders.WithLabelValues("sent", "").Inc()
	a.Log.Info("renewal reminder due", "certificate", c.ID, "days_before", rt.DaysBefore, "late_by", now.Sub(due).String())
	return nil
}
