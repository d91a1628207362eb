// Package validation owns reviews (PC-6, OP-1): the "validation-reviews"
// consumer opens a review for every finally accepted application, queues it
// for operators once it is paid, and operators (or REVIEW_AUTO_APPROVE)
// approve or reject it. Domain, organization and phone checks come later.
// See README.md; this file is wiring only.
package validation

import (
	"context"
	"embed"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Definition is the validation service for the runtime.
var Definition = app.Definition{Name: "validation", Migrations: app.Migrations(migrationFiles), New: New}

// Service is validation, built from its dependencies.
type Service struct {
	d     *app.Deps
	queue *validationapp.Queue
	api   *api.API
}

// New builds the service.
func New(d *app.Deps) (app.Service, error) {
	q := &validationapp.Queue{
		Pool: d.Pool, Clock: d.Clock, AutoApprove: d.Config.ReviewAutoApprove,
		Metrics: validationapp.NewMetrics(d.Registry), Log: d.Log,
	}
	return &Service{d: d, queue: q, api: &api.API{Queue: q, Log: d.Log}}, nil
}

// Routes mounts the review queue for the reviewer role.
func (s *Service) Routes(r chi.Router) {
	r.Group(func(r chi.Router) {
		r.Use(s.d.Ops.Require(opsauth.Reviewer))
		s.api.Routes(r)
	})
}

// Start starts the review consumer.
func (s *Service) Start(ctx context.Context) error {
	return s.d.Bus.Start(ctx, s.queue.Consumer())
}
