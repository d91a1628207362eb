package app_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/pkg/timer"
)

// opsTestService is the smallest service: one timer kind that panics
// until fixed.
type opsTestService struct {
	d      *app.Deps
	broken atomic.Bool
	fired  atomic.Int32
}

func (s *opsTestService) Routes(chi.Router) {}

func (s *opsTestService) Start(context.Context) error {
	s.d.Timers.Handle("send", func(ctx context.Context, tx pgx.Tx, t timer.Timer) error {
		if s.broken.Load() {
			panic("template missing")
		}
		s.fired.Add(1)
		return nil
	})
	return nil
}

func startOpsTest(t *testing.T) (*testenv.Platform, *opsTestService) {
	t.Helper()
	svc := &opsTestService{}
	svc.broken.Store(true)
	def := app.Definition{Name: "opstest", New: func(d *app.Deps) (app.Service, error) { svc.d = d; return svc, nil }}
	p := testenv.Start(t, testenv.Options{Config: func(c *app.Config) { c.TimerMaxAttempts = 2 }}, def)
	return p, svc
}

type parkedList struct {
	Parked []struct {
		Service   string `json:"service"`
		Kind      string `json:"kind"`
		Key       string `json:"key"`
		Attempts  int    `json:"attempts"`
		LastError string `json:"last_error"`
	} `json:"parked"`
}

// SE-9: operators see the timers parked after repeated failures (a
// panicking one here) and retry them, admin only.
func TestParkedTimersOpsRoutes_SE9(t *testing.T) {
	p, svc := startOpsTest(t)
	u := p.Unit("opstest")
	if r := p.Do("GET", "/ops/v1/timers/parked", nil); r.Status != 401 {
		t.Fatalf("without a token: %d", r.Status)
	}
	var list parkedList
	if r := p.Ops("GET", "/ops/v1/timers/parked", nil); r.Status != 200 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	} else if r.JSON(t, &list); list.Parked == nil || len(list.Parked) != 0 {
		t.Fatalf("empty list: %s", r.Body)
	}
	key := "<m/1@certlife.example>" // a Message-ID: '/', '<', '@' in a path segment
	err := pgx.BeginFunc(context.Background(), u.Deps.Pool, func(tx pgx.Tx) error {
		return timer.Schedule(context.Background(), tx, "send", key, p.Clock.Now(), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the panicking timer parked", func() bool {
		p.Advance(time.Hour) // past the backoff of the first failure
		r := p.Ops("GET", "/ops/v1/timers/parked", nil)
		r.JSON(t, &list)
		return len(list.Parked) == 1
	})
	got := list.Parked[0]
	if got.Service != "opstest" || got.Kind != "send" || got.Key != key || got.Attempts != 2 || !strings.Contains(got.LastError, "template missing") {
		t.Fatalf("parked: %+v", got)
	}
	if r := p.Ops("POST", "/ops/v1/timers/parked/opstest/send/nope/retry", nil); r.Status != 404 {
		t.Fatalf("unknown timer: %d", r.Status)
	}
	if r := p.Ops("POST", "/ops/v1/timers/parked/nosuch/send/x/retry", nil); r.Status != 404 {
		t.Fatalf("unknown service: %d", r.Status)
	}
	svc.broken.Store(false)
	path := "/ops/v1/timers/parked/opstest/send/" + url.PathEscape(key) + "/retry"
	if r := p.Do("POST", path, nil); r.Status != 401 {
		t.Fatalf("retry without a token: %d", r.Status)
	}
	if r := p.Ops("POST", path, nil); r.Status != 200 {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	testenv.Eventually(t, 20*time.Second, "the retried timer fired", func() bool { return svc.fired.Load() == 1 })
	p.Ops("GET", "/ops/v1/timers/parked", nil).JSON(t, &list)
	if len(list.Parked) != 0 {
		t.Fatalf("still parked: %+v", list.Parked)
	}
	// The timer metrics are exported with the service label (the counter
	// moves once the firing committed, just after the handler ran).
	testenv.Eventually(t, 10*time.Second, "the timer metrics on /metrics", func() bool {
		body := string(p.Do("GET", "/metrics", nil).Body)
		for _, name := range []string{`timers_fired_total{kind="send",service="opstest"} 1`, `timers_parked{service="opstest"}`,
			`timers_oldest_due_age_seconds{service="opstest"}`, `events_consumers_paused{service="opstest"} 0`} {
			if !strings.Contains(body, name) {
				return false
			}
		}
		return true
	})
}

type quarantineList struct {
	Quarantined []struct {
		Service    string `json:"service"`
		ID         int64  `json:"id"`
		EventID    string `json:"event_id"`
		Error      string `json:"error"`
		Replayable bool   `json:"replayable"`
		Bytes      int    `json:"bytes"`
	} `json:"quarantined"`
}

// EV-2: an event the stream refuses is quarantined by the running relay
// and shown to operators; after the cause is fixed, their replay
// publishes it; a replay beyond the horizon is a 409 problem.
func TestOutboxQuarantineOpsRoutes_EV2(t *testing.T) {
	p, _ := startOpsTest(t)
	u := p.Unit("opstest")
	ctx := context.Background()
	stream, err := p.JS.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgSize = 4096
	if _, err := p.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	big, err := events.New(events.PaymentConfirmed{ApplicationID: "app-big", Method: "coupon", Reference: strings.Repeat("r", 8000)}, p.Clock.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	small, _ := events.New(events.PaymentConfirmed{ApplicationID: "app-small", Method: "coupon"}, p.Clock.Now(), "")
	if err := pgx.BeginFunc(ctx, u.Deps.Pool, func(tx pgx.Tx) error {
		return errorsJoin(bus.Emit(ctx, tx, big), bus.Emit(ctx, tx, small))
	}); err != nil {
		t.Fatal(err)
	}
	p.WaitEvent(events.TypePaymentConfirmed, "app-small", 20*time.Second)
	var list quarantineList
	testenv.Eventually(t, 20*time.Second, "the refused event in the quarantine", func() bool {
		r := p.Ops("GET", "/ops/v1/outbox-quarantine", nil)
		r.JSON(t, &list)
		return len(list.Quarantined) == 1
	})
	q := list.Quarantined[0]
	if q.Service != "opstest" || q.EventID != big.ID.String() || !q.Replayable || q.Bytes < 8000 || !strings.Contains(q.Error, "maximum") {
		t.Fatalf("quarantined: %+v", q)
	}
	if r := p.Do("GET", "/ops/v1/outbox-quarantine", nil); r.Status != 401 {
		t.Fatalf("without a token: %d", r.Status)
	}
	cfg.MaxMsgSize = -1
	if _, err := p.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	path := "/ops/v1/outbox-quarantine/opstest/" + strconv.FormatInt(q.ID, 10) + "/replay"
	if r := p.Ops("POST", path, nil); r.Status != 200 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	p.WaitEvent(events.TypePaymentConfirmed, "app-big", 20*time.Second)
	for _, bad := range []string{path, "/ops/v1/outbox-quarantine/opstest/x/replay", "/ops/v1/outbox-quarantine/nosuch/1/replay"} {
		if r := p.Ops("POST", bad, nil); r.Status != 404 {
			t.Fatalf("%s: %d", bad, r.Status)
		}
	}
	// A row older than the replay horizon: refused, with a problem.
	if _, err := u.Deps.Pool.Exec(ctx, `INSERT INTO outbox_quarantine (id, event_id, subject, payload, created_at, error)
		VALUES (999999, gen_random_uuid(), 'x', '{}', now() - interval '16 days', 'refused')`); err != nil {
		t.Fatal(err)
	}
	r := p.Ops("POST", "/ops/v1/outbox-quarantine/opstest/999999/replay", nil)
	if r.Status != 409 || !strings.Contains(string(r.Body), "replay-too-old") || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("old replay: %d %s", r.Status, r.Body)
	}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Retention of the platform's own tables is registered for every service,
// and an inbox retention too short for the replay horizon is refused.
func TestPlatformRetentionIsRegistered(t *testing.T) {
	p, _ := startOpsTest(t)
	u := p.Unit("opstest")
	var tables []string
	for _, r := range u.Deps.Retention.Rules() {
		tables = append(tables, r.Table)
	}
	if strings.Join(tables, ",") != "consumer_failures,idempotency_keys,inbox,outbox_quarantine" {
		t.Fatalf("platform retention rules: %v", tables)
	}
	var timers int
	if err := u.Deps.Pool.QueryRow(context.Background(), `SELECT count(*) FROM timers WHERE kind = 'retention'`).Scan(&timers); err != nil || timers != 4 {
		t.Fatalf("%d retention timers (%v)", timers, err)
	}
	cfg := p.Config
	cfg.InboxRetention = 24 * time.Hour
	_, err := app.Build(context.Background(), app.Definition{Name: "opstest2", New: func(*app.Deps) (app.Service, error) { return &opsTestService{}, nil }},
		app.Shared{Config: cfg, NC: p.NC, JS: p.JS, Clock: p.Clock, Log: p.Log, Registry: app.NewRegistry()})
	if err == nil || !strings.Contains(err.Error(), "INBOX_RETENTION") {
		t.Fatalf("a short inbox retention: %v", err)
	}
}
