package proxy

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// upstream is a real HTTP server on loopback standing for one replica.
type upstream struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // method path body of each request that reached it
	// hangUp makes it read the request and drop the connection without
	// an answer, as a replica killed mid-request does.
	hangUp bool
}

func newUpstream(t *testing.T, name string) *upstream {
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, r.Method+" "+r.URL.Path+" "+string(body))
		hang := u.hangUp
		u.mu.Unlock()
		if hang {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		w.Header().Set("X-Replica", name)
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		_, _ = w.Write(body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// refusedURL is a loopback address nothing listens on.
func refusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// startProxy puts a proxy in front of intake replicas given by URL; the
// other services get one healthy replica each.
func startProxy(t *testing.T, intake ...string) *httptest.Server {
	t.Helper()
	ups := map[string][]string{"intake": intake}
	for _, s := range []string{"issuer", "billing", "validation", "notifier"} {
		ups[s] = []string{newUpstream(t, s).srv.URL}
	}
	p, err := New(ups, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, method, url, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Round-robin across replicas; the client's X-Forwarded-For is replaced
// by the address the proxy saw.
func TestRoundRobinAcrossReplicas_SplitMode(t *testing.T) {
	a, b := newUpstream(t, "a"), newUpstream(t, "b")
	px := startProxy(t, a.srv.URL, b.srv.URL)
	hits := map[string]int{}
	for range 10 {
		resp := send(t, "GET", px.URL+"/v1/applications/x", "", "X-Forwarded-For", "203.0.113.9")
		hits[resp.Header.Get("X-Replica")]++
		if xff := resp.Header.Get("X-Seen-Forwarded-For"); xff != "127.0.0.1" {
			t.Fatalf("X-Forwarded-For passed on as %q", xff)
		}
	}
	if hits["a"] != 5 || hits["b"] != 5 {
		t.Fatalf("replicas hit %v, want 5 each", hits)
	}
}

// A refused connection sent nothing: any request, POST included, goes to
// the next replica with its body intact.
func TestRefusedConnectionIsRetriedOnAnotherReplica_SplitMode(t *testing.T) {
	live := newUpstream(t, "live")
	px := startProxy(t, refusedURL(t), live.srv.URL)
	for i := range 4 {
		resp := send(t, "POST", px.URL+"/v1/applications", `{"n":1}`, "Content-Type", "application/json")
		if resp.StatusCode != 200 || readBody(t, resp) != `{"n":1}` {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := len(live.requests()); n != 4 {
		t.Fatalf("the live replica saw %d requests, want 4", n)
	}
}

// A replica that fails after it received the request: a POST without an
// Idempotency-Key is not sent again (it may have taken effect) and the
// client gets a 502 problem; a GET, or a POST with an Idempotency-Key
// (SE-6), goes to the other replica.
func TestFailureAfterSendRetriesOnlyWhatIsSafeToRepeat_SplitMode(t *testing.T) {
	for _, tc := range []struct {
		method, key string
		want        int
		liveSees    int // requests the live replica gets after the failure
	}{
		{"POST", "", http.StatusBadGateway, 0},
		{"GET", "", http.StatusOK, 1},
		{"POST", "key-1", http.StatusOK, 1},
	} {
		t.Run(tc.method+tc.key, func(t *testing.T) {
			dying, live := newUpstream(t, "dying"), newUpstream(t, "live")
			dying.hangUp = true
			px := startProxy(t, dying.srv.URL, live.srv.URL)
			var headers []string
			if tc.key != "" {
				headers = []string{"Idempotency-Key", tc.key}
			}
			// Round-robin: within two requests one meets the dying replica.
			for range 2 {
				liveBefore := len(live.requests())
				resp := send(t, tc.method, px.URL+"/v1/applications", "body", headers...)
				if len(dying.requests()) == 0 {
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("via the live replica: %d", resp.StatusCode)
					}
					continue
				}
				if resp.StatusCode != tc.want {
					t.Fatalf("after the replica failed: %d, want %d", resp.StatusCode, tc.want)
				}
				if got := len(live.requests()) - liveBefore; got != tc.liveSees {
					t.Fatalf("the live replica got %d requests after the failure, want %d", got, tc.liveSees)
				}
				if tc.want == http.StatusBadGateway {
					var prob struct {
						Status int `json:"status"`
					}
					if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
						t.Fatalf("502 as %s", ct)
					}
					if err := json.NewDecoder(resp.Body).Decode(&prob); err != nil || prob.Status != 502 {
						t.Fatalf("502 problem: %+v %v", prob, err)
					}
				} else if b := readBody(t, resp); b != "body" && tc.method == "POST" {
					t.Fatalf("retried body %q", b)
				}
				if n := len(dying.requests()); n != 1 {
					t.Fatalf("the dying replica got %d requests", n)
				}
				return
			}
			t.Fatal("no request met the dying replica")
		})
	}
}

// No replica reachable: 503 with Retry-After, an RFC 9457 problem.
func TestNoReplicaAnswers503WithRetryAfter_SplitMode(t *testing.T) {
	px := startProxy(t, refusedURL(t), refusedURL(t))
	resp := send(t, "POST", px.URL+"/v1/sessions", "{}")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"))
	}
	// Replicas start in rotation; the refusals took intake out of it.
	if resp := send(t, "GET", px.URL+"/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with every intake replica refusing: %d", resp.StatusCode)
	}
	if resp := send(t, "GET", px.URL+"/nowhere", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
}

// SPEC §7 (split mode): the proxy serves the ops console's pages itself,
// with the console's security headers, and forwards the console's API
// calls (/ops/v1/…) to a replica like any client's.
func TestProxyServesTheOpsConsoleItself_SplitMode(t *testing.T) {
	a := newUpstream(t, "intake-a")
	srv := startProxy(t, a.srv.URL)
	for _, path := range []string{"/ops/", "/ops/reviews", "/ops/assets/app.js"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Replica") != "" ||
			!strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'self'") ||
			res.Header.Get("X-Frame-Options") != "DENY" || len(body) == 0 {
			t.Errorf("%s: %d replica %q CSP %q XFO %q", path, res.StatusCode, res.Header.Get("X-Replica"),
				res.Header.Get("Content-Security-Policy"), res.Header.Get("X-Frame-Options"))
		}
	}
	res, err := http.Get(srv.URL + "/ops/v1/applications")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("X-Replica") != "intake-a" {
		t.Errorf("/ops/v1/applications went to %q, want intake", res.Header.Get("X-Replica"))
	}
	for _, path := range []string{"/ops/v1", "/ops/v1/nothing", "/ops/assets/none.js"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("X-Replica") != "" {
			t.Errorf("%s: %d from %q, want the proxy's 404", path, res.StatusCode, res.Header.Get("X-Replica"))
		}
	}
}
