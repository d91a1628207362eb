package runner

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/httpx"
)

type clockBody struct {
	Advance *string    `json:"advance"`
	Set     *time.Time `json:"set"`
}

// clockHandler serves POST /dev/v1/clock (CLOCK_CONTROL): it moves the one
// clock of every service forward and fires, before answering, every timer
// that became due — as real time would have.
func clockHandler(c *clock.Offset, units []*app.Unit, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body clockBody
		if p := httpx.DecodeJSON(w, r, &body, 1024); p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		var err error
		field := "advance"
		switch {
		case body.Advance != nil && body.Set == nil:
			d, perr := time.ParseDuration(*body.Advance)
			if perr != nil {
				httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "advance", Message: "must be a Go duration such as \"720h\""}))
				return
			}
			err = c.Advance(d)
		case body.Set != nil && body.Advance == nil:
			field = "set"
			err = c.Set(*body.Set)
		default:
			httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "advance", Message: "give exactly one of advance or set"}))
			return
		}
		if err != nil {
			httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: field, Message: err.Error()}))
			return
		}
		for _, u := range units {
			if err := u.Deps.Timers.FireDue(r.Context()); err != nil {
				httpx.WriteError(w, r, log, err)
				return
			}
		}
		log.Info("clock moved", "now", c.Now())
		writeClock(w, c.Now())
	}
}

func writeClock(w http.ResponseWriter, now time.Time) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]time.Time{"now": now})
}
