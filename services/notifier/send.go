package notifier

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/notifier/internal/notice"
	"github.com/certlife/platform/services/notifier/internal/smtpsend"
	"github.com/certlife/platform/services/notifier/internal/store"
	"github.com/certlife/platform/services/notifier/internal/templates"
)

// sendDue sends one queued message (timer key = Message-ID). It runs in
// the timer's transaction with the delivery row locked, so replicas never
// send one message at the same time, and the outcome — sent and
// NotificationSent, or the failure and the next attempt — commits with
// the timer's removal.
//
// The one window left is SMTP accepting the message and the commit then
// failing: the retry sends it again with the same Message-ID, which
// receiving systems use to recognize the duplicate.
func (s *Service) sendDue(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	d, err := store.LockDelivery(ctx, tx, t.Key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != store.StatusPending {
		return nil
	}
	sender := s.sender.Load()
	if sender == nil {
		return errNoSender // the timer worker retries shortly
	}
	now := s.d.Clock.Now()
	msg, err := s.compose(d)
	if err != nil {
		// A message that cannot be rendered, or a code that cannot be
		// opened, will not get better by waiting.
		s.metrics.givenUp.WithLabelValues(d.Reason).Inc()
		s.d.Log.Error("message cannot be composed: given up", "message_id", d.MessageID, "reason", d.Reason, "err", err)
		return store.MarkFailed(ctx, tx, d.ID, err.Error(), now, false)
	}
	if err := sender.Send(ctx, msg); err != nil {
		return s.sendFailed(ctx, tx, d, err)
	}
	if err := store.MarkSent(ctx, tx, d.ID, now); err != nil {
		return err
	}
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
	s.metrics.sent.WithLabelValues(d.Reason).Inc()
	s.d.Log.Info("mail sent", "message_id", d.MessageID, "reason", d.Reason, "attempt", d.Attempts+1, "caused_by", d.CausedBy)
	return nil
}

// compose renders the message; for a code mail it opens the sealed code,
// which lives only in this message's memory from here on.
func (s *Service) compose(d store.Delivery) (smtpsend.Message, error) {
	v := templates.View{Data: d.Data, PortalURL: s.d.Config.PublicURL}
	if notice.CarriesCode(d.Reason) {
		if len(d.SealedCode) == 0 {
			return smtpsend.Message{}, errors.New("the sealed certificate code is missing")
		}
		code, err := s.key.Open(d.SealedCode)
		if err != nil {
			return smtpsend.Message{}, err
		}
		v.Code = string(code)
	}
	subject, body, err := s.tmpl.Render(d.Reason, d.Language, v)
	if err != nil {
		return smtpsend.Message{}, err
	}
	return smtpsend.Message{
		From: s.d.Config.MailFrom, To: d.Recipient, Subject: subject, Body: body,
		MessageID: d.MessageID, Date: s.d.Clock.Now(),
	}, nil
}

// sendFailed records a failed attempt: retried after the next delay of
// RetryDelays, or given up after the last one or on a permanent error.
func (s *Service) sendFailed(ctx context.Context, tx pgx.Tx, d store.Delivery, sendErr error) error {
	now := s.d.Clock.Now()
	attempt := d.Attempts + 1
	s.metrics.failures.WithLabelValues(d.Reason).Inc()
	var perm *smtpsend.PermanentError
	if errors.As(sendErr, &perm) || attempt > len(RetryDelays) {
		s.metrics.givenUp.WithLabelValues(d.Reason).Inc()
		s.d.Log.Error("mail given up", "message_id", d.MessageID, "reason", d.Reason, "attempts", attempt, "err", sendErr)
		return store.MarkFailed(ctx, tx, d.ID, sendErr.Error(), now, true)
	}
	next := now.Add(RetryDelays[attempt-1])
	s.d.Log.Warn("mail not sent, will retry", "message_id", d.MessageID, "reason", d.Reason,
		"attempt", attempt, "next_attempt_at", next, "err", sendErr)
	if err := store.MarkRetry(ctx, tx, d.ID, sendErr.Error(), next); err != nil {
		return err
	}
	// The worker deleted this timer in this transaction: schedule it anew.
	if err := timer.Schedule(ctx, tx, timerSend, d.MessageID, next, nil); err != nil {
		return fmt.Errorf("reschedule %s: %w", d.MessageID, err)
	}
	return nil
}
