// Package app is billing's use cases: the coupon import (BI-1), the
// instant coupon check intake asks for (PC-2), and the "billing-coupons"
// consumer that reserves, consumes and releases coupons (reservation.go).
// Each use case opens and owns its transaction, or runs in the one the
// consumer hands it, and emits its events in that transaction.
package app

import (
	"bytes"
	"context"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/services/billing/internal/domain"
	"github.com/certlife/platform/services/billing/internal/store"
)

// App runs billing's use cases.
type App struct {
	Pool  *pgxpool.Pool
	Clock clock.Clock
	// CancelWindow bounds when an application whose provisional event is
	// not seen yet was accepted (see WindowClosed).
	CancelWindow time.Duration
	Metrics      *Metrics
	Log          *slog.Logger
	// Issuer issues the invoices (BI-4); WebhookSecret verifies the
	// payment processor's webhooks (BI-2).
	Issuer        Issuer
	WebhookSecret string
}

// ImportResult is the outcome of a coupon import.
type ImportResult struct {
	BatchID  uuid.UUID
	Imported int
	Rejected []domain.Rejection // by line number
}

// ImportCoupons imports a coupon file (BI-1) for the operator actor. Good
// lines are imported in one transaction under a new batch ID; bad lines,
// and numbers that already exist, are listed with their line number and
// reason. A file that cannot be imported at all is a malformed or invalid
// error, and then nothing is stored.
func (a *App) ImportCoupons(ctx context.Context, actor string, file []byte) (ImportResult, error) {
	now := a.Clock.Now()
	parsed, err := domain.ParseCSV(bytes.NewReader(file), now)
	if err != nil {
		return ImportResult{}, err
	}
	batch := store.Batch{ImportedBy: actor, ImportedAt: now, Lines: parsed.Lines}
	if batch.ID, err = uuid.NewV7(); err != nil {
		return ImportResult{}, err
	}
	rejected := parsed.Rejected
	err = db.InTx(ctx, a.Pool, func(tx pgx.Tx) error {
		existing, err := store.ImportBatch(ctx, tx, batch)
		if err != nil {
			return err
		}
		for _, line := range existing {
			rejected = append(rejected, domain.Rejection{Line: line, Error: "coupon already exists"})
		}
		return store.FinishBatch(ctx, tx, batch.ID, len(parsed.Lines)-len(existing), len(rejected))
	})
	if err != nil {
		return ImportResult{}, err
	}
	sort.Slice(rejected, func(i, j int) bool { return rejected[i].Line < rejected[j].Line })
	imported := len(parsed.Lines) - (len(rejected) - len(parsed.Rejected))
	a.Metrics.Imported.Add(float64(imported))
	a.Metrics.ImportRejected.Add(float64(len(rejected)))
	a.Log.Info("coupons imported", "batch", batch.ID, "by", actor, "imported", imported, "rejected", len(rejected))
	return ImportResult{BatchID: batch.ID, Imported: imported, Rejected: rejected}, nil
}

// CheckCoupon answers whether a coupon is usable now for a product (PC-2):
// intake asks at submission so that a bad coupon is a 422, not a later
// e-mail. Used means reserved or consumed by any application.
func (a *App) CheckCoupon(ctx context.Context, req events.CouponCheckRequest) (events.CouponCheckResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := a.check(ctx, req)
	if err != nil {
		return resp, err // logged by rpc.Serve, answered as an RPC error
	}
	result := resp.Reason
	if resp.OK {
		result = "ok"
	}
	a.Metrics.Checks.WithLabelValues(result).Inc()
	return resp, nil
}

func (a *App) check(ctx context.Context, req events.CouponCheckRequest) (events.CouponCheckResponse, error) {
	number := strings.TrimSpace(req.Coupon)
	if !domain.ValidNumber(number) {
		return events.CouponCheckResponse{Reason: domain.ReasonUnknown}, nil
	}
	c, err := store.Coupon(ctx, a.Pool, number)
	if errs.Is(err, errs.KindNotFound) {
		return events.CouponCheckResponse{Reason: domain.ReasonUnknown}, nil
	}
	if err != nil {
		return events.CouponCheckResponse{}, err
	}
	if reason := c.Unusable(req.Product, a.Clock.Now()); reason != "" {
		return events.CouponCheckResponse{Reason: reason}, nil
	}
	return events.CouponCheckResponse{OK: true}, nil
}
