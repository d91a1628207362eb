package app

// Coverage longer than a certificate (IS-4): intake's CoverageCSRRequested
// asks the customer for the CSR of the reissue inside their coverage,
// before the certificate's notAfter; a reminder is set 7 days before it
// and sent once, unless the reissue application (made when the CSR
// arrives, under the ID the request named) was accepted meanwhile.

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/domain"
)

// TimerCoverageCSRReminder reminds a customer of a missing reissue CSR;
// key = the reissue application's ID.
const TimerCoverageCSRReminder = "notifier.coverage_csr_reminder"

// coverageReminder is the reminder timer's payload: the request's mail.
type coverageReminder struct {
	Recipient   string `json:"recipient"`
	Language    string `json:"language"`
	SubjectID   string `json:"subject_id"`
	Correlation string `json:"correlation"`
	// CausedBy is the request's event: the reminder's cause (NO-4).
	CausedBy uuid.UUID   `json:"caused_by"`
	Data     domain.Data `json:"data"`
}

func (a *App) onCoverageCSRRequested(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	p, err := events.Decode[events.CoverageCSRRequested](env)
	if err != nil {
		return err
	}
	data := domain.Data{
		Product: events.ProductServer, Kind: events.KindReissue, ApplicationID: p.ApplicationID,
		CertificateID: p.CertificateID, Name: p.Recipient.Name, CommonName: p.CommonName, OrderID: p.OrderID,
		NotAfter: p.Deadline, CoverageEnd: p.CoverageEnd,
	}
	if p.MassRevocationID != "" {
		// The free replacement of a certificate a mass revocation took
		// (OP-5): the mail says why; no reminder (the certificate is
		// already unusable, the deadline is the coverage's end).
		data.MassRevocationID, data.Reason = p.MassRevocationID, p.RevocationReason
		return a.enqueue(ctx, tx, env, domain.Request{
			Reason: domain.ReasonRevocationReplacement, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
			Key: p.ApplicationID, SubjectID: p.CertificateID, Data: data,
		})
	}
	if err := a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonCoverageCSRRequest, Recipient: p.Recipient.Email, Language: p.Recipient.Language,
		Key: p.ApplicationID, SubjectID: p.CertificateID, Data: data,
	}); err != nil {
		return err
	}
	at := p.Deadline.Add(-domain.CoverageCSRReminderBefore)
	if !at.After(a.Clock.Now()) {
		return nil // too late for a reminder
	}
	return timer.Schedule(ctx, tx, TimerCoverageCSRReminder, p.ApplicationID, at, coverageReminder{
		Recipient: p.Recipient.Email, Language: p.Recipient.Language, SubjectID: p.CertificateID,
		Correlation: env.CorrelationID, CausedBy: env.ID, Data: data,
	})
}

// CoverageCSRReminderDue sends the reminder: its timer is cancelled when
// the reissue application is accepted, so firing means the CSR is still
// missing. Its Message-ID (recipient, reason, application) makes it once.
func (a *App) CoverageCSRReminderDue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	var r coverageReminder
	if err := json.Unmarshal(t.Payload, &r); err != nil || r.Recipient == "" {
		a.Log.Error("coverage CSR reminder with a bad payload dropped", "key", t.Key, "err", err)
		return nil
	}
	if !a.Clock.Now().Before(r.Data.NotAfter) {
		return nil // the certificate expired: nothing left to remind of
	}
	env := events.Envelope{ID: r.CausedBy, SubjectID: r.SubjectID, CorrelationID: r.Correlation}
	return a.enqueue(ctx, tx, env, domain.Request{
		Reason: domain.ReasonCoverageCSRReminder, Recipient: r.Recipient, Language: r.Language,
		Key: t.Key, SubjectID: r.SubjectID, Data: r.Data,
	})
}

// coverageCSRReceived: a server reissue application was accepted; a CSR
// reminder of it is no longer needed.
func (a *App) coverageCSRReceived(ctx context.Context, tx pgx.Tx, applicationID string) error {
	return timer.Cancel(ctx, tx, TimerCoverageCSRReminder, applicationID)
}
