// Package billing owns coupons and their reservations (PC-2, BI-1):
// operators import coupons, intake checks them over request/reply, and the
// "billing-coupons" consumer reserves, consumes and releases them as an
// application moves through provisional acceptance, final acceptance or
// cancellation. It also owns the price list, invoices and payments of
// server orders (BI-2, BI-3, BI-4, SV-3): the "billing-orders" consumer
// invoices each OrderPlaced; card payments arrive by the processor's
// webhook, bank transfers by statements operators upload.
// See README.md; this file is wiring only.
package billing

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/session"
	"github.com/certlife/platform/services/billing/internal/api"
	billingapp "github.com/certlife/platform/services/billing/internal/app"
	"github.com/certlife/platform/services/billing/internal/domain"
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
// runner generates one. Likewise SESSION_PUBLIC_KEY (customers read their
// invoices with intake's session tokens) and a valid
// INVOICE_REGISTRATION_NUMBER ("T" + a 13-digit corporate number whose
// check digit holds: every invoice states it); the dev runners set a dev
// number.
func New(d *app.Deps) (app.Service, error) {
	if d.Config.WebhookSecret == "" {
		return nil, errors.New("WEBHOOK_SECRET is not set: billing needs the secret that signs payment webhooks")
	}
	if d.Config.SessionPublicKey == "" {
		return nil, errors.New("SESSION_PUBLIC_KEY is required to verify customer sessions (intake's session signing key)")
	}
	sessions, err := session.ParseVerifier(d.Config.SessionPublicKey)
	if err != nil {
		return nil, err
	}
	reg := d.Config.InvoiceRegistrationNumber
	if reg == "" && d.Config.DevMode {
		reg = app.DevInvoiceRegistrationNumber
	}
	if !domain.ValidRegistrationNumber(reg) {
		return nil, fmt.Errorf("INVOICE_REGISTRATION_NUMBER %q is not a qualified invoice registration number (T and 13 digits with a valid check digit)", reg)
	}
	if d.Config.InvoicePaymentTerm <= 0 {
		return nil, errors.New("INVOICE_PAYMENT_TERM must be positive")
	}
	a := &billingapp.App{
		Pool: d.Pool, Clock: d.Clock, CancelWindow: d.Config.CancelWindow,
		Metrics: billingapp.NewMetrics(d.Registry), Log: d.Log,
		Issuer: billingapp.Issuer{Name: d.Config.InvoiceIssuerName, RegistrationNumber: reg,
			BankAccount: d.Config.InvoiceBankAccount, PaymentTerm: d.Config.InvoicePaymentTerm},
		WebhookSecret: d.Config.WebhookSecret,
	}
	return &Service{d: d, app: a, api: &api.API{App: a, Log: d.Log,
		Customers: api.Customers{Sessions: sessions, Clock: d.Clock}}}, nil
}

// Routes mounts the ops coupon import, the price list, the invoice routes
// of customers and operators, the payment webhook and bank statements.
func (s *Service) Routes(r chi.Router) {
	billing := r.With(s.d.Ops.Require(opsauth.Billing))
	billing.With(httpx.RequireContentType("text/csv"), s.d.Idempotent).Post("/ops/v1/coupons", s.api.ImportCoupons)
	billing.Put("/ops/v1/prices", s.api.PutPrices)
	billing.Get("/ops/v1/prices", s.api.GetPrices)
	billing.Get("/ops/v1/invoices", s.api.OpsInvoices)
	billing.With(httpx.RequireContentType("text/csv"), s.d.Idempotent).Post("/ops/v1/bank-statements", s.api.UploadStatement)
	billing.Get("/ops/v1/payment-exceptions", s.api.Exceptions)
	billing.With(s.d.Idempotent).Post("/ops/v1/payment-exceptions/{id}/resolution", s.api.Resolve)

	customer := r.With(s.api.Customer)
	customer.Get("/v1/invoices/{id}", s.api.Invoice(false))
	customer.Get("/v1/invoices/{id}.pdf", s.api.Invoice(true))

	// The processor authenticates by its signature (BI-2); its event ID
	// makes a retry harmless.
	r.Post("/v1/webhooks/payments", s.api.Webhook)
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
	if err := s.d.Bus.Start(ctx, s.app.Consumer()); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, s.app.OrdersConsumer())
}
