// Package billing owns coupons and their reservations (PC-2, BI-1):
// operators import coupons, intake checks them over request/reply, and the
// "billing-coupons" consumer reserves, consumes and releases them as an
// application moves through provisional acceptance, final acceptance or
// cancellation. Invoices, payment webhooks and bank transfers come later.
// See README.md; this file is wiring only.
package billing

import (
	"context"
	"embed"
	"errors"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/services/billing/internal/api"
	billingapp "github.com/certlife/platform/services/billing/internal/app"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the billing service for the runtime.
var Definition = app.Definition{Name: "billing", Migrations: app.Migrations(migrationFiles), New: New}

// Service is billing, built from its dependencies.
type Service struct {
	d   *app.Deps
	app *billingapp.App
	api *api.API
}

// New builds the service. It refuses to start without WEBHOOK_SECRET
// (SE-10): payment webhooks are verified with it (SPEC §7.1), and a
// process that cannot verify them must not look healthy. The all-in-one
// runner generates one.
func New(d *app.Deps) (app.Service, error) {
	if d.Config.WebhookSecret == "" {
		return nil, errors.New("WEBHOOK_SECRET is not set: billing needs the secret that signs payment webhooks")
	}
	a := &billingapp.App{
		Pool: d.Pool, Clock: d.Clock, CancelWindow: d.Config.CancelWindow,
		Metrics: billingapp.NewMetrics(d.Registry), Log: d.Log,
	}
	return &Service{d: d, app: a, api: &api.API{App: a, Log: d.Log}}, nil
}

// Routes mounts the ops coupon import (role billing).
func (s *Service) Routes(r chi.Router) {
	r.With(s.d.Ops.Require(opsauth.Billing), httpx.RequireContentType("text/csv"), s.d.Idempotent).Post("/ops/v1/coupons", s.api.ImportCoupons)
}

// Start serves the coupon check and starts the coupon consumer.
func (s *Service) Start(ctx context.Context) error {
	sub, err := rpc.Serve(s.d.NC, events.RPCCouponCheck, s.d.Log, s.app.CheckCoupon)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = sub.Drain()
	}()
	return s.d.Bus.Start(ctx, s.app.Consumer())
}
