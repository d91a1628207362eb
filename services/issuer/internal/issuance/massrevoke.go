package issuance

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/timer"
	"github.com/certlife/platform/services/issuer/internal/ca"
	"github.com/certlife/platform/services/issuer/internal/profile"
	"github.com/certlife/platform/services/issuer/internal/store"
)

// TimerMassRevocation runs a mass revocation batch by batch (key = its ID).
const TimerMassRevocation = "issuer-mass-revocation"

// Audit actions of revocations.
const (
	AuditRevoked               = "certificate.revoked"
	AuditMassRevocationStarted = "certificate.mass_revocation_requested"
	AuditMassRevoked           = "certificate.mass_revoked"
	AuditMassRevocationDone    = "certificate.mass_revocation_completed"
)

// DefaultMassBatch is how many certificates one transaction of a mass
// revocation revokes.
var DefaultMassBatch = 5000

// MaxMassSerials bounds a serial list.
const MaxMassSerials = 150000

// MassRequest is an operator's mass revocation (OP-5): a reason and one
// selector — serials, an organization (English name or identifier as on
// the certificates), or the SHA-256 of a public key's SPKI (hex).
type MassRequest struct {
	Reason          string
	Serials         []string
	Organization    string
	PublicKeySHA256 string
}

// StartMassRevocation records a mass revocation and its certificates in
// one transaction and schedules its first batch at once.
func (s *Service) StartMassRevocation(ctx context.Context, req MassRequest, actor string) (*store.MassRevocation, error) {
	if _, ok := profile.ReasonCode(req.Reason); !ok {
		return nil, invalid("reason", "must be one of superseded, keyCompromise, cessationOfOperation, affiliationChanged, privilegeWithdrawn")
	}
	var sel store.MassSelector
	selector := map[string]any{}
	n := 0
	if req.Serials != nil {
		n++
		if len(req.Serials) == 0 {
			return nil, invalid("serials", "must name at least one serial")
		}
		if len(req.Serials) > MaxMassSerials {
			return nil, invalid("serials", "must name at most 150000 serials")
		}
		seen := make(map[string]bool, len(req.Serials))
		for _, v := range req.Serials {
			serial, err := ca.ParseSerialHex(v)
			if err != nil {
				return nil, invalid("serials", "serial "+truncate(v, 64)+": "+err.Error())
			}
			if !seen[serial] {
				seen[serial] = true
				sel.Serials = append(sel.Serials, serial)
			}
		}
		selector["serials"] = len(sel.Serials)
	}
	if req.Organization != "" {
		n++
		if len(req.Organization) > 256 {
			return nil, invalid("organization", "is too long")
		}
		sel.Organization = req.Organization
		selector["organization"] = req.Organization
	}
	if req.PublicKeySHA256 != "" {
		n++
		h, err := hex.DecodeString(req.PublicKeySHA256)
		if err != nil || len(h) != 32 {
			return nil, invalid("public_key_sha256", "must be the SHA-256 of a SubjectPublicKeyInfo, 64 hex digits")
		}
		sel.PublicKeySHA256 = h
		selector["public_key_sha256"] = hex.EncodeToString(h)
	}
	if n != 1 {
		return nil, invalid("serials", "give exactly one of serials, organization, public_key_sha256")
	}
	raw, err := json.Marshal(selector)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now().UTC()
	m := &store.MassRevocation{ID: uuid.New(), Reason: req.Reason, Selector: raw, RequestedBy: actor, RequestedAt: now}
	err = db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		if err := store.CreateMassRevocation(ctx, tx, m, sel); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, now, actor, AuditMassRevocationStarted, m.ID.String(), map[string]any{
			"reason": req.Reason, "selector": json.RawMessage(raw), "total": m.Total, "unmatched": m.Unmatched,
		}); err != nil {
			return err
		}
		return timer.Schedule(ctx, tx, TimerMassRevocation, m.ID.String(), now, nil)
	})
	if err != nil {
		return nil, err
	}
	s.Log.Info("mass revocation requested", "id", m.ID, "actor", actor, "reason", req.Reason, "total", m.Total)
	return s.MassRevocation(ctx, m.ID)
}

// MassRevocation is a mass revocation's progress.
func (s *Service) MassRevocation(ctx context.Context, id uuid.UUID) (*store.MassRevocation, error) {
	m, err := store.GetMassRevocation(ctx, s.Pool, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, absent("no such mass revocation")
	}
	return m, err
}

// OnMassRevocationTimer revokes one batch of a mass revocation in the
// timer's transaction — set-based: one UPDATE for the certificates, one
// INSERT for their events, one audit entry for the batch — and schedules
// the next batch at once. After the last batch it regenerates the CRL of
// each issuer the revocation touched, once (IS-7), in the same
// transaction.
func (s *Service) OnMassRevocationTimer(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
	id, err := uuid.Parse(t.Key)
	if err != nil {
		return nil
	}
	m, err := store.LockMassRevocation(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || m.CompletedAt != nil {
		return err
	}
	batch := s.MassBatch
	if batch <= 0 {
		batch = DefaultMassBatch
	}
	now := s.Clock.Now().UTC().Truncate(time.Second)
	revoked, left, err := store.RevokeMassBatch(ctx, tx, id, batch, m.Reason, now, m.RequestedBy)
	if err != nil {
		return err
	}
	if len(revoked) > 0 {
		if err := s.massBatchEffects(ctx, tx, m, revoked, now); err != nil {
			return err
		}
	}
	if left > 0 {
		return timer.Schedule(ctx, tx, TimerMassRevocation, t.Key, now, nil)
	}
	// The last batch: one CRL per issuer touched, now.
	m, err = store.LockMassRevocation(ctx, tx, id)
	if err != nil {
		return err
	}
	var crlAt *time.Time
	for _, slug := range m.Issuers {
		iss, ok := s.CA.Issuer(slug)
		if !ok {
			continue
		}
		if err := s.generateCRL(ctx, tx, iss); err != nil {
			return err
		}
		crlAt = &now
	}
	if err := store.MassCompleted(ctx, tx, id, now, crlAt); err != nil {
		return err
	}
	if err := audit.Record(ctx, tx, now, m.RequestedBy, AuditMassRevocationDone, id.String(), map[string]any{
		"revoked": m.Revoked, "notices_queued": m.NoticesQueued, "issuers": m.Issuers,
	}); err != nil {
		return err
	}
	s.Log.Info("mass revocation completed", "id", id, "revoked", m.Revoked, "notices", m.NoticesQueued)
	return nil
}

// massBatchEffects: the events (each subscriber's one notice rides on the
// first of their certificates), the cancelled PKCS#12 purges, the audit
// entry and the counts of one batch.
func (s *Service) massBatchEffects(ctx context.Context, tx pgx.Tx, m *store.MassRevocation, revoked []store.MassRevoked, now time.Time) error {
	rows := make([]store.OutboxRow, 0, len(revoked))
	serials := make([]string, 0, len(revoked))
	var purges []string
	issuers := map[string]bool{}
	notices := 0
	occurred := s.Clock.Now()
	for _, c := range revoked {
		ev := events.CertificateRevoked{CertificateID: c.ID.String(), ApplicationID: c.ApplicationID, Serial: c.Serial,
			Reason: m.Reason, RevokedAt: now, MassRevocationID: m.ID.String()}
		if c.Noticed {
			ev.Recipient = events.Recipient{Email: c.Email, Language: c.Language, Name: c.RecipientName}
			ev.CertificatesTotal = c.ListedTotal
			for _, l := range c.Listed {
				subject := l.Email // a client certificate is the subscriber's address
				if l.Product == events.ProductServer {
					subject = l.NameEn // a server certificate's common name
				}
				ev.Certificates = append(ev.Certificates, events.RevokedCertificate{Serial: l.Serial, Product: l.Product, Subject: subject})
			}
			notices++
		}
		env, err := events.New(ev, occurred, c.CorrelationID)
		if err != nil {
			return err
		}
		raw, err := env.Marshal()
		if err != nil {
			return err
		}
		rows = append(rows, store.OutboxRow{EventID: env.ID, Subject: events.Subject(env.Type), Payload: raw})
		serials = append(serials, c.Serial)
		if c.HadPKCS12 {
			purges = append(purges, c.ID.String())
		}
		issuers[c.Issuer] = true
	}
	if err := store.EmitMany(ctx, tx, rows); err != nil {
		return err
	}
	if err := store.CancelTimers(ctx, tx, TimerPKCS12Purge, purges); err != nil {
		return err
	}
	list := make([]string, 0, len(issuers))
	for k := range issuers {
		list = append(list, k)
	}
	if err := audit.Record(ctx, tx, now, m.RequestedBy, AuditMassRevoked, m.ID.String(), map[string]any{
		"reason": m.Reason, "count": len(revoked), "serials": serials,
	}); err != nil {
		return err
	}
	s.Metrics.Revoked.WithLabelValues(m.Reason).Add(float64(len(revoked)))
	return store.MassProgress(ctx, tx, m.ID, len(revoked), notices, list)
}

// BackfillSPKI fills the SPKI hash of certificates issued before it was
// recorded (OP-5), in batches, at start.
func (s *Service) BackfillSPKI(ctx context.Context) error {
	for {
		n := 0
		err := db.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
			var err error
			n, err = store.BackfillSPKI(ctx, tx, 1000)
			return err
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
