package app

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/timer"
)

// opsListLimit bounds each service's share of an ops listing.
const opsListLimit = 500

// RuntimeOpsRoutes mounts, for the units of this process, the operators'
// view of what the runtime set aside (admin role): outbox rows JetStream
// refused (EV-2) and timers parked after repeated failures, each with its
// replay or retry. Both live in each service's schema, so a path names
// the service.
func RuntimeOpsRoutes(r chi.Router, units ...*Unit) {
	if len(units) == 0 {
		return
	}
	ops, log := units[0].Deps.Ops, units[0].Deps.Log
	unit := func(name string) *Unit {
		for _, u := range units {
			if u.Deps.Name == name {
				return u
			}
		}
		return nil
	}
	admin := r.With(ops.Require(opsauth.Admin))

	type quarantined struct {
		Service string `json:"service"`
		bus.Quarantined
	}
	admin.Get("/ops/v1/outbox-quarantine", func(w http.ResponseWriter, r *http.Request) {
		out := []quarantined{}
		for _, u := range units {
			list, err := bus.ListQuarantined(r.Context(), u.Deps.Pool, opsListLimit)
			if err != nil {
				httpx.WriteError(w, r, log, err)
				return
			}
			for _, q := range list {
				out = append(out, quarantined{Service: u.Deps.Name, Quarantined: q})
			}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"quarantined": out})
	})
	admin.Post("/ops/v1/outbox-quarantine/{service}/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		u := unit(pathParam(r, "service"))
		id, perr := strconv.ParseInt(pathParam(r, "id"), 10, 64)
		if u == nil || perr != nil {
			httpx.WriteProblem(w, r, httpx.NotFound())
			return
		}
		err := bus.ReplayQuarantined(r.Context(), u.Deps.Pool, id)
		switch {
		case errors.Is(err, bus.ErrNotQuarantined):
			httpx.WriteProblem(w, r, httpx.NotFound())
		case errors.Is(err, bus.ErrReplayTooOld):
			httpx.WriteProblem(w, r, httpx.Conflict("replay-too-old", err.Error()))
		case err != nil:
			httpx.WriteError(w, r, log, err)
		default:
			u.Deps.Log.Info("quarantined outbox event replayed", "id", id, "actor", opsauth.Actor(r.Context()))
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"service": u.Deps.Name, "replayed": id})
		}
	})

	type parked struct {
		Service string `json:"service"`
		timer.Parked
	}
	admin.Get("/ops/v1/timers/parked", func(w http.ResponseWriter, r *http.Request) {
		out := []parked{}
		for _, u := range units {
			list, err := timer.ListParked(r.Context(), u.Deps.Pool, opsListLimit)
			if err != nil {
				httpx.WriteError(w, r, log, err)
				return
			}
			for _, p := range list {
				out = append(out, parked{Service: u.Deps.Name, Parked: p})
			}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"parked": out})
	})
	admin.Post("/ops/v1/timers/parked/{service}/{kind}/{key}/retry", func(w http.ResponseWriter, r *http.Request) {
		u := unit(pathParam(r, "service"))
		if u == nil {
			httpx.WriteProblem(w, r, httpx.NotFound())
			return
		}
		kind, key := pathParam(r, "kind"), pathParam(r, "key")
		err := timer.RetryParked(r.Context(), u.Deps.Pool, kind, key, u.Deps.Clock.Now())
		switch {
		case errors.Is(err, timer.ErrNotParked):
			httpx.WriteProblem(w, r, httpx.NotFound())
		case err != nil:
			httpx.WriteError(w, r, log, err)
		default:
			u.Deps.Log.Info("parked timer retried", "kind", kind, "key", key, "actor", opsauth.Actor(r.Context()))
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"service": u.Deps.Name, "kind": kind, "key": key, "retried": true})
		}
	})
}

// pathParam is a route parameter decoded: chi matches the escaped path
// when the request has one (a timer key may hold '/', '<', '@').
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
