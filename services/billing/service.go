// Package billing owns coupons and their reservations (PC-2, BI-1):
// operators import coupons, intake checks them over request/reply, and the
// "billing-coupons" consumer reserves, consumes and releases them as an
// application moves through provisional acceptance, final acceptance or
// cancellation. Invoices, payment webhooks and bank transfers come later.
package billing

import (
	"context"
	"embed"
	"errors"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/services/billing/internal/api"
	"github.com/certlife/platform/services/billing/internal/coupon"
	"github.com/certlife/platform/services/billing/internal/metrics"
	"github.com/certlife/platform/services/billing/internal/reservation"
	"github.com/certlife/platform/services/billing/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the billing service for the runtime.
var Definition = app.Definition{Name: "billing", Migrations: app.Migrations(migrationFiles), New: New}

// Service is billing, built from its dependencies.
type Service struct {
	d        *app.Deps
	api      *api.API
	handlers *reservation.Handlers
	metrics  *metrics.Metrics
}

// New builds the service.
func New(d *app.Deps) (app.Service, error) {
	m := metrics.New(d.Registry)
	return &Service{
		d:        d,
		metrics:  m,
		api:      &api.API{Pool: d.Pool, Clock: d.Clock, Log: d.Log, Metrics: m},
		handlers: &reservation.Handlers{Clock: d.Clock, CancelWindow: d.Config.CancelWindow, Metrics: m, Log: d.Log},
	}, nil
}

// Routes mounts the ops coupon import (role billing).
func (s *Service) Routes(r chi.Router) {
	r.With(s.d.Ops.Require(opsauth.Billing), httpx.RequireContentType("text/csv"), s.d.Idempotent).Post("/ops/v1/coupons", s.api.ImportCoupons)
}

// Start serves the coupon check and starts the coupon consumer.
func (s *Service) Start(ctx context.Context) error {
	sub, err := rpc.Serve(s.d.NC, events.RPCCouponCheck, s.d.Log, s.CheckCoupon)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = sub.Drain()
	}()
	return s.d.Bus.Start(ctx, s.handlers.Consumer())
}

// CheckCoupon answers whether a coupon is usable now for a product (PC-2):
// intake asks at submission so that a bad coupon is a 422, not a later
// e-mail. Used means reserved or consumed by any application.
func (s *Service) CheckCoupon(ctx context.Context, req events.CouponCheckRequest) (events.CouponCheckResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.check(ctx, req)
	if err != nil {
		return resp, err // logged by rpc.Serve, answered as an RPC error
	}
	result := resp.Reason
	if resp.OK {
		result = "ok"
	}
	s.metrics.Checks.WithLabelValues(result).Inc()
	return resp, nil
}

func (s *Service) check(ctx context.Context, req events.CouponCheckRequest) (events.CouponCheckResponse, error) {
	number := strings.TrimSpace(req.Coupon)
	if !coupon.ValidNumber(number) {
		return events.CouponCheckResponse{Reason: coupon.ReasonUnknown}, nil
	}
	c, err := store.Coupon(ctx, s.d.Pool, number)
	if errors.Is(err, store.ErrNotFound) {
		return events.CouponCheckResponse{Reason: coupon.ReasonUnknown}, nil
	}
	if err != nil {
		return events.CouponCheckResponse{}, err
	}
	if reason := c.Unusable(req.Product, s.d.Clock.Now()); reason != "" {
		return events.CouponCheckResponse{Reason: reason}, nil
	}
	return events.CouponCheckResponse{OK: true}, nil
}
