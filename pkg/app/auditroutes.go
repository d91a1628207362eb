package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
)

// auditOpsRequest records every ops request in the serving service's
// audit log, with the token's identity (OP-4, SE-5). The action itself,
// when it changes something, is recorded again in its own transaction.
func auditOpsRequest(pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger) opsauth.Recorder {
	return func(r *http.Request, actor string, status int) {
		if actor == "" {
			actor = "anonymous"
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return audit.Record(ctx, tx, clk.Now(), actor, "ops.request", r.URL.Path,
				map[string]any{"method": r.Method, "status": status, "query": r.URL.RawQuery})
		})
		if err != nil {
			log.Error("audit of ops request failed", "path", r.URL.Path, "err", err)
		}
	}
}

// AuditRoutes mounts the audit log of every service (OP-4):
// GET /ops/v1/audit (filters service, action, actor, subject, since,
// until; paging by after + limit) and GET /ops/v1/audit/verify.
func AuditRoutes(r chi.Router, nc *nats.Conn, js jetstream.JetStream, ops *opsauth.Tokens, log *slog.Logger) {
	r.With(ops.Require(opsauth.Admin)).Get("/ops/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		f, only, err := auditFilter(r)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		answers, err := FanOut(r.Context(), nc, js, "audit.list", f, only...)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		type svcEntries struct {
			Service string        `json:"service"`
			Entries []audit.Entry `json:"entries"`
			Next    int64         `json:"next_after,omitempty"`
			Error   string        `json:"error,omitempty"`
		}
		out := make([]svcEntries, 0, len(answers))
		for _, a := range answers {
			s := svcEntries{Service: a.Service, Error: a.Error, Entries: []audit.Entry{}}
			if a.Error == "" {
				_ = json.Unmarshal(a.Result, &s.Entries)
				if n := len(s.Entries); n > 0 && n == effectiveLimit(f.Limit) {
					s.Next = s.Entries[n-1].Seq
				}
			}
			out = append(out, s)
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"services": out})
	})
	r.With(ops.Require(opsauth.Admin)).Get("/ops/v1/audit/verify", func(w http.ResponseWriter, r *http.Request) {
		var only []string
		if s := r.URL.Query().Get("service"); s != "" {
			only = []string{s}
		}
		answers, err := FanOut(r.Context(), nc, js, "audit.verify", nil, only...)
		if err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		type svcReport struct {
			Service string `json:"service"`
			audit.Report
			Error string `json:"error,omitempty"`
		}
		ok := len(answers) > 0
		out := make([]svcReport, 0, len(answers))
		for _, a := range answers {
			s := svcReport{Service: a.Service, Error: a.Error}
			if a.Error == "" {
				_ = json.Unmarshal(a.Result, &s.Report)
			}
			ok = ok && a.Error == "" && s.OK
			out = append(out, s)
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ok": ok, "services": out})
	})
}

func effectiveLimit(n int) int {
	if n <= 0 || n > 1000 {
		return 100
	}
	return n
}

func auditFilter(r *http.Request) (audit.Filter, []string, error) {
	q := r.URL.Query()
	f := audit.Filter{Action: q.Get("action"), Actor: q.Get("actor"), Subject: q.Get("subject")}
	var bad []errs.Field
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad = append(bad, errs.Field{Name: p.name, Message: "must be an RFC 3339 date-time"})
			}
			*p.dst = t
		}
	}
	for _, p := range []struct {
		name string
		set  func(int64)
	}{{"after", func(n int64) { f.After = n }}, {"limit", func(n int64) { f.Limit = int(n) }}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || (p.name == "limit" && (n < 1 || n > 1000)) {
				bad = append(bad, errs.Field{Name: p.name, Message: "must be a whole number (limit 1–1000)"})
			}
			p.set(n)
		}
	}
	if len(bad) > 0 {
		return f, nil, errs.Invalid(bad...)
	}
	var only []string
	if s := strings.TrimSpace(q.Get("service")); s != "" {
		only = strings.Split(s, ",")
	}
	return f, only, nil
}
