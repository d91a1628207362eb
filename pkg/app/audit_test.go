package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/pkg/testenv"
)

// toy is a service whose one ops action records itself in the audit log.
type toy struct{ d *app.Deps }

func (s toy) Start(context.Context) error { return nil }
func (s toy) Routes(r chi.Router) {
	r.With(s.d.Ops.Require(opsauth.Reviewer)).Post("/ops/v1/"+s.d.Name+"/act", func(w http.ResponseWriter, r *http.Request) {
		err := pgx.BeginFunc(r.Context(), s.d.Pool, func(tx pgx.Tx) error {
			return audit.Record(r.Context(), tx, s.d.Clock.Now(), opsauth.Actor(r.Context()), "toy.acted", "thing-1", map[string]string{"why": "test"})
		})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func toyDef(name string) app.Definition {
	return app.Definition{Name: name, New: func(d *app.Deps) (app.Service, error) { return toy{d}, nil }}
}

type auditPage struct {
	Services []struct {
		Service string        `json:"service"`
		Entries []audit.Entry `json:"entries"`
		Error   string        `json:"error"`
	} `json:"services"`
}

type verifyPage struct {
	OK       bool `json:"ok"`
	Services []struct {
		Service   string `json:"service"`
		OK        bool   `json:"ok"`
		Entries   int64  `json:"entries"`
		BrokenSeq int64  `json:"broken_seq"`
		Problem   string `json:"problem"`
	} `json:"services"`
}

// OP-4, SE-5: each service keeps its own chain; every ops request is
// recorded with the token's identity (refused ones too); the audit routes
// read and verify every service's chain over NATS, and find tampering.
func TestAuditAcrossServicesOP4(t *testing.T) {
	p := testenv.Start(t, testenv.Options{}, toyDef("alpha"), toyDef("beta"))
	admin := "Bearer " + testenv.OpsToken
	if r := p.Do("POST", "/ops/v1/alpha/act", nil, "Authorization", admin); r.Status != 204 {
		t.Fatalf("act: %d %s", r.Status, r.Body)
	}
	if r := p.Do("POST", "/ops/v1/beta/act", nil, "Authorization", "Bearer wrong-token-0123456789"); r.Status != 401 {
		t.Fatalf("bad token: %d", r.Status)
	}

	var page auditPage
	r := p.Do("GET", "/ops/v1/audit", nil, "Authorization", admin)
	if r.Status != 200 {
		t.Fatalf("audit: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &page)
	if len(page.Services) != 2 || page.Services[0].Service != "alpha" || page.Services[1].Service != "beta" {
		t.Fatalf("services: %s", r.Body)
	}
	alpha, beta := page.Services[0].Entries, page.Services[1].Entries
	if len(alpha) != 2 || alpha[0].Action != "toy.acted" || alpha[1].Action != "ops.request" ||
		!strings.HasPrefix(alpha[0].Actor, "ops:") || alpha[0].Actor != alpha[1].Actor {
		t.Fatalf("alpha entries: %+v\n%s", alpha, r.Body)
	}
	if len(beta) != 1 || beta[0].Actor != "anonymous" || !strings.Contains(string(beta[0].Details), `"status":401`) {
		t.Fatalf("beta entries: %+v", beta)
	}
	r = p.Do("GET", "/ops/v1/audit?service=alpha&action=toy.&limit=1", nil, "Authorization", admin)
	r.JSON(t, &page)
	if len(page.Services) != 1 || len(page.Services[0].Entries) != 1 {
		t.Fatalf("filtered: %s", r.Body)
	}
	if r := p.Do("GET", "/ops/v1/audit?since=yesterday", nil, "Authorization", admin); r.Status != 422 {
		t.Fatalf("bad filter: %d", r.Status)
	}

	var rep verifyPage
	p.Do("GET", "/ops/v1/audit/verify", nil, "Authorization", admin).JSON(t, &rep)
	if !rep.OK || len(rep.Services) != 2 {
		t.Fatalf("verify intact: %+v", rep)
	}
	if _, err := p.Unit("alpha").Deps.Pool.Exec(context.Background(),
		`UPDATE audit_log SET details = '{"why":"forged"}' WHERE action = 'toy.acted'`); err != nil {
		t.Fatal(err)
	}
	p.Do("GET", "/ops/v1/audit/verify", nil, "Authorization", admin).JSON(t, &rep)
	if rep.OK || rep.Services[0].OK || rep.Services[0].BrokenSeq != 1 || !rep.Services[1].OK {
		t.Fatalf("verify after tampering: %+v", rep)
	}
	if r := p.Do("GET", "/ops/v1/audit", nil); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
}
