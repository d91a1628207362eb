package issuance

import (
	"context"
	"encoding/pem"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// Revocation is the outcome of a revocation request.
type Revocation struct {
	CertificateID  string    `json:"certificate_id"`
	Serial         string    `json:"serial"`
	Reason         string    `json:"reason"`
	RevokedAt      time.Time `json:"revoked_at"`
	AlreadyRevoked bool      `json:"already_revoked"`
}

// Revoke is an operator's revocation by serial (IS-6, OP-2). It is
// idempotent: revoking a revoked certificate answers with the revocation
// that stands and changes nothing.
func (s *Service) Revoke(ctx context.Context, serial, reason, actor string) (Revocation, error) {
	serial, err := ca.ParseSerialHex(serial)
	if err != nil {
		return Revocation{}, invalid("serial", err.Error())
	}
	if _, ok := profile.ReasonCode(reason); !ok {
		return Revocation{}, invalid("reason", "must be one of superseded, keyCompromise, cessationOfOperation, affiliationChanged, privilegeWithdrawn")
	}
	var out Revocation
	err = db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		c, err := store.LockBySerial(ctx, tx, serial)
		if errors.Is(err, store.ErrNotFound) {
			return absent("no certificate has this serial")
		}
		if err != nil {
			return err
		}
		at, done, err := s.revoke(ctx, tx, c, reason, actor, c.CorrelationID)
		if err != nil {
			return err
		}
		if !done {
			out = Revocation{CertificateID: c.ID.String(), Serial: c.Serial, Reason: c.RevocationReason,
				RevokedAt: *c.RevokedAt, AlreadyRevoked: true}
			return nil
		}
		out = Revocation{CertificateID: c.ID.String(), Serial: c.Serial, Reason: reason, RevokedAt: at}
		return nil
	})
	if err == nil && !out.AlreadyRevoked {
		s.Log.Info("certificate revoked by operator", "actor", actor, "serial", out.Serial, "reason", reason)
	}
	return out, err
}

// revoke revokes c inside tx unless it already is (then false): it drops
// any PKCS#12 file still waiting (no key of a revoked certificate is
// kept), emits CertificateRevoked and asks for a new CRL now (IS-7). The
// revocation time is whole seconds, as the CRL states it.
func (s *Service) revoke(ctx context.Context, tx pgx.Tx, c *store.Certificate, reason, by, correlation string) (time.Time, bool, error) {
	now := s.Clock.Now().UTC().Truncate(time.Second)
	done, err := store.Revoke(ctx, tx, c.ID, reason, now, by)
	if err != nil || !done {
		return time.Time{}, false, err
	}
	dropped, err := store.DropPKCS12(ctx, tx, c.ID)
	if err != nil {
		return time.Time{}, false, err
	}
	if dropped {
		if err := store.FailRetrieval(ctx, tx, c.ID, "revoked", false); err != nil {
			return time.Time{}, false, err
		}
		if err := timer.Cancel(ctx, tx, TimerPKCS12Purge, c.ID.String()); err != nil {
			return time.Time{}, false, err
		}
	}
	if err := audit.Record(ctx, tx, now, by, AuditRevoked, c.ApplicationID, map[string]any{
		"certificate_id": c.ID.String(), "serial": c.Serial, "reason": reason,
	}); err != nil {
		return time.Time{}, false, err
	}
	if err := s.emit(ctx, tx, events.CertificateRevoked{
		CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, Serial: c.Serial, Reason: reason,
		RevokedAt: now, Recipient: recipient(c),
	}, correlation); err != nil {
		return time.Time{}, false, err
	}
	// One timer per revocation, due at once: it fires after this
	// transaction commits, so the CRL it makes includes this entry; if a
	// CRL made meanwhile already lists it, the timer does nothing.
	if err := timer.Schedule(ctx, tx, TimerCRL, c.Issuer+":rev:"+c.ID.String(), now,
		crlTimer{Issuer: c.Issuer, CertificateID: c.ID.String()}); err != nil {
		return time.Time{}, false, err
	}
	s.Metrics.Revoked.WithLabelValues(reason).Inc()
	return now, true, nil
}

func pemCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
