package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
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

	"github.com/certlife/platform/pkg/bus"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

type rig struct {
	pool    *pgxpool.Pool
	nc      *nats.Conn
	js      jetstream.JetStream
	metrics *bus.Metrics
	bus     *bus.Bus
	log     *slog.Logger
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigOn(t, testenv.Database(t))
}

func newRigOn(t *testing.T, dbURL string) *rig {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	pool, err := db.Open(ctx, dbURL, "bustest", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (event_id uuid NOT NULL, note text)`); err != nil {
		t.Fatal(err)
	}
	nc, js := testenv.StartNATS(t).Connect(t)
	m := bus.NewMetrics(prometheus.NewRegistry())
	return &rig{pool: pool, nc: nc, js: js, metrics: m, log: log,
		bus: &bus.Bus{Service: "bustest", Pool: pool, NC: nc, JS: js, Log: log, Metrics: m}}
}

func (r *rig) relay() *bus.Relay {
	return &bus.Relay{Pool: r.pool, JS: r.js, Log: r.log, Metrics: r.metrics}
}

func (r *rig) effects(t *testing.T) int {
	t.Helper()
	var n int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM effects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (r *rig) streamMessages(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := r.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func recordEffect(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects (event_id) VALUES ($1)`, env.ID)
	return err
}

func sample(t *testing.T) events.Envelope {
	t.Helper()
	env, err := events.New(events.PaymentConfirmed{ApplicationID: "app-1", Method: "coupon", Reference: "12345678-12345678"}, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// EV-2: the relay crashes after JetStream acknowledged the publish and
// before its transaction committed. The next relay publishes the same
// event again; JetStream drops it by Nats-Msg-Id and the consumer's inbox
// would drop it after that — one message on the stream, one effect.
func TestRelayCrashBetweenPublishAndCommitHasNoDuplicateEffect_EV2(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	env := sample(t)
	if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return bus.Emit(ctx, tx, env) }); err != nil {
		t.Fatal(err)
	}
	crashing := r.relay()
	crashing.BeforeCommit = func() error { return errors.New("simulated crash before commit") }
	if _, err := crashing.Flush(ctx); err == nil {
		t.Fatal("the crashing relay should have failed")
	}
	var left int
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil || left != 1 {
		t.Fatalf("outbox after crash: %d rows (%v), want the event still there", left, err)
	}
	if n, err := r.relay().Flush(ctx); err != nil || n != 1 {
		t.Fatalf("second relay published %d (%v), want 1", n, err)
	}
	if got := r.streamMessages(t, events.Stream); got != 1 {
		t.Fatalf("stream holds %d messages, want 1 (the duplicate publish must be dropped)", got)
	}
	if err := r.bus.Start(ctx, bus.Consumer{Name: "bustest-effects", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: recordEffect}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the effect", func() bool { return r.effects(t) == 1 })
	time.Sleep(200 * time.Millisecond) // give a (wrong) second delivery the chance to show
	if got := r.effects(t); got != 1 {
		t.Fatalf("effects = %d, want exactly 1", got)
	}
	_ = r.bus.Stop(ctx)
}

// EV-2: the same event delivered twice (republished past the duplicate
// window, or redelivered after a lost ack) has one effect: the inbox row
// is written in the effect's transaction.
func TestRedeliveredEventHasOneEffect_EV2(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	env := sample(t)
	raw, _ := env.Marshal()
	for i := 0; i < 3; i++ {
		// Different message IDs defeat JetStream's dedup on purpose.
		if _, err := r.js.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String()+"-"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.bus.Start(ctx, bus.Consumer{Name: "bustest-effects", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: recordEffect}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "two duplicates seen", func() bool {
		return testutil.ToFloat64(r.metrics.Duplicates.WithLabelValues("bustest-effects")) == 2
	})
	if got := r.effects(t); got != 1 {
		t.Fatalf("effects = %d, want 1", got)
	}
	_ = r.bus.Stop(ctx)
}

// EV-3: a message whose handler keeps failing is retried with backoff,
// then dead-lettered with its error; nothing of the failed attempts is
// committed; replaying it after the fault is fixed applies it once.
func TestPoisonMessageIsDeadLetteredAfterRetriesAndReplayable_EV3(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	env := sample(t)
	raw, _ := env.Marshal()
	if _, err := r.js.Publish(ctx, events.Subject(env.Type), raw, jetstream.WithMsgID(env.ID.String())); err != nil {
		t.Fatal(err)
	}
	var attempts atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	handler := func(ctx context.Context, tx pgx.Tx, env events.Envelope) error {
		if err := recordEffect(ctx, tx, env); err != nil {
			return err
		}
		if broken.Load() {
			attempts.Add(1)
			return errors.New("downstream is broken")
		}
		return nil
	}
	c := bus.Consumer{Name: "bustest-poison", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: handler},
		MaxDeliver: 3, Backoff: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}}
	if err := r.bus.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "a dead letter", func() bool { return r.streamMessages(t, events.DeadLetterStream) == 1 })
	if got := attempts.Load(); got != 3 {
		t.Fatalf("attempts = %d, want 3 (MaxDeliver)", got)
	}
	if got := r.effects(t); got != 0 {
		t.Fatalf("a failed attempt committed %d effects", got)
	}
	dls, err := bus.ListDeadLetters(ctx, r.js, 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters = %v (%v)", dls, err)
	}
	dl := dls[0]
	if dl.Consumer != "bustest-poison" || !strings.Contains(dl.Error, "downstream is broken") || dl.Deliveries != 3 {
		t.Fatalf("dead letter = %+v", dl)
	}
	broken.Store(false)
	if err := bus.ReplayDeadLetter(ctx, r.js, dl.Seq); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the replayed effect", func() bool { return r.effects(t) == 1 })
	if got := r.streamMessages(t, events.DeadLetterStream); got != 0 {
		t.Fatalf("dead letter still there after replay: %d", got)
	}
	_ = r.bus.Stop(ctx)
}

// EV-1: a payload that does not parse and an event of an unknown newer
// version are dead-lettered at once, not dropped and not retried.
func TestUnparseableAndNewerVersionAreDeadLettered_EV1(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	newer := sample(t)
	newer.Version = 99
	rawNewer, _ := newer.Marshal()
	for i, raw := range [][]byte{[]byte(`{not json`), rawNewer} {
		if _, err := r.js.Publish(ctx, events.Subject(events.TypePaymentConfirmed), raw, jetstream.WithMsgID("bad-"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	h := func(ctx context.Context, tx pgx.Tx, env events.Envelope) error { calls.Add(1); return nil }
	if err := r.bus.Start(ctx, bus.Consumer{Name: "bustest-strict", Handlers: map[string]bus.Handler{events.TypePaymentConfirmed: h}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "two dead letters", func() bool { return r.streamMessages(t, events.DeadLetterStream) == 2 })
	dls, err := bus.ListDeadLetters(ctx, r.js, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Messages are handled concurrently, so the order of the two is open.
	joined := dls[0].Error + " | " + dls[1].Error
	if !strings.Contains(joined, "invalid event") || !strings.Contains(joined, "unknown event version") {
		t.Fatalf("errors: %s", joined)
	}
	if calls.Load() != 0 {
		t.Fatal("the handler saw an invalid event")
	}
	if d := testutil.ToFloat64(r.metrics.DeadLettered.WithLabelValues("bustest-strict")); d != 2 {
		t.Fatalf("dead-lettered metric = %v", d)
	}
	_ = r.bus.Stop(ctx)
}

// EV-2: the relay wakes on NOTIFY and publishes without waiting for its poll.
func TestRelayPublishesOnNotify_EV2(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relay := r.relay()
	relay.Poll = time.Hour // only NOTIFY can wake it
	go relay.Run(ctx)
	time.Sleep(300 * time.Millisecond) // let it take the lead and LISTEN
	env := sample(t)
	if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return bus.Emit(ctx, tx, env) }); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the event on the stream", func() bool { return r.streamMessages(t, events.Stream) == 1 })
}
