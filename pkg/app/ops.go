package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/timer"

	"github.com/jackc/pgx/v5"
)

// opsListLimit bounds each service's share of an ops listing.
const opsListLimit = 500

// runtimeQueries registers the fan-out queries behind RuntimeOpsRoutes:
// each service lists and acts on its own schema.
func runtimeQueries(d *Deps) {
	d.OpsQueries.Handle("quarantine.list", func(ctx context.Context, _ json.RawMessage) (any, error) {
		list, err := bus.ListQuarantined(ctx, d.Pool, opsListLimit)
		if list == nil {
			list = []bus.Quarantined{}
		}
		return list, err
	})
	d.OpsQueries.Handle("quarantine.replay", func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p struct {
			ID    int64  `json:"id"`
			Actor string `json:"actor"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, errs.Malformed("bad replay request")
		}
		err := bus.ReplayQuarantined(ctx, d.Pool, p.ID)
		switch {
		case errors.Is(err, bus.ErrNotQuarantined):
			return nil, errs.NotFound("no such quarantined event")
		case errors.Is(err, bus.ErrReplayTooOld):
			return nil, errs.Conflict("replay-too-old", err.Error())
		case err != nil:
			return nil, err
		}
		d.Log.Info("quarantined outbox event replayed", "id", p.ID, "actor", p.Actor)
		return map[string]any{"service": d.Name, "replayed": p.ID}, recordOps(ctx, d, p.Actor, "outbox.replayed", strconv.FormatInt(p.ID, 10))
	})
	d.OpsQueries.Handle("timers.parked", func(ctx context.Context, _ json.RawMessage) (any, error) {
		list, err := timer.ListParked(ctx, d.Pool, opsListLimit)
		if list == nil {
			list = []timer.Parked{}
		}
		return list, err
	})
	d.OpsQueries.Handle("timers.retry", func(ctx context.Context, raw json.RawMessage) (any, error) {
		var p struct{ Kind, Key, Actor string }
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, errs.Malformed("bad retry request")
		}
		err := timer.RetryParked(ctx, d.Pool, p.Kind, p.Key, d.Clock.Now())
		switch {
		case errors.Is(err, timer.ErrNotParked):
			return nil, errs.NotFound("no such parked timer")
		case err != nil:
			return nil, err
		}
		d.Log.Info("parked timer retried", "kind", p.Kind, "key", p.Key, "actor", p.Actor)
		return map[string]any{"service": d.Name, "kind": p.Kind, "key": p.Key, "retried": true},
			recordOps(ctx, d, p.Actor, "timer.retried", p.Kind+"/"+p.Key)
	})
}

// recordOps writes an operator's runtime action in the service's audit log.
func recordOps(ctx context.Context, d *Deps, actor, action, subject string) error {
	return pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, d.Clock.Now(), actor, action, subject, nil)
	})
}

// RuntimeOpsRoutes mounts the operators' view of what the runtime set
// aside (admin role): outbox rows JetStream refused (EV-2) and timers
// parked after repeated failures, each with its replay or retry. Both live
// in each service's schema, so the lists ask every service (FanOut) and an
// action's path names the service — the same in the all-in-one and in
// split mode, whichever process answers.
func RuntimeOpsRoutes(r chi.Router, units ...*Unit) {
	if len(units) == 0 {
		return
	}
	d0 := units[0].Deps
	nc, js, ops, log := d0.NC, d0.JS, d0.Ops, d0.Log
	admin := r.With(ops.Require(opsauth.Admin))

	list := func(op, key string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			answers, err := FanOut(r.Context(), nc, js, op, nil)
			if err != nil {
				httpx.WriteError(w, r, log, err)
				return
			}
			out := []map[string]any{}
			var unanswered []map[string]string
			for _, a := range answers {
				if a.Error != "" {
					unanswered = append(unanswered, map[string]string{"service": a.Service, "error": a.Error})
					continue
				}
				var items []map[string]any
				_ = json.Unmarshal(a.Result, &items)
				for _, it := range items {
					it["service"] = a.Service
					out = append(out, it)
				}
			}
			body := map[string]any{key: out}
			if len(unanswered) > 0 {
				body["unanswered"] = unanswered
			}
			httpx.WriteJSON(w, http.StatusOK, body)
		}
	}
	act := func(w http.ResponseWriter, r *http.Request, op string, params map[string]any) {
		params["actor"] = opsauth.Actor(r.Context())
		answers, err := FanOut(r.Context(), nc, js, op, params, pathParam(r, "service"))
		switch {
		case err != nil:
			httpx.WriteError(w, r, log, err)
		case len(answers) == 0:
			httpx.WriteProblem(w, r, httpx.NotFound())
		case answers[0].Error != "":
			a := answers[0]
			p := httpx.NewProblem(a.Status, a.Slug, http.StatusText(a.Status), a.Error)
			if a.Slug == "" {
				p, _ = httpx.FromError(&errs.Error{Kind: kindOf(a.Status), Detail: a.Error})
			}
			httpx.WriteProblem(w, r, p)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answers[0].Result)
		}
	}

	admin.Get("/ops/v1/outbox-quarantine", list("quarantine.list", "quarantined"))
	admin.Post("/ops/v1/outbox-quarantine/{service}/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(pathParam(r, "id"), 10, 64)
		if err != nil {
			httpx.WriteProblem(w, r, httpx.NotFound())
			return
		}
		act(w, r, "quarantine.replay", map[string]any{"id": id})
	})
	admin.Get("/ops/v1/timers/parked", list("timers.parked", "parked"))
	admin.Post("/ops/v1/timers/parked/{service}/{kind}/{key}/retry", func(w http.ResponseWriter, r *http.Request) {
		act(w, r, "timers.retry", map[string]any{"kind": pathParam(r, "kind"), "key": pathParam(r, "key")})
	})
}

func kindOf(status int) errs.Kind {
	switch status {
	case http.StatusNotFound:
		return errs.KindNotFound
	case http.StatusConflict:
		return errs.KindConflict
	case http.StatusBadRequest:
		return errs.KindMalformed
	case http.StatusServiceUnavailable:
		return errs.KindUnavailable
	default:
		return errs.KindInternal
	}
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
