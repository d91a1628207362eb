// Package intake is the public face of the platform for front-end apps:
// applicants, applications, the cancel window, sessions and maintenance
// windows (SPEC §2).
package intake

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/rpc"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/services/intake/internal/api"
	"github.com/certlife/platform/services/intake/internal/applications"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Definition is intake for the runtime.
var Definition = app.Definition{Name: "intake", Migrations: app.Migrations(migrations), New: New}

type service struct {
	d    *app.Deps
	apps *applications.Service
	api  *api.API
}

// New builds intake. It needs the notifier's public key to seal
// certificate codes (NOTIFIER_PUBLIC_KEY).
func New(d *app.Deps) (app.Service, error) {
	if d.Config.NotifierPublicKey == "" {
		return nil, errors.New("NOTIFIER_PUBLIC_KEY is required to seal certificate codes for the notifier")
	}
	key, err := seal.ParsePublicKey(d.Config.NotifierPublicKey)
	if err != nil {
		return nil, err
	}
	apps := &applications.Service{
		Pool: d.Pool, NC: d.NC, Clock: d.Clock, Log: d.Log,
		CancelWindow: d.Config.CancelWindow, SessionTTL: 30 * time.Minute, NotifierKey: key,
	}
	return &service{d: d, apps: apps, api: &api.API{Apps: apps, Ops: d.Ops, Log: d.Log}}, nil
}

func (s *service) Routes(r chi.Router) { s.api.Routes(r) }

func (s *service) Start(ctx context.Context) error {
	s.d.Timers.Handle(applications.TimerCancelWindow, s.apps.CloseWindow)
	if _, err := rpc.Serve(s.d.NC, events.RPCSessionIntrospect, s.d.Log, s.apps.Introspect); err != nil {
		return err
	}
	return s.d.Bus.Start(ctx, bus.Consumer{Name: "intake-applications", Handlers: s.apps.Handlers()})
}
