package issuance

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// OnACMERevocationRequested revokes a certificate an ACME client asked to
// revoke (RFC 8555 §7.6, SPEC §4.10): intake authenticated the request
// (the ordering account or the certificate's key). Idempotent like every
// revocation (IS-6); an unknown serial or reason changes nothing.
func (s *Service) OnACMERevocationRequested(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	ev, err := events.Decode[events.ACMERevocationRequested](env)
	if err != nil {
		return err
	}
	serial, err := ca.ParseSerialHex(ev.Serial)
	if err != nil {
		s.Log.Warn("ACME revocation of a malformed serial", "serial", ev.Serial)
		return nil
	}
	if _, ok := profile.ReasonCode(ev.Reason); !ok {
		s.Log.Warn("ACME revocation with an unknown reason", "serial", ev.Serial, "reason", ev.Reason)
		return nil
	}
	c, err := store.LockBySerial(ctx, tx, serial)
	if errors.Is(err, store.ErrNotFound) {
		s.Log.Warn("ACME revocation of an unknown serial", "serial", ev.Serial)
		return nil
	}
	if err != nil {
		return err
	}
	by := ev.Requester
	if by == "" {
		by = "acme"
	}
	_, _, err = s.revoke(ctx, tx, c, ev.Reason, by, c.CorrelationID)
	return err
}
