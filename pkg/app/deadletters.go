package app

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
)

// DeadLetterRoutes mounts the operators' view of dead letters and their
// replay (EV-3, OP-2). Dead letters live in NATS, shared by all services,
// so one process serves them.
func DeadLetterRoutes(r chi.Router, js jetstream.JetStream, ops *opsauth.Tokens, log *slog.Logger) {
	r.With(ops.Require(opsauth.Admin)).Get("/ops/v1/dead-letters", func(w http.ResponseWriter, r *http.Request) {
		list, err := bus.ListDeadLetters(r.Context(), js, 500)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		if list == nil {
			list = []bus.DeadLetter{}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": list})
	})
	r.With(ops.Require(opsauth.Admin)).Post("/ops/v1/dead-letters/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		seq, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 64)
		if err != nil {
			httpx.WriteProblem(w, r, httpx.NotFound())
			return
		}
		err = bus.ReplayDeadLetter(r.Context(), js, seq)
		if errors.Is(err, bus.ErrNoDeadLetter) {
			httpx.WriteProblem(w, r, httpx.NotFound())
			return
		}
		if errors.Is(err, bus.ErrOriginalGone) {
			httpx.WriteProblem(w, r, httpx.Conflict("original-gone", err.Error()))
			return
		}
		if errors.Is(err, bus.ErrReplayTooOld) {
			httpx.WriteProblem(w, r, httpx.Conflict("replay-too-old", err.Error()))
			return
		}
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		log.Info("dead letter replayed", "id", seq, "actor", opsauth.Actor(r.Context()))
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"replayed": seq})
	})
}
