package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/opsauth"
)

// OpsToken is the admin token of every test platform.
const OpsToken = "test-ops-token-0123456789abcdef"

// Platform is one or more real services running in the test process on a
// fresh database and an embedded NATS server, behind one HTTP test server.
type Platform struct {
	T      testing.TB
	DBURL  string
	NATS   *NATS
	NC     *nats.Conn
	JS     jetstream.JetStream
	Clock  *clock.Offset
	Config app.Config
	Units  []*app.Unit
	Server *httptest.Server
	Log    *slog.Logger

	stopped sync.Once
}

// Options adjust a test platform before it starts.
type Options struct {
	// Config edits the configuration (defaults: short timeouts, auto-approve off).
	Config func(*app.Config)
	// DBURL reuses a database (restart tests); empty = a fresh one.
	DBURL string
	// NATS reuses a server (restart tests); nil = a fresh one.
	NATS *NATS
	// Clock reuses a clock; nil = a new controllable one.
	Clock *clock.Offset
}

// Start builds and starts the given services.
func Start(t testing.TB, opts Options, defs ...app.Definition) *Platform {
	t.Helper()
	p := &Platform{T: t, DBURL: opts.DBURL, NATS: opts.NATS, Clock: opts.Clock}
	if p.DBURL == "" {
		p.DBURL = Database(t)
	}
	if p.NATS == nil {
		p.NATS = StartNATS(t)
	}
	if p.Clock == nil {
		p.Clock = clock.NewOffset()
	}
	p.NC, p.JS = p.NATS.Connect(t)
	level := slog.LevelWarn
	if os.Getenv("TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	p.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = p.DBURL
	cfg.NatsURL = p.NATS.URL()
	cfg.DataDir = t.TempDir()
	cfg.OpsTokens = OpsToken + ":admin"
	cfg.WebhookSecret = "test-webhook-secret"
	if opts.Config != nil {
		opts.Config(&cfg)
	}
	p.Config = cfg
	ops, err := opsauth.Parse(cfg.OpsTokens)
	if err != nil {
		t.Fatal(err)
	}
	reg := app.NewRegistry()
	ctx := context.Background()
	sh := app.Shared{Config: cfg, NC: p.NC, JS: p.JS, Clock: p.Clock, Log: p.Log, Registry: reg, Ops: ops}
	for _, def := range defs {
		u, err := app.Build(ctx, def, sh)
		if err != nil {
			t.Fatalf("build %s: %v", def.Name, err)
		}
		if err := u.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", def.Name, err)
		}
		p.Units = append(p.Units, u)
	}
	r := app.NewRouter(p.Log, reg, p.Units...)
	app.DeadLetterRoutes(r, p.JS, ops, p.Log)
	app.AuditRoutes(r, p.NC, p.JS, ops, p.Log)
	p.Server = httptest.NewServer(r)
	t.Cleanup(p.Stop)
	return p
}

// Stop shuts the services down gracefully (idempotent).
func (p *Platform) Stop() { p.stopped.Do(p.stop) }

func (p *Platform) stop() {
	p.Server.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, u := range p.Units {
		_ = u.Stop(ctx)
	}
	// Closing the connection also ends the units' request/reply handlers.
	p.NC.Close()
}

// Unit returns the running service of that name.
func (p *Platform) Unit(name string) *app.Unit {
	for _, u := range p.Units {
		if u.Deps.Name == name {
			return u
		}
	}
	p.T.Fatalf("no unit %s", name)
	return nil
}

// Advance moves the clock and fires every timer that became due.
func (p *Platform) Advance(d time.Duration) {
	p.T.Helper()
	if err := p.Clock.Advance(d); err != nil {
		p.T.Fatal(err)
	}
	for _, u := range p.Units {
		if err := u.Deps.Timers.FireDue(context.Background()); err != nil {
			p.T.Fatalf("%s timers: %v", u.Deps.Name, err)
		}
	}
}

// Response is a test HTTP response with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Do sends a request to the platform's test server (see Client.Do).
func (p *Platform) Do(method, path string, body any, headers ...string) Response {
	p.T.Helper()
	return Client{T: p.T, BaseURL: p.Server.URL}.Do(method, path, body, headers...)
}

// Client sends test requests to a base URL.
type Client struct {
	T       testing.TB
	BaseURL string
}

// Do sends a request. body may be nil, []byte, string or anything JSON;
// a body is sent as application/json unless headers set Content-Type.
// headers are name/value pairs.
func (c Client) Do(method, path string, body any, headers ...string) Response {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.T.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// Ops sends a request with the admin ops token.
func (p *Platform) Ops(method, path string, body any, headers ...string) Response {
	p.T.Helper()
	return p.Do(method, path, body, append([]string{"Authorization", "Bearer " + OpsToken}, headers...)...)
}

// Publish puts an event straight on the stream, as another service's
// outbox relay would.
func (p *Platform) Publish(payload events.Payload, correlation string) events.Envelope {
	p.T.Helper()
	env, err := events.New(payload, p.Clock.Now(), correlation)
	if err != nil {
		p.T.Fatal(err)
	}
	raw, _ := env.Marshal()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.JS.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		p.T.Fatal(err)
	}
	return env
}

// Events returns every event of the given type on the stream so far.
func (p *Platform) Events(eventType string) []events.Envelope {
	p.T.Helper()
	return StreamEvents(p.T, p.JS, eventType)
}

// StreamEvents reads every event of a type on the EVENTS stream so far,
// with an ordered consumer that leaves no state on the server.
func StreamEvents(t testing.TB, js jetstream.JetStream, eventType string) []events.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.Subject(eventType)},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Envelope
	for n := info.NumPending; n > 0; n-- {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		env, err := events.Parse(msg.Data())
		if err != nil {
			t.Fatalf("bad event on stream: %v", err)
		}
		out = append(out, env)
	}
	return out
}

// WaitEvent waits until an event of eventType whose subject_id is
// subjectID (any, when empty) is on the stream, and returns it.
func (p *Platform) WaitEvent(eventType, subjectID string, timeout time.Duration) events.Envelope {
	p.T.Helper()
	var found events.Envelope
	Eventually(p.T, timeout, eventType+" for "+subjectID, func() bool {
		for _, e := range p.Events(eventType) {
			if subjectID == "" || e.SubjectID == subjectID {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// PublishAgain stores an envelope on the stream a second time under a new
// Nats-Msg-Id: a redelivery that only the consumers' inboxes can catch.
func (p *Platform) PublishAgain(env events.Envelope) {
	p.T.Helper()
	raw, err := env.Marshal()
	if err != nil {
		p.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.JS.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(uuid.NewString())); err != nil {
		p.T.Fatal(err)
	}
}

// Settle waits until the durable consumer has handled every message on the
// stream and every unit's outbox has published what it caused: after it,
// an event that is not on the stream was never emitted.
func (p *Platform) Settle(consumer string, timeout time.Duration) {
	p.T.Helper()
	Eventually(p.T, timeout, consumer+" to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cons, err := p.JS.Consumer(ctx, events.Stream, consumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
		for _, u := range p.Units {
			var backlog int
			if err := u.Deps.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&backlog); err != nil || backlog != 0 {
				return false
			}
		}
		return true
	})
}
