package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/domain"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/store"
	"github.com/certlife/platform/services/notifier/internal/templates"
)

// SendDue sends one queued message (timer key = Message-ID). It runs in
// the timer's transaction with the delivery row locked, so replicas never
// send one message at the same time, and the outcome — sent and
// NotificationSent, or the failure and the next attempt — commits with
// the timer's removal.
//
// The one window left is SMTP accepting the message and the commit then
// failing: the retry sends it again with the same Message-ID, which
// receiving systems use to recognize the duplicate.
func (a *App) SendDue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	err := store.UpdateDelivery(ctx, tx, t.Key, func(d *domain.Delivery) error {
		if d.Status != domain.StatusPending {
			return nil
		}
		now := a.Clock.Now()
		msg, err := a.compose(*d)
		if err != nil {
			// A message that cannot be rendered, or a code that cannot be
			// opened, will not get better by waiting.
			a.Metrics.givenUp.WithLabelValues(d.Reason).Inc()
			a.Log.Error("message cannot be composed: given up", "message_id", d.MessageID, "reason", d.Reason, "err", err)
			d.MarkFailed(err.Error(), now, false)
			return nil
		}
		if err := a.Sender.Send(ctx, msg); err != nil {
			return a.sendFailed(ctx, tx, d, err)
		}
		d.MarkSent(now)
		env, err := events.New(events.NotificationSent{
			MessageID: d.MessageID, Reason: d.Reason, Recipient: d.Recipient,
			CausedBy: d.CausedBy, SubjectID: d.SubjectID,
		}, now, d.CorrelationID)
		if err != nil {
			return err
		}
		if err := bus.Emit(ctx, tx, env); err != nil {
			return err
		}
		a.Metrics.sent.WithLabelValues(d.Reason).Inc()
		a.Log.Info("mail sent", "message_id", d.MessageID, "reason", d.Reason, "attempt", d.Attempts, "caused_by", d.CausedBy)
		return nil
	})
	if errs.Is(err, errs.KindNotFound) {
		return nil
	}
	return err
}

// compose renders the message; for a code mail it opens the sealed code,
// for a notice its sealed links, which live only in this message's memory
// from here on. An invoice mail carries the invoice's PDF.
func (a *App) compose(d domain.Delivery) (smtpsend.Message, error) {
	v := templates.View{Data: d.Data, PortalURL: a.PublicURL}
	if domain.CarriesCode(d.Reason) {
		if len(d.SealedCode) == 0 {
			return smtpsend.Message{}, errors.New("the sealed certificate code is missing")
		}
		code, err := a.Key.Open(d.SealedCode)
		if err != nil {
			return smtpsend.Message{}, err
		}
		v.Code = string(code)
	}
	if err := a.openLinks(d, &v); err != nil {
		return smtpsend.Message{}, err
	}
	subject, body, err := a.Templates.Render(d.Reason, d.Language, v)
	if err != nil {
		return smtpsend.Message{}, err
	}
	var files []smtpsend.Attachment
	for _, f := range domain.Attachments(d.Reason, d.Data) {
		files = append(files, smtpsend.Attachment{Name: f.Name, ContentType: f.ContentType, Data: f.Data})
	}
	pdf, err := invoicePDF(d)
	if err != nil {
		return smtpsend.Message{}, err
	}
	files = append(files, pdf...)
	return smtpsend.Message{
		From: a.MailFrom, To: d.Recipient, Subject: subject, Body: body,
		MessageID: d.MessageID, Date: a.Clock.Now(), Attachments: files,
	}, nil
}

// sendFailed records a failed attempt: retried after the next delay of
// domain.RetryDelays, or given up after the last one or on a permanent
// error.
func (a *App) sendFailed(ctx context.Context, tx pgx.Tx, d *domain.Delivery, sendErr error) error {
	now := a.Clock.Now()
	attempt := d.Attempts + 1
	a.Metrics.failures.WithLabelValues(d.Reason).Inc()
	var perm *smtpsend.PermanentError
	next, retry := domain.NextAttempt(attempt, now)
	if errors.As(sendErr, &perm) || !retry {
		a.Metrics.givenUp.WithLabelValues(d.Reason).Inc()
		a.Log.Error("mail given up", "message_id", d.MessageID, "reason", d.Reason, "attempts", attempt, "err", sendErr)
		d.MarkFailed(sendErr.Error(), now, true)
		return nil
	}
	a.Log.Warn("mail not sent, will retry", "message_id", d.MessageID, "reason", d.Reason,
		"attempt", attempt, "next_attempt_at", next, "err", sendErr)
	d.MarkRetry(sendErr.Error(), next)
	// The worker deleted this timer in this transaction: schedule it anew.
	if err := timer.Schedule(ctx, tx, TimerSend, d.MessageID, next, nil); err != nil {
		return fmt.Errorf("reschedule %s: %w", d.MessageID, err)
	}
	return nil
}
