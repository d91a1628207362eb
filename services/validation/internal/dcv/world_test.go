package dcv

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/testenv"
)

// world is a small Internet for the checkers: an authoritative server
// with a signed zone (signed.test), a zone with broken signatures
// (bogus.test) and unsigned zones (test., plain.test), Unbound validating
// in front of it, and a web server on loopback answering for any host.
type world struct {
	auth    *testenv.DNSServer
	unbound *testenv.Unbound
	web     *webServer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	auth := testenv.StartDNS(t)
	auth.AddZone(t, "test.", testenv.Unsigned)
	auth.AddZone(t, "signed.test.", testenv.Signed)
	auth.AddZone(t, "bogus.test.", testenv.Bogus)
	auth.AddZone(t, "plain.test.", testenv.Unsigned)
	return &world{auth: auth, unbound: testenv.StartUnbound(t, auth), web: startWeb(t, "127.0.0.1")}
}

// checker is the primary perspective of the world: through Unbound,
// requiring validation.
func (w *world) checker(t *testing.T) *Checker {
	t.Helper()
	c, err := NewChecker(Config{DNSServer: w.unbound.Addr, HTTPPort: w.web.port, Timeout: 10 * time.Second, Primary: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// webServer is a real HTTP server on loopback that answers by host and
// path, for any host name that resolves to it.
type webServer struct {
	port int
	mu   sync.Mutex
	// pages: "host/path" → handler.
	pages map[string]http.HandlerFunc
	hits  map[string]int
}

func startWeb(t *testing.T, ip string) *webServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return serveWeb(t, ln)
}

func serveWeb(t *testing.T, ln net.Listener) *webServer {
	t.Helper()
	w := &webServer{port: ln.Addr().(*net.TCPAddr).Port, pages: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	srv := &http.Server{Handler: w, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return w
}

func (w *webServer) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	key := strings.ToLower(host) + r.URL.Path
	w.mu.Lock()
	h := w.pages[key]
	w.hits[key]++
	w.mu.Unlock()
	if h == nil {
		http.NotFound(rw, r)
		return
	}
	h(rw, r)
}

// page serves body with status 200 at host+path.
func (w *webServer) page(host, path, body string) {
	w.handle(host, path, func(rw http.ResponseWriter, _ *http.Request) { _, _ = rw.Write([]byte(body)) })
}

// redirect answers host+path with a redirect of the given status.
func (w *webServer) redirect(host, path string, status int, location string) {
	w.handle(host, path, func(rw http.ResponseWriter, r *http.Request) { http.Redirect(rw, r, location, status) })
}

func (w *webServer) handle(host, path string, h http.HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pages[host+path] = h
}

func (w *webServer) hit(host, path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[host+path]
}

func (w *webServer) url(host, path string) string {
	return "http://" + host + ":" + strconv.Itoa(w.port) + path
}
