package idempotency_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/idempotency"
	"github.com/certlife/platform/pkg/testenv"
)

// fixture is a small chi router with one creating route behind the
// middleware, on a real Postgres schema with the platform migrations.
type fixture struct {
	t       *testing.T
	pool    *pgxpool.Pool
	clock   *clock.Offset
	store   *idempotency.Store
	srv     *httptest.Server
	entered chan string   // a handler started (note)
	gate    chan struct{} // "slow" handlers wait for it
	fails   atomic.Int32  // "flaky" answers 503 while > 0
	panics  atomic.Int32  // "panicky" panics while > 0
}

func newFixture(t *testing.T, edit func(*idempotency.Store)) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	ctx := context.Background()
	pool, err := db.Open(ctx, testenv.Database(t), "svc", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE effects (id serial PRIMARY KEY, note text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t, pool: pool, clock: clock.NewFrozen(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
		entered: make(chan string, 100), gate: make(chan struct{}),
	}
	f.store = &idempotency.Store{DB: pool, Clock: f.clock, Log: log, TTL: 24 * time.Hour, Lease: 5 * time.Minute, Wait: 30 * time.Second}
	if edit != nil {
		edit(f.store)
	}
	r := chi.NewRouter()
	r.Use(httpx.Recover(log))
	r.With(f.store.Middleware).Post("/things", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Note string `json:"note"`
		}
		if p := httpx.DecodeJSON(w, r, &body, 0); p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		f.entered <- body.Note
		switch {
		case body.Note == "slow":
			<-f.gate
		case body.Note == "flaky" && f.fails.Add(-1) >= 0:
			p := httpx.NewProblem(503, "unavailable", "Service unavailable", "")
			p.RetryAfter = time.Second
			httpx.WriteProblem(w, r, p)
			return
		case body.Note == "panicky" && f.panics.Add(-1) >= 0:
			panic("handler bug")
		case body.Note == "invalid":
			httpx.WriteProblem(w, r, httpx.Invalid(httpx.FieldError{Field: "note", Message: "is invalid"}))
			return
		}
		var id int
		if err := pool.QueryRow(r.Context(), `INSERT INTO effects (note) VALUES ($1) RETURNING id`, body.Note).Scan(&id); err != nil {
			httpx.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", fmt.Sprintf("/things/%d", id))
		httpx.WriteJSON(w, http.StatusCreated, map[string]any{"id": id, "note": body.Note})
	})
	f.srv = httptest.NewServer(r)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) post(body string, headers ...string) testenv.Response {
	f.t.Helper()
	return testenv.Client{T: f.t, BaseURL: f.srv.URL}.Do("POST", "/things", body, headers...)
}

func (f *fixture) effects() int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM effects`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func problemType(t *testing.T, r testenv.Response) string {
	t.Helper()
	var p httpx.Problem
	r.JSON(t, &p)
	return strings.TrimPrefix(p.Type, httpx.ProblemBase)
}

// SE-6: the same key and body return the first response (status,
// Location, body) and do nothing again; no key or another key is a new
// request.
func TestReplaySameKeySameBodySE6(t *testing.T) {
	f := newFixture(t, nil)
	first := f.post(`{"note":"a"}`, "Idempotency-Key", "k-1")
	if first.Status != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	for i := 0; i < 3; i++ {
		again := f.post(`{"note":"a"}`, "Idempotency-Key", "k-1")
		if again.Status != 201 || string(again.Body) != string(first.Body) ||
			again.Header.Get("Location") != first.Header.Get("Location") ||
			again.Header.Get("Content-Type") != "application/json" ||
			again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %d: %d %v %s (first %s)", i, again.Status, again.Header, again.Body, first.Body)
		}
	}
	if n := f.effects(); n != 1 {
		t.Fatalf("%d effects after replays", n)
	}
	if r := f.post(`{"note":"a"}`, "Idempotency-Key", "k-2"); r.Status != 201 || string(r.Body) == string(first.Body) {
		t.Fatalf("another key: %d %s", r.Status, r.Body)
	}
	if r := f.post(`{"note":"a"}`); r.Status != 201 {
		t.Fatalf("no key: %d", r.Status)
	}
	if n := f.effects(); n != 3 {
		t.Fatalf("%d effects, want 3", n)
	}
	// A stored 4xx is the answer too.
	v1 := f.post(`{"note":"invalid"}`, "Idempotency-Key", "k-3")
	v2 := f.post(`{"note":"invalid"}`, "Idempotency-Key", "k-3")
	if v1.Status != 422 || v2.Status != 422 || v2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("422 not replayed: %d %d %v", v1.Status, v2.Status, v2.Header)
	}
}

// SE-6: the same key with another body is a 422 and no effect.
func TestSameKeyOtherBodySE6(t *testing.T) {
	f := newFixture(t, nil)
	if r := f.post(`{"note":"a"}`, "Idempotency-Key", "k"); r.Status != 201 {
		t.Fatal(r.Status)
	}
	r := f.post(`{"note":"b"}`, "Idempotency-Key", "k")
	if r.Status != 422 || problemType(t, r) != "idempotency-key-reused" {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if n := f.effects(); n != 1 {
		t.Fatalf("%d effects", n)
	}
}

// SE-6: many concurrent requests with one key make one effect; every one
// of them gets the first response.
func TestConcurrentDuplicatesMakeOneEffectSE6(t *testing.T) {
	f := newFixture(t, nil)
	const n = 20
	var wg sync.WaitGroup
	resps := make([]testenv.Response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i] = f.post(`{"note":"once"}`, "Idempotency-Key", "concurrent")
		}()
	}
	close(start)
	wg.Wait()
	if got := f.effects(); got != 1 {
		t.Fatalf("%d effects from %d concurrent duplicates", got, n)
	}
	replayed := 0
	for i, r := range resps {
		if r.Status != 201 || string(r.Body) != string(resps[0].Body) {
			t.Fatalf("response %d: %d %s (first %s)", i, r.Status, r.Body, resps[0].Body)
		}
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	if replayed != n-1 {
		t.Fatalf("%d replayed, want %d", replayed, n-1)
	}
}

// SE-6: a duplicate of a request still running waits up to Wait, then
// answers 409 idempotency-in-progress with Retry-After; once the first
// finishes, a retry gets its response.
func TestDuplicateWhileInProgressSE6(t *testing.T) {
	f := newFixture(t, func(s *idempotency.Store) { s.Wait = 50 * time.Millisecond })
	done := make(chan testenv.Response)
	go func() { done <- f.post(`{"note":"slow"}`, "Idempotency-Key", "busy") }()
	if note := <-f.entered; note != "slow" {
		t.Fatal(note)
	}
	dup := f.post(`{"note":"slow"}`, "Idempotency-Key", "busy")
	if dup.Status != 409 || problemType(t, dup) != "idempotency-in-progress" || dup.Header.Get("Retry-After") == "" {
		t.Fatalf("duplicate in progress: %d %v %s", dup.Status, dup.Header, dup.Body)
	}
	// Another body under the busy key is still a mismatch, not a wait.
	if r := f.post(`{"note":"other"}`, "Idempotency-Key", "busy"); r.Status != 422 {
		t.Fatalf("other body while busy: %d", r.Status)
	}
	close(f.gate)
	first := <-done
	if first.Status != 201 {
		t.Fatalf("first: %d", first.Status)
	}
	again := f.post(`{"note":"slow"}`, "Idempotency-Key", "busy")
	if again.Status != 201 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("after: %d %s", again.Status, again.Body)
	}
	if n := f.effects(); n != 1 {
		t.Fatalf("%d effects", n)
	}
}

// SE-6, SE-8: a 5xx (an outage) and a panic are not kept, so the retry
// runs and succeeds.
func TestFailuresAreNotKeptSE6(t *testing.T) {
	f := newFixture(t, nil)
	f.fails.Store(1)
	if r := f.post(`{"note":"flaky"}`, "Idempotency-Key", "k"); r.Status != 503 {
		t.Fatalf("first: %d", r.Status)
	}
	r := f.post(`{"note":"flaky"}`, "Idempotency-Key", "k")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after 503: %d %v", r.Status, r.Header)
	}
	f.panics.Store(1)
	if r := f.post(`{"note":"panicky"}`, "Idempotency-Key", "p"); r.Status != 500 {
		t.Fatalf("panic: %d", r.Status)
	}
	if r := f.post(`{"note":"panicky"}`, "Idempotency-Key", "p"); r.Status != 201 {
		t.Fatalf("retry after panic: %d %s", r.Status, r.Body)
	}
	if n := f.effects(); n != 2 {
		t.Fatalf("%d effects", n)
	}
}

// SE-6: records expire after the TTL (the key is new again) and Prune
// deletes them.
func TestKeysExpireSE6(t *testing.T) {
	f := newFixture(t, func(s *idempotency.Store) { s.TTL = time.Hour })
	first := f.post(`{"note":"a"}`, "Idempotency-Key", "k")
	f.post(`{"note":"b"}`, "Idempotency-Key", "k2")
	f.clock.Advance(59 * time.Minute)
	if r := f.post(`{"note":"a"}`, "Idempotency-Key", "k"); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("expired early")
	}
	if n, err := f.store.Prune(context.Background(), 100); err != nil || n != 0 {
		t.Fatalf("pruned %d live records (%v)", n, err)
	}
	f.clock.Advance(time.Minute)
	r := f.post(`{"note":"a"}`, "Idempotency-Key", "k")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" || string(r.Body) == string(first.Body) {
		t.Fatalf("after the TTL: %d %v %s", r.Status, r.Header, r.Body)
	}
	f.clock.Advance(time.Hour)
	if n, err := f.store.Prune(context.Background(), 100); err != nil || n != 2 {
		t.Fatalf("pruned %d (%v), want 2", n, err)
	}
	var left int
	_ = f.pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&left)
	if left != 0 || f.effects() != 3 {
		t.Fatalf("%d records left, %d effects", left, f.effects())
	}
}

// SE-6: keys are scoped to the caller: two callers using the same key
// do not see each other's responses.
func TestKeysAreScopedToTheCallerSE6(t *testing.T) {
	f := newFixture(t, nil)
	a := f.post(`{"note":"x"}`, "Idempotency-Key", "same", "Authorization", "Bearer token-of-a")
	b := f.post(`{"note":"x"}`, "Idempotency-Key", "same", "Authorization", "Bearer token-of-b")
	anon := f.post(`{"note":"x"}`, "Idempotency-Key", "same")
	if a.Status != 201 || b.Status != 201 || anon.Status != 201 || b.Header.Get("Idempotent-Replayed") != "" ||
		string(a.Body) == string(b.Body) {
		t.Fatalf("a %d %s, b %d %s", a.Status, a.Body, b.Status, b.Body)
	}
	if r := f.post(`{"note":"x"}`, "Idempotency-Key", "same", "Authorization", "Bearer token-of-a"); string(r.Body) != string(a.Body) {
		t.Fatalf("a's replay: %s", r.Body)
	}
	if n := f.effects(); n != 3 {
		t.Fatalf("%d effects", n)
	}
}

// SE-6: a malformed key is a 400 and runs nothing.
func TestInvalidKeySE6(t *testing.T) {
	f := newFixture(t, nil)
	for _, k := range []string{"", strings.Repeat("k", 256), "ключ", "a\tb"} {
		r := f.post(`{"note":"x"}`, "Idempotency-Key", k)
		if r.Status != 400 || problemType(t, r) != "idempotency-key-invalid" {
			t.Errorf("key %q: %d %s", k, r.Status, r.Body)
		}
	}
	if r := f.post(`{"note":"x"}`, "Idempotency-Key", strings.Repeat("k", 255)); r.Status != 201 {
		t.Errorf("255 characters: %d", r.Status)
	}
	if n := f.effects(); n != 1 {
		t.Fatalf("%d effects", n)
	}
}

// SE-6: a key whose first request never finished (its process died)
// is taken over once the lease has passed; the late first request cannot
// overwrite the record of the one that took over.
func TestAbandonedKeyIsTakenOverAfterLeaseSE6(t *testing.T) {
	f := newFixture(t, func(s *idempotency.Store) { s.Lease = time.Minute; s.Wait = 50 * time.Millisecond })
	done := make(chan testenv.Response)
	go func() { done <- f.post(`{"note":"slow"}`, "Idempotency-Key", "k") }()
	<-f.entered
	f.clock.Advance(2 * time.Minute)
	second := make(chan testenv.Response)
	go func() { second <- f.post(`{"note":"slow"}`, "Idempotency-Key", "k") }()
	<-f.entered // the takeover runs the handler
	close(f.gate)
	r1, r2 := <-done, <-second
	if r1.Status != 201 || r2.Status != 201 {
		t.Fatalf("%d %d", r1.Status, r2.Status)
	}
	replay := f.post(`{"note":"slow"}`, "Idempotency-Key", "k")
	if string(replay.Body) != string(r2.Body) {
		t.Fatalf("replay %s, want the takeover's %s (first %s)", replay.Body, r2.Body, r1.Body)
	}
	var status int
	_ = f.pool.QueryRow(context.Background(), `SELECT status FROM idempotency_keys`).Scan(&status)
	if status != 201 {
		t.Fatal(status)
	}
}

// SE-6, SE-1: a response is stored sealed under a key derived from the
// Idempotency-Key, so a secret it carries (the generated PKCS#12 password
// a retrieval answers once, IS-8) is never in the database in plaintext,
// while a retry with the key still gets it back.
func TestStoredResponsesAreSealedSE6(t *testing.T) {
	f := newFixture(t, nil)
	const secret = "s3cret-generated-password-xyz"
	first := f.post(`{"note":"`+secret+`"}`, "Idempotency-Key", "k-secret")
	if first.Status != 201 || !strings.Contains(string(first.Body), secret) {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	var stored []byte
	if err := f.pool.QueryRow(context.Background(), `SELECT body FROM idempotency_keys`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), secret) || strings.Contains(string(stored), `"note"`) {
		t.Fatalf("the stored response is readable: %q", stored)
	}
	again := f.post(`{"note":"`+secret+`"}`, "Idempotency-Key", "k-secret")
	if again.Status != 201 || string(again.Body) != string(first.Body) {
		t.Fatalf("replay: %d %s", again.Status, again.Body)
	}
}
