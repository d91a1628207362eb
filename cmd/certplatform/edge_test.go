package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/testenv"
)

// The HTTP edge of the all-in-one, tried from outside (SE-4, SE-6, SE-8,
// SE-9): what a client sends wrong is a 4xx problem, never a 500.

func problemType(t *testing.T, r testenv.Response) string {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%d %s: not a problem: %s", r.Status, ct, r.Body)
	}
	var p httpx.Problem
	r.JSON(t, &p)
	return strings.TrimPrefix(p.Type, httpx.ProblemBase)
}

// SE-9: content types are matched exactly, for JSON and for CSV.
func TestContentTypesMatchedExactly_SE9(t *testing.T) {
	e := startE2E(t, nil, nil)
	body := application("12345678-87654321", "ct@example.jp")
	for _, ct := range []string{"application/jsonp", "application/json-seq", "text/json",
		"application/json; charset=latin1", "application/x-www-form-urlencoded", "application/json5"} {
		r := e.do("POST", "/v1/applications", body, "Content-Type", ct)
		if r.Status != 415 || problemType(t, r) != "unsupported-media-type" {
			t.Errorf("applications with %q: %d %s", ct, r.Status, r.Body)
		}
	}
	for _, ct := range []string{"text/csv; charset=latin1", "text/csvx", "application/json", "text/plain"} {
		r := e.ops("POST", "/ops/v1/coupons", "number,product,expires_at\n", "Content-Type", ct)
		if r.Status != 415 || problemType(t, r) != "unsupported-media-type" {
			t.Errorf("coupons with %q: %d %s", ct, r.Status, r.Body)
		}
	}
	// The exact types, charset=utf-8 included, pass.
	csv := "number,product,expires_at\n11112222-33334444,client,2030-12-31\n"
	if r := e.ops("POST", "/ops/v1/coupons", csv, "Content-Type", "text/csv; charset=utf-8"); r.Status != 200 {
		t.Fatalf("text/csv; charset=utf-8: %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/v1/applications", application("11112222-33334444", "ct@example.jp"),
		"Content-Type", "application/json; charset=utf-8"); r.Status != 202 {
		t.Fatalf("application/json; charset=utf-8: %d %s", r.Status, r.Body)
	}
}

// SE-4: NUL bytes and invalid UTF-8 anywhere — JSON strings, the path,
// the query, header values, Basic credentials — answer a 4xx problem.
func TestNULAndInvalidUTF8Are4xx_SE4(t *testing.T) {
	e := startE2E(t, nil, nil)
	coupon := e.importCoupons(1)[0]
	app := e.submit(coupon, "nul@example.jp")
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	cases := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
	}{
		{"NUL in the session e-mail", "POST", "/v1/sessions",
			`{"email":"nul@example.jp\u0000","password":"an application password"}`, nil, 422},
		{"NUL in the session password", "POST", "/v1/sessions",
			`{"email":"nul@example.jp","password":"\u0000"}`, nil, 422},
		{"invalid UTF-8 in the session body", "POST", "/v1/sessions",
			"{\"email\":\"nul@example.jp\",\"password\":\"\xff\xfe\"}", nil, 400},
		{"unpaired surrogate in an application", "POST", "/v1/applications",
			`{"product":"client","coupon":"\ud800"}`, nil, 400},
		{"NUL in an application field", "POST", "/v1/applications",
			`{"product":"client","coupon":"x","applicant":{"email":"a\u0000@example.jp"}}`, nil, 422},
		{"NUL in Basic user", "GET", "/v1/applications/" + app.ID, nil,
			[]string{"Authorization", basic("nul@example.jp\x00", "an application password")}, 400},
		{"NUL in Basic password", "GET", "/v1/applications/" + app.ID, nil,
			[]string{"Authorization", basic("nul@example.jp", "an application\x00password")}, 400},
		{"invalid UTF-8 in Basic", "POST", "/v1/applications/" + app.ID + "/cancellation", nil,
			[]string{"Authorization", basic("nul@example.jp\xff", "x")}, 400},
		{"NUL in the path", "GET", "/v1/applications/%00", nil, nil, 400},
		{"invalid UTF-8 in the path", "GET", "/v1/applications/%ff", nil, nil, 400},
		{"NUL in the query", "GET", "/v1/certificates?eligible_for=%00", nil,
			[]string{"Authorization", "Bearer x"}, 400},
		{"invalid UTF-8 in the query", "GET", "/ops/v1/reviews?status=%e3%81", nil,
			[]string{"Authorization", "Bearer " + opsToken}, 400},
		{"invalid UTF-8 in a header", "GET", "/v1/applications/" + app.ID, nil,
			[]string{"Authorization", "Bearer caf\xe9"}, 400},
	}
	for _, c := range cases {
		r := e.do(c.method, c.path, c.body, c.headers...)
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
			continue
		}
		if typ := problemType(t, r); typ != "malformed-request" && typ != "validation" {
			t.Errorf("%s: problem %s", c.name, typ)
		}
	}
	// The application is untouched and its owner still signs in with Basic.
	if v := e.view(app.ID, "nul@example.jp"); v.Status != "provisional" {
		t.Fatalf("after the bad requests: %+v", v)
	}
}

// SE-9: /metrics answers GET and HEAD only.
func TestMetricsAnswersGETOnly_SE9(t *testing.T) {
	e := startE2E(t, nil, nil)
	for _, m := range []string{"GET", "HEAD"} {
		if r := e.do(m, "/metrics", nil); r.Status != 200 {
			t.Errorf("%s /metrics: %d", m, r.Status)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		r := e.do(m, "/metrics", nil)
		if r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" || problemType(t, r) != "method-not-allowed" {
			t.Errorf("%s /metrics: %d %v %s", m, r.Status, r.Header, r.Body)
		}
	}
}

// SE-4, CLOCK_CONTROL: the dev clock refuses a step that would overflow
// (it used to wrap back to 1734) and takes only application/json.
func TestDevClockRefusesOverflowAndOtherTypes_SE4_SE9(t *testing.T) {
	e := startE2E(t, nil, nil)
	e.advance("720h")
	before := e.p.Clock.Now()
	for _, body := range []string{`{"advance":"2562047h"}`, `{"set":"9999-12-31T00:00:00Z"}`, `{"advance":"-1ns"}`} {
		r := e.do("POST", "/dev/v1/clock", body)
		if r.Status != 422 || problemType(t, r) != "validation" {
			t.Errorf("%s: %d %s", body, r.Status, r.Body)
		}
	}
	if now := e.p.Clock.Now(); now.Before(before) || now.Sub(before) > time.Hour {
		t.Fatalf("the clock moved from %v to %v", before, now)
	}
	// curl -d sends application/x-www-form-urlencoded: 415, as for any route.
	for _, ct := range []string{"application/x-www-form-urlencoded", "application/jsonp", "text/plain"} {
		if r := e.do("POST", "/dev/v1/clock", `{"advance":"1h"}`, "Content-Type", ct); r.Status != 415 {
			t.Errorf("%s: %d", ct, r.Status)
		}
	}
	if r := e.do("POST", "/dev/v1/clock", `{"advance":"1h"}`, "Content-Type", "application/json"); r.Status != 200 {
		t.Fatalf("the README's command: %d %s", r.Status, r.Body)
	}
}

// SE-9: the all-in-one's server cuts a stalled body (HTTP_READ_TIMEOUT,
// shortened here) and answers 408.
func TestAllInOneCutsStalledBody_SE9(t *testing.T) {
	e := startE2E(t, func(c *app.Config) {
		c.HTTPReadHeaderTimeout = 300 * time.Millisecond
		c.HTTPReadTimeout = 500 * time.Millisecond
	}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte("POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: 500\r\n\r\n{\"email\":\"stall"))
	if err != nil {
		t.Fatal(err)
	}
	// The deadline is a safety net far above the server's timeout: the
	// server, not this client, must end the connection.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the stalled connection is still open (read %q)", got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Fatalf("answer to a stalled body: %q (%v)", got, err)
	}
}

// pgProxy is a TCP proxy in front of Postgres that a test can break in
// two ways: Cut closes every connection and new ones at once (the server
// went down); Hang stops forwarding without closing anything (the server
// or the network stopped answering). Restore lets bytes through again.
type pgProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	down   bool
	hung   bool
	conns  map[net.Conn]struct{}
}

func startPGProxy(t *testing.T, dbURL string) (*pgProxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *pgProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

// open waits out a hang; it reports false when the proxy is down.
func (p *pgProxy) open() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.hung && !p.down {
		p.cond.Wait()
	}
	return !p.down
}

func (p *pgProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		if p.down {
			c.Close()
		}
		p.conns[c] = struct{}{}
	}
}

func (p *pgProxy) pipe(c net.Conn) {
	p.track(c)
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	if !p.open() {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(up)
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { p.copy(up, c); done <- struct{}{} }()
	go func() { p.copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *pgProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.open() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every connection and refuses new ones.
func (p *pgProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
}

// Hang stops forwarding: connections stay open, nothing answers.
func (p *pgProxy) Hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hung = true
}

// Restore lets connections through again.
func (p *pgProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down, p.hung = false, false
	p.cond.Broadcast()
}

// SE-8: while Postgres is unreachable the API answers 503 with
// Retry-After, never 500, and without hanging; when it is back, the same
// requests succeed without a restart. Two outages: the server closes
// every connection (Cut), or stops answering without closing anything
// (Hang: connects time out, queries in flight are cancelled by the
// request deadline, both shortened here).
func TestPostgresOutageAnswers503_SE8(t *testing.T) {
	t.Run("closed", func(t *testing.T) { postgresOutage(t, (*pgProxy).Cut) })
	t.Run("unanswered", func(t *testing.T) { postgresOutage(t, (*pgProxy).Hang) })
}

func postgresOutage(t *testing.T, breakIt func(*pgProxy)) {
	var proxy *pgProxy
	e := startE2E(t, func(c *app.Config) {
		proxy, c.DatabaseURL = startPGProxy(t, testenv.Database(t))
		u, _ := url.Parse(c.DatabaseURL)
		q := u.Query()
		q.Set("connect_timeout", "3")
		u.RawQuery = q.Encode()
		c.DatabaseURL = u.String()
		// Short, so a hung query ends soon; long enough for an argon2id
		// sign-in on a loaded machine.
		c.HTTPHandlerTimeout = 6 * time.Second
	}, nil)
	coupon := e.importCoupons(2)
	app := e.submit(coupon[0], "outage@example.jp")

	type req struct {
		name         string
		method, path string
		body         any
		headers      []string
	}
	reqs := []req{
		{"application status (Basic)", "GET", "/v1/applications/" + app.ID, nil, basicAuth("outage@example.jp")},
		{"new application", "POST", "/v1/applications", application(coupon[1], "outage2@example.jp"), nil},
		{"sign-in", "POST", "/v1/sessions", map[string]string{"email": "outage@example.jp", "password": "an application password",
			"certificate_code": "AAAA-BBBB-CCCC-DDDD-EEEE"}, nil},
		{"coupon import (idempotent)", "POST", "/ops/v1/coupons", "number,product,expires_at\n55556666-77778888,client,2030-12-31\n",
			[]string{"Authorization", "Bearer " + opsToken, "Content-Type", "text/csv", "Idempotency-Key", "outage-import"}},
		{"review queue", "GET", "/ops/v1/reviews", nil, []string{"Authorization", "Bearer " + opsToken}},
		{"delivery log", "GET", "/ops/v1/deliveries", nil, []string{"Authorization", "Bearer " + opsToken}},
		{"readiness", "GET", "/readyz", nil, nil},
	}
	breakIt(proxy)
	for _, q := range reqs {
		start := time.Now()
		r := e.do(q.method, q.path, q.body, q.headers...)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s during the outage: %d %v %s", q.name, r.Status, r.Header, r.Body)
		} else if typ := problemType(t, r); typ == "internal" {
			t.Errorf("%s: %s", q.name, typ)
		}
		// Not a timed assertion of speed: a request must not hang on a dead
		// database for anything like a client's patience.
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%s took %v during the outage", q.name, d)
		}
	}
	proxy.Restore()
	testenv.Eventually(t, 30*time.Second, "readiness after the outage", func() bool {
		return e.do("GET", "/readyz", nil).Status == 200
	})
	// After the outage each request works again; a 503 (with Retry-After)
	// while the pool replaces its dead connections is what a client
	// retries, so each is retried on a 503 only.
	retried := func(q req) testenv.Response {
		var r testenv.Response
		testenv.Eventually(t, 60*time.Second, q.name+" after the outage", func() bool {
			r = e.do(q.method, q.path, q.body, q.headers...)
			return r.Status != 503
		})
		return r
	}
	if r := retried(reqs[0]); r.Status != 200 {
		t.Fatalf("application status after the outage: %d %s", r.Status, r.Body)
	}
	r := retried(reqs[3])
	if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the import refused during the outage runs when retried: %d %s", r.Status, r.Body)
	}
	if r := retried(reqs[1]); r.Status != 202 {
		t.Fatalf("a new application after the outage: %d %s", r.Status, r.Body)
	}
}

// SE-6: through the all-in-one, a retried coupon import with the same
// Idempotency-Key returns the first answer (same batch) and imports
// nothing twice; another file under that key is a 422.
func TestIdempotentCouponImport_SE6(t *testing.T) {
	e := startE2E(t, nil, nil)
	csv := "number,product,expires_at\n22223333-44445555,client,2030-12-31\n"
	hdr := []string{"Content-Type", "text/csv", "Idempotency-Key", "import-2026-12-01"}
	first := e.ops("POST", "/ops/v1/coupons", csv, hdr...)
	var res struct {
		BatchID  string `json:"batch_id"`
		Imported int    `json:"imported"`
	}
	first.JSON(t, &res)
	if first.Status != 200 || res.Imported != 1 {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	again := e.ops("POST", "/ops/v1/coupons", csv, hdr...)
	if again.Status != 200 || string(again.Body) != string(first.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %v %s", again.Status, again.Header, again.Body)
	}
	other := e.ops("POST", "/ops/v1/coupons", strings.Replace(csv, "22223333", "99998888", 1), hdr...)
	if other.Status != 422 || problemType(t, other) != "idempotency-key-reused" {
		t.Fatalf("other file under the key: %d %s", other.Status, other.Body)
	}
	var batches int
	pool := e.p.Units[0].Deps.Pool // billing starts first
	if e.p.Units[0].Deps.Name != "billing" {
		t.Fatal("unit 0 is", e.p.Units[0].Deps.Name)
	}
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&batches); err != nil || batches != 1 {
		t.Fatalf("%d idempotency records in billing's schema (%v)", batches, err)
	}
	// Without the key the same file is a new import, whose line already exists.
	r := e.ops("POST", "/ops/v1/coupons", csv, "Content-Type", "text/csv")
	var res2 struct {
		BatchID  string `json:"batch_id"`
		Imported int    `json:"imported"`
	}
	r.JSON(t, &res2)
	if r.Status != 200 || res2.Imported != 0 || res2.BatchID == res.BatchID {
		t.Fatalf("same file without a key: %d %s", r.Status, r.Body)
	}
}

// SE-10, issue 6 item 11: the banner says which database the runner
// uses, where the generated secrets are, and that dev conveniences are on.
func TestBannerSaysDatabaseSecretsAndDevMode_SE10(t *testing.T) {
	e := startE2E(t, nil, nil)
	b := e.p.Banner()
	u, _ := url.Parse(e.cfg.DatabaseURL)
	name := strings.TrimPrefix(u.Path, "/")
	for _, want := range []string{
		`database "` + name + `"`,
		"DEVELOPMENT CONVENIENCES ARE ON",
		"dev CA",
		e.cfg.DataDir + "/webhook-secret",
		e.cfg.DataDir + "/notifier.key",
		"clock control",
		"-H 'Content-Type: application/json'",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("banner lacks %q:\n%s", want, b)
		}
	}
	// The ops token came from OPS_TOKENS here: no file is claimed.
	if strings.Contains(b, "ops-token") {
		t.Errorf("banner names an ops token file that was not generated:\n%s", b)
	}
}

// SE-8: while NATS is unreachable, routes that need it answer 503 with
// Retry-After; when it is back, they work again. (Sessions need no NATS:
// every service verifies intake's signed tokens itself.)
func TestNATSOutageAnswers503_SE8(t *testing.T) {
	dir := t.TempDir()
	// Registered before the platform's own cleanup, so NATS stops after it.
	var servers []*server.Server
	t.Cleanup(func() {
		for _, ns := range servers {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	})
	startNATS := func(port int) *server.Server {
		ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats did not start")
		}
		servers = append(servers, ns)
		return ns
	}
	ns := startNATS(-1)
	port := ns.Addr().(*net.TCPAddr).Port
	e := startE2E(t, func(c *app.Config) { c.NatsURL = ns.ClientURL() }, nil)
	coupon := e.importCoupons(1)
	body := application(coupon[0], "natsdown@example.jp")
	ns.Shutdown()
	ns.WaitForShutdown()
	for _, q := range []struct {
		name, method, path string
		body               any
		headers            []string
	}{
		{"new application (coupon check)", "POST", "/v1/applications", body, nil},
		{"readiness", "GET", "/readyz", nil, nil},
	} {
		r := e.do(q.method, q.path, q.body, q.headers...)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s during the outage: %d %v %s", q.name, r.Status, r.Header, r.Body)
		}
	}
	startNATS(port)
	testenv.Eventually(t, 30*time.Second, "readiness after the outage", func() bool {
		return e.do("GET", "/readyz", nil).Status == 200
	})
	if r := e.do("POST", "/v1/applications", body); r.Status != 202 {
		t.Fatalf("after the outage: %d %s", r.Status, r.Body)
	}
}
