package bus_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// proxiedRig is a rig whose bus reaches Postgres only through a proxy
// the test can cut; the test itself reads the database directly.
type proxiedRig struct {
	*rig
	proxy  *testenv.Proxy
	direct *pgxpool.Pool
}

func newProxiedRig(t *testing.T) *proxiedRig {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.Database(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	r := newRigOn(t, proxy.PostgresURL(t, dbURL))
	direct, err := db.Open(ctx, dbURL, "bustest", nil, r.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	return &proxiedRig{rig: r, proxy: proxy, direct: direct}
}

func (r *proxiedRig) effects(t *testing.T) int {
	t.Helper()
	var n int
	if err := r.direct.QueryRow(context.Background(), `SELECT count(DISTINCT event_id) FROM effects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func publish(t *testing.T, js jetstream.JetStream, env events.Envelope) {
	t.Helper()
	raw, _ := env.Marshal()
	if _, err := js.Publish(context.Background(), events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		t.Fatal(err)
	}
}

func sampleFor(t *testing.T, app string) events.Envelope {
	t.Helper()
	env, err := events.New(events.PaymentConfirmed{ApplicationID: app, Method: "coupon", Reference: "12345678-12345678"}, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// SE-8, EV-3, EV-4: Postgres is cut off from the consumer for longer than
// its whole retry schedule (two attempts 10 ms apart). The consumer
// pauses instead of spending its attempts, probes its health, resumes by
// itself when Postgres is back, and every event is applied once: no dead
// letter, no failure counted.
func TestPostgresOutageLongerThanRetryScheduleDeadLettersNothing_SE8_EV3_EV4(t *testing.T) {
	r := newProxiedRig(t)
	ctx := context.Background()
	r.bus.ProbeInterval = 20 * time.Millisecond
	c := bus.Consumer{Name: "bustest-outage", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: recordEffect},
		MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		AckWait: 2 * time.Second, HandlerTimeout: time.Second}
	if err := r.bus.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	defer r.bus.Stop(ctx)

	r.proxy.Cut()
	const n = 20
	for i := range n {
		publish(t, r.js, sampleFor(t, "app-"+string(rune('a'+i))))
	}
	testenv.Eventually(t, 20*time.Second, "the consumer to meet the outage and pause", func() bool {
		return r.bus.Paused() && testutil.ToFloat64(r.metrics.TransientFailures.WithLabelValues(c.Name)) >= 1
	})
	// The outage outlasts the retry schedule many times over: fifty
	// failed health probes, 20 ms apart, against 30 ms of backoff.
	testenv.Eventually(t, 30*time.Second, "fifty failed health probes", func() bool {
		return testutil.ToFloat64(r.metrics.HealthProbeFailures) >= 50
	})
	if r.effects(t) != 0 {
		t.Fatal("an effect committed during the outage")
	}
	r.proxy.Restore()
	testenv.Eventually(t, 30*time.Second, "every event applied after the outage", func() bool { return r.effects(t) == n })
	if r.bus.Paused() {
		t.Fatal("the consumer did not resume")
	}
	if got := r.streamMessages(t, events.DeadLetterStream); got != 0 {
		t.Fatalf("%d dead letters after an outage, want 0", got)
	}
	if d := testutil.ToFloat64(r.metrics.DeadLettered.WithLabelValues(c.Name)); d != 0 {
		t.Fatalf("dead-lettered metric = %v", d)
	}
	var counted int
	if err := r.direct.QueryRow(ctx, `SELECT count(*) FROM consumer_failures`).Scan(&counted); err != nil || counted != 0 {
		t.Fatalf("%d failures counted for an outage (%v)", counted, err)
	}
	var rows int
	if err := r.direct.QueryRow(ctx, `SELECT count(*) FROM effects`).Scan(&rows); err != nil || rows != n {
		t.Fatalf("%d effect rows, want %d (once each)", rows, n)
	}
}

// SE-8: a handler whose own dependency is down (a real refused Postgres
// connection) while the service itself is healthy is retried past
// MaxDeliver without a dead letter, and applies once the dependency is
// back.
func TestTransientFailuresDoNotSpendMaxDeliveries_SE8(t *testing.T) {
	r := newProxiedRig(t)
	ctx := context.Background()
	r.proxy.Cut()
	var calls atomic.Int32
	h := func(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
		calls.Add(1)
		// The dependency: Postgres through the proxy, cut for now.
		if _, err := r.pool.Exec(ctx, `SELECT 1`); err != nil {
			return err
		}
		return recordEffect(ctx, tx, env)
	}
	// The bus itself uses the direct pool: its health is fine, so it
	// keeps trying instead of pausing.
	b := &bus.Bus{Service: "bustest", Pool: r.direct, NC: r.nc, JS: r.js, Log: r.log, Metrics: r.metrics}
	c := bus.Consumer{Name: "bustest-transient", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: h},
		MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}}
	if err := b.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(ctx)
	publish(t, r.js, sample(t))
	testenv.Eventually(t, 30*time.Second, "six deliveries (three times MaxDeliver)", func() bool { return calls.Load() >= 6 })
	if got := r.streamMessages(t, events.DeadLetterStream); got != 0 {
		t.Fatalf("dead-lettered during an outage: %d", got)
	}
	r.proxy.Restore()
	testenv.Eventually(t, 20*time.Second, "the effect", func() bool { return r.effects(t) == 1 })
	if got := r.streamMessages(t, events.DeadLetterStream); got != 0 {
		t.Fatalf("dead letters: %d", got)
	}
	if testutil.ToFloat64(r.metrics.TransientFailures.WithLabelValues(c.Name)) < 5 {
		t.Fatal("the outage's failures were not seen as transient")
	}
}

//go:noinline
func panickingHandler(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	if env.SubjectID == "app-panic" {
		var m map[string]int
		m["boom"]++ // a real nil-map panic
	}
	return recordEffect(ctx, tx, env)
}

// SE-9, EV-3: a panicking handler does not crash the process: the message
// is dead-lettered at once with the panic and its stack, nothing of it
// commits, and the consumer goes on with the next message.
func TestPanickingHandlerIsDeadLetteredWithStack_SE9_EV3(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := bus.Consumer{Name: "bustest-panic", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: panickingHandler}, MaxDeliver: 5}
	if err := r.bus.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	defer r.bus.Stop(ctx)
	publish(t, r.js, sampleFor(t, "app-panic"))
	testenv.Eventually(t, 10*time.Second, "a dead letter", func() bool { return r.streamMessages(t, events.DeadLetterStream) == 1 })
	dls, err := bus.ListDeadLetters(ctx, r.js, 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters %v (%v)", dls, err)
	}
	dl := dls[0]
	if !strings.Contains(dl.Error, "panic") || !strings.Contains(dl.Error, "nil map") {
		t.Fatalf("error = %q", dl.Error)
	}
	if !strings.Contains(dl.Stack, "panickingHandler") || dl.Deliveries != 1 {
		t.Fatalf("dead letter without the stack of the handler, or retried: %+v", dl)
	}
	if r.effects(t) != 0 {
		t.Fatal("the panicking attempt committed")
	}
	publish(t, r.js, sampleFor(t, "app-fine"))
	testenv.Eventually(t, 10*time.Second, "the next message handled", func() bool { return r.effects(t) == 1 })
	if p := testutil.ToFloat64(r.metrics.Panics.WithLabelValues(c.Name)); p != 1 {
		t.Fatalf("panics metric = %v", p)
	}
}

// SE-8, EV-3: a handler never outlives its deadline, which is shorter
// than the ack wait, so the server never hands the same message to a
// second handler meanwhile; overrunning it while the service is healthy
// is the handler's fault: counted, then dead-lettered.
func TestHandlerDeadlineIsShorterThanAckWaitAndOverrunIsCounted_EV3(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var running, overlap, calls atomic.Int32
	h := func(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
		calls.Add(1)
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		_, err := tx.Exec(ctx, `SELECT pg_sleep(30)`) // stuck until the deadline cancels it
		return err
	}
	c := bus.Consumer{Name: "bustest-slow", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: h},
		MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}, AckWait: time.Second, HandlerTimeout: 300 * time.Millisecond}
	if err := r.bus.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	defer r.bus.Stop(ctx)
	if err := r.bus.Start(ctx, bus.Consumer{Name: "bustest-bad", Handlers: c.Handlers, AckWait: time.Second, HandlerTimeout: time.Second}); err == nil {
		t.Fatal("a handler timeout not shorter than the ack wait was accepted")
	}
	publish(t, r.js, sample(t))
	testenv.Eventually(t, 20*time.Second, "a dead letter", func() bool { return r.streamMessages(t, events.DeadLetterStream) == 1 })
	dls, _ := bus.ListDeadLetters(ctx, r.js, 10)
	if len(dls) != 1 || !strings.Contains(dls[0].Error, "exceeded its deadline") || dls[0].Failures != 2 {
		t.Fatalf("dead letters = %+v", dls)
	}
	if calls.Load() != 2 || overlap.Load() != 0 {
		t.Fatalf("calls %d, overlapping %d", calls.Load(), overlap.Load())
	}
}

// bigEvent is an event whose payload is about size bytes.
func bigEvent(t *testing.T, app string, size int) events.Envelope {
	t.Helper()
	env, err := events.New(events.PaymentConfirmed{ApplicationID: app, Method: "coupon", Reference: strings.Repeat("x", size)}, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func emit(t *testing.T, pool *pgxpool.Pool, envs ...events.Envelope) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, env := range envs {
			if err := bus.Emit(ctx, tx, env); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func streamHas(t *testing.T, js jetstream.JetStream, id string) bool {
	t.Helper()
	for _, e := range testenv.StreamEvents(t, js, events.TypePaymentConfirmed) {
		if e.ID.String() == id {
			return true
		}
	}
	return false
}

// EV-2, EV-4: an outbox row JetStream refuses for good — one over the
// stream's message size, one over the server's max payload — is moved to
// the quarantine in the relay's transaction, and the rows behind it are
// published. Once the cause is fixed, an operator's replay publishes it;
// a row older than the replay horizon is refused.
func TestPoisonOutboxRowIsQuarantinedAndReplayable_EV2(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	stream, err := r.js.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cfg.MaxMsgSize = 4096
	if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	before, tooBig, huge, after := sampleFor(t, "app-1"), bigEvent(t, "app-2", 8000), bigEvent(t, "app-3", int(r.nc.MaxPayload())+1), sampleFor(t, "app-4")
	emit(t, r.pool, before, tooBig, huge, after)
	relay := r.relay()
	if n, err := relay.Flush(ctx); err != nil || n != 4 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	if !streamHas(t, r.js, before.ID.String()) || !streamHas(t, r.js, after.ID.String()) || r.streamMessages(t, events.Stream) != 2 {
		t.Fatal("the rows around the poison ones were not published")
	}
	list, err := bus.ListQuarantined(ctx, r.pool, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("quarantine = %+v (%v)", list, err)
	}
	byEvent := map[string]bus.Quarantined{}
	for _, q := range list {
		byEvent[q.EventID] = q
		if !q.Replayable || q.Type != events.TypePaymentConfirmed || q.Error == "" {
			t.Fatalf("quarantined row %+v", q)
		}
	}
	if q := byEvent[tooBig.ID.String()]; !strings.Contains(q.Error, "maximum") || len(q.Event) == 0 {
		t.Fatalf("too big for the stream: %+v", q)
	}
	if q := byEvent[huge.ID.String()]; !strings.Contains(q.Error, "maximum payload") || q.Event != nil || q.Bytes <= int(r.nc.MaxPayload()) {
		t.Fatalf("over the max payload: %+v", q)
	}
	var left int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("outbox still holds %d rows", left)
	}
	if testutil.ToFloat64(r.metrics.Quarantined) != 2 || testutil.ToFloat64(r.metrics.QuarantineSize) != 2 {
		t.Fatal("quarantine metrics")
	}

	// The operator raises the stream's limit and replays.
	cfg.MaxMsgSize = -1
	if _, err := r.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.ReplayQuarantined(ctx, r.pool, byEvent[tooBig.ID.String()].ID); err != nil {
		t.Fatal(err)
	}
	if err := bus.ReplayQuarantined(ctx, r.pool, byEvent[tooBig.ID.String()].ID); !errors.Is(err, bus.ErrNotQuarantined) {
		t.Fatalf("second replay: %v", err)
	}
	if _, err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !streamHas(t, r.js, tooBig.ID.String()) {
		t.Fatal("the replayed event is not on the stream")
	}
	// Replaying what is still refused quarantines it again, blocking nothing.
	if err := bus.ReplayQuarantined(ctx, r.pool, byEvent[huge.ID.String()].ID); err != nil {
		t.Fatal(err)
	}
	last := sampleFor(t, "app-5")
	emit(t, r.pool, last)
	if _, err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !streamHas(t, r.js, last.ID.String()) {
		t.Fatal("a row behind the re-quarantined one did not flow")
	}
	list, _ = bus.ListQuarantined(ctx, r.pool, 10)
	if len(list) != 1 || list[0].EventID != huge.ID.String() {
		t.Fatalf("quarantine after replays = %+v", list)
	}
	// An event older than the replay horizon might outlive the inbox rows
	// that would recognize it: refused.
	if _, err := r.pool.Exec(ctx, `UPDATE outbox_quarantine SET created_at = now() - interval '16 days'`); err != nil {
		t.Fatal(err)
	}
	if list, _ = bus.ListQuarantined(ctx, r.pool, 10); list[0].Replayable {
		t.Fatal("an old row is shown as replayable")
	}
	if err := bus.ReplayQuarantined(ctx, r.pool, list[0].ID); !errors.Is(err, bus.ErrReplayTooOld) {
		t.Fatalf("old replay: %v", err)
	}
}

// EV-2, EV-4: while NATS is unreachable the relay's publish times out;
// the row stays in the outbox (an outage is not a refusal) and is
// published once NATS is back — once, by its message ID.
func TestRelayPublishTimesOutAndRetriesWhileNATSIsDown_EV2(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	natsURL, _ := url.Parse(r.nc.ConnectedUrl())
	proxy := testenv.StartProxy(t, natsURL.Host)
	nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	relay := &bus.Relay{Pool: r.pool, JS: js, Log: r.log, Metrics: r.metrics, PublishTimeout: 300 * time.Millisecond}
	proxy.Cut()
	testenv.Eventually(t, 10*time.Second, "the client to notice", func() bool { return !nc.IsConnected() })
	env := sample(t)
	emit(t, r.pool, env)
	if _, err := relay.Flush(ctx); err == nil {
		t.Fatal("a publish to an unreachable server succeeded")
	}
	var left, quarantined int
	if err := r.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM outbox_quarantine)`).Scan(&left, &quarantined); err != nil {
		t.Fatal(err)
	}
	if left != 1 || quarantined != 0 {
		t.Fatalf("outbox %d, quarantine %d: want the row kept for a retry", left, quarantined)
	}
	proxy.Restore()
	testenv.Eventually(t, 10*time.Second, "reconnected", nc.IsConnected)
	if _, err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.streamMessages(t, events.Stream); got != 1 {
		t.Fatalf("stream holds %d messages, want 1", got)
	}
}

// The bus's metrics follow Prometheus's naming conventions (base units,
// _total counters; the service label comes from the wrapping registerer).
func TestBusMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"service": "x"}, reg))
	m.Consumed.WithLabelValues("c", "t").Inc()
	m.Duplicates.WithLabelValues("c").Inc()
	m.Redelivered.WithLabelValues("c").Inc()
	m.DeadLettered.WithLabelValues("c").Inc()
	m.Failures.WithLabelValues("c").Inc()
	m.TransientFailures.WithLabelValues("c").Inc()
	m.Panics.WithLabelValues("c").Inc()
	m.Published.WithLabelValues("t").Inc()
	m.ConsumerLag.WithLabelValues("c").Set(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// EV-3: an event so large that it no longer fits in a message with the
// dead-letter headers is still dead-lettered (headers only); operators
// see and replay it from the event stream.
func TestDeadLetterOfAnEventAtTheMaxPayload_EV3(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	env := bigEvent(t, "app-big", int(r.nc.MaxPayload())-1024)
	publish(t, r.js, env)
	var calls atomic.Int32
	h := func(context.Context, pgx.Tx, events.Envelope) error {
		calls.Add(1)
		return bus.Permanent(errors.New(strings.Repeat("a long reason. ", 100)))
	}
	if err := r.bus.Start(ctx, bus.Consumer{Name: "bustest-big", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: h}}); err != nil {
		t.Fatal(err)
	}
	defer r.bus.Stop(ctx)
	testenv.Eventually(t, 10*time.Second, "a dead letter", func() bool { return r.streamMessages(t, events.DeadLetterStream) == 1 })
	dls, err := bus.ListDeadLetters(ctx, r.js, 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters %v (%v)", dls, err)
	}
	dlStream, _ := r.js.Stream(ctx, events.DeadLetterStream)
	if info, err := dlStream.Info(ctx); err != nil || info.State.Bytes > 64<<10 {
		t.Fatalf("the dead letter carries the event itself (%v)", err)
	}
	got, err := events.Parse(dls[0].Event)
	if err != nil || got.ID != env.ID {
		t.Fatalf("the dead letter does not lead to its event: %v", err)
	}
	if err := bus.ReplayDeadLetter(ctx, r.js, dls[0].Seq); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the replay handled", func() bool { return calls.Load() == 2 })
}
