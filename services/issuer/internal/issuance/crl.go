package issuance

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

type crlTimer struct {
	Issuer        string `json:"issuer"`
	CertificateID string `json:"certificate_id,omitempty"`
}

func periodicKey(issuer string) string { return issuer + ":periodic" }

// EnsureCRL runs at start: for every issuing CA it makes the first CRL
// (or a new one when the stored CRL was signed by another key) and makes
// sure the periodic regeneration timer exists.
func (s *Service) EnsureCRL(ctx context.Context) error {
	for _, iss := range s.CA.Issuers() {
		if err := s.ensureCRL(ctx, iss); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) ensureCRL(ctx context.Context, iss *ca.Issuer) error {
	return db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		latest, err := store.LatestCRL(ctx, tx, iss.Slug)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if latest != nil {
			if crl, perr := x509.ParseRevocationList(latest.DER); perr == nil && crl.CheckSignatureFrom(iss.Cert) == nil {
				s.Metrics.CRLThis.WithLabelValues(iss.Slug).Set(float64(latest.ThisUpdate.Unix()))
				s.Metrics.CRLNumber.WithLabelValues(iss.Slug).Set(float64(latest.Number))
				// The due time follows from the stored CRL, so scheduling it
				// again at every start is harmless.
				return timer.Schedule(ctx, tx, TimerCRL, periodicKey(iss.Slug), latest.ThisUpdate.Add(CRLPeriod),
					crlTimer{Issuer: iss.Slug})
			}
		}
		return s.generateCRL(ctx, tx, iss)
	})
}

// OnCRLTimer regenerates a CRL: periodically (at least every 4 days) and
// right after a revocation, unless a CRL made since already lists it.
func (s *Service) OnCRLTimer(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	var p crlTimer
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		s.Log.Error("CRL timer with a bad payload ignored", "key", t.Key)
		return nil
	}
	iss, ok := s.CA.Issuer(p.Issuer)
	if !ok {
		s.Log.Error("CRL timer for an unknown issuer ignored", "key", t.Key, "issuer", p.Issuer)
		return nil
	}
	if p.CertificateID != "" {
		id, err := uuid.Parse(p.CertificateID)
		if err != nil {
			return nil
		}
		c, err := store.Get(ctx, tx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if c != nil && c.CRLNumber != nil {
			return nil // already on a CRL
		}
	}
	return s.generateCRL(ctx, tx, iss)
}

// generateCRL signs and stores a new CRL of issuer (IS-7): a CRLNumber
// one above the last, thisUpdate = now, nextUpdate = now + 7 days, every
// revoked certificate not yet expired with its reason; and it moves the
// periodic timer to thisUpdate + 3 days.
func (s *Service) generateCRL(ctx context.Context, tx pgx.Tx, iss *ca.Issuer) error {
	issuer := iss.Slug
	number, err := store.NextCRLNumber(ctx, tx, issuer)
	if err != nil {
		return err
	}
	now := s.Clock.Now().UTC().Truncate(time.Second)
	revoked, err := store.RevokedUnexpired(ctx, tx, issuer, now)
	if err != nil {
		return err
	}
	tpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now,
		NextUpdate: now.Add(CRLValidity),
	}
	listed := make([]uuid.UUID, 0, len(revoked))
	for _, r := range revoked {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return fmt.Errorf("crl: bad stored serial %q", r.Serial)
		}
		code, _ := profile.ReasonCode(r.Reason)
		tpl.RevokedCertificateEntries = append(tpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: serial, RevocationTime: r.RevokedAt.UTC().Truncate(time.Second), ReasonCode: code,
		})
		listed = append(listed, r.ID)
	}
	der, err := iss.SignCRL(tpl)
	if err != nil {
		return err
	}
	if err := store.SaveCRL(ctx, tx, store.CRL{Issuer: issuer, Number: number, ThisUpdate: now,
		NextUpdate: tpl.NextUpdate, Entries: len(revoked), DER: der}, listed); err != nil {
		return err
	}
	if err := timer.Schedule(ctx, tx, TimerCRL, periodicKey(issuer), now.Add(CRLPeriod), crlTimer{Issuer: issuer}); err != nil {
		return err
	}
	s.Metrics.CRLThis.WithLabelValues(issuer).Set(float64(now.Unix()))
	s.Metrics.CRLNumber.WithLabelValues(issuer).Set(float64(number))
	s.Log.Info("CRL generated", "issuer", issuer, "number", number, "entries", len(revoked))
	return nil
}

// LatestCRL is the DER of a CA's newest CRL: an issuing CA's from the
// database, the root's (ARL) from the CA directory.
func (s *Service) LatestCRL(ctx context.Context, issuer string) ([]byte, time.Time, error) {
	if issuer == ca.RootName {
		der, err := s.CA.RootCRL()
		if ca.IsNotExist(err) {
			return nil, time.Time{}, absent("no root CRL has been published")
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, time.Time{}, err
		}
		return der, crl.ThisUpdate, nil
	}
	if _, ok := s.CA.Issuer(issuer); !ok {
		return nil, time.Time{}, notFound()
	}
	c, err := store.LatestCRL(ctx, s.Pool, issuer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, time.Time{}, absent("no CRL yet")
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	return c.DER, c.ThisUpdate, nil
}
