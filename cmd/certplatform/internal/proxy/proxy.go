// Package proxy is split mode's reverse proxy (`certplatform proxy`, SPEC
// §5 and §7): one address in front of every service replica. It sends
// each request to the service that owns its path (routes.go), round-robin
// across the replicas that answer /readyz, and tries another replica when
// the chosen one refused the connection — for any method, since nothing
// was sent — or, for a request that is safe to repeat (GET, HEAD, PUT,
// DELETE, OPTIONS, or one carrying an Idempotency-Key, SE-6), when the
// replica failed before answering.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certlife/platform/cmd/certplatform/internal/console"
	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/httpx"
)

// maxRetryBody bounds the request body kept in memory so that it can be
// sent to another replica; a larger body (which every service refuses
// anyway) is streamed once, without retry.
const maxRetryBody = 6 << 20

// Proxy forwards requests to service replicas.
type Proxy struct {
	table   *Table
	pools   map[string]*pool
	all     []*replica
	rp      *httputil.ReverseProxy
	own     chi.Router
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics metrics
}

type replica struct {
	service string
	url     *url.URL
	tr      *http.Transport
	up      atomic.Bool
}

type pool struct {
	replicas []*replica
	next     atomic.Uint64
}

type metrics struct {
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

type serviceKey struct{}

// New builds a proxy over upstreams: service name → base URLs of its
// replicas (http://127.0.0.1:port).
func New(upstreams map[string][]string, log *slog.Logger) (*Proxy, error) {
	p := &Proxy{table: NewTable(Routes), pools: map[string]*pool{}, log: log, reg: app.NewRegistry()}
	p.metrics = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "certlife_proxy_requests_total",
			Help: "Requests forwarded, by owning service and status code (502/503 = the proxy's own answer)."}, []string{"service", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "certlife_proxy_retries_total",
			Help: "Requests sent to another replica after one failed."}, []string{"service"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "certlife_proxy_upstream_up",
			Help: "1 when the replica answered its last /readyz probe (or request) well."}, []string{"service", "upstream"}),
	}
	p.reg.MustRegister(p.metrics.requests, p.metrics.retries, p.metrics.up)
	names := make([]string, 0, len(upstreams))
	for name := range upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pl := &pool{}
		for _, raw := range upstreams[name] {
			u, err := url.Parse(raw)
			if err != nil || u.Scheme != "http" || u.Host == "" {
				return nil, fmt.Errorf("proxy: upstream %s: %q is not an http://host:port URL", name, raw)
			}
			r := &replica{service: name, url: u, tr: newTransport()}
			r.up.Store(true) // the supervisor starts the proxy once replicas are ready
			pl.replicas = append(pl.replicas, r)
			p.all = append(p.all, r)
		}
		if len(pl.replicas) > 0 {
			p.pools[name] = pl
		}
	}
	for _, rt := range Routes {
		if rt.Service != Any && p.pools[rt.Service] == nil {
			return nil, fmt.Errorf("proxy: no upstream for service %s (routes %s)", rt.Service, rt.Pattern)
		}
	}
	p.pools[Any] = &pool{replicas: p.all}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p,
		ModifyResponse: p.counted,
		ErrorHandler:   p.fail,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	own := chi.NewRouter()
	own.MethodNotAllowed(httpx.MethodNotAllowedHandler)
	own.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	own.Get("/readyz", p.ready)
	own.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg}))
	console.Routes(own)
	p.own = own
	return p, nil
}

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}

// ServeHTTP routes the request: the proxy's own routes, a service's
// replicas, or a 404 problem.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.RawPath // chi matches the escaped path when there is one
	if path == "" {
		path = r.URL.Path
	}
	svc, ok := p.table.Owner(r.Method, path)
	switch {
	case !ok:
		httpx.NotFoundHandler(w, r)
	case svc == "":
		p.own.ServeHTTP(w, r)
	default:
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength <= maxRetryBody {
			if err := bufferBody(r); err != nil {
				httpx.WriteProblem(w, r, httpx.BadRequest("the request body could not be read"))
				return
			}
		}
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), serviceKey{}, svc)))
	}
}

// bufferBody reads a body of known or unknown length (up to
// maxRetryBody) so that it can be sent again; a longer one is streamed.
func bufferBody(r *http.Request) error {
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBody+1))
	if err != nil {
		return err
	}
	if len(buf) > maxRetryBody {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return nil
	}
	_ = r.Body.Close()
	r.ContentLength = int64(len(buf))
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return nil
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "upstream" // RoundTrip picks the replica
	pr.Out.Host = pr.In.Host
	// The proxy is the edge: what a client claims in X-Forwarded-For is
	// not passed on (services believe loopback, see TRUSTED_PROXIES).
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		pr.Out.Header.Set("X-Forwarded-For", ip)
	}
	pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
	pr.Out.Header.Set("X-Forwarded-Proto", "http")
}

// errUnavailable: no replica could be reached (nothing was processed).
var errUnavailable = errors.New("no replica of the service could be reached")

// sentError: the request reached a replica, which failed before it
// answered; it may or may not have taken effect.
type sentError struct{ err error }

func (e *sentError) Error() string {
	return "upstream failed after the request was sent: " + e.err.Error()
}
func (e *sentError) Unwrap() error { return e.err }

// RoundTrip sends req to a replica of its service, and to the next one
// when that is safe (see the package comment).
func (p *Proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	svc, _ := req.Context().Value(serviceKey{}).(string)
	pl := p.pools[svc]
	if pl == nil {
		return nil, errUnavailable
	}
	replayable := replayable(req)
	var last error
	for i, r := range pl.order() {
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = r.url.Scheme, r.url.Host
		if i > 0 {
			if req.Body != nil && req.GetBody == nil {
				break // the body is gone with the first attempt
			}
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					break
				}
				out.Body = body
			}
			p.metrics.retries.WithLabelValues(svc).Inc()
		}
		resp, err := r.tr.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		if req.Context().Err() != nil {
			return nil, err // the client went away
		}
		last = err
		p.markDown(r, err)
		if !refused(err) && !replayable {
			return nil, &sentError{err}
		}
	}
	if last == nil {
		last = errUnavailable
	}
	return nil, fmt.Errorf("%w: %v", errUnavailable, last)
}

// refused reports an error before anything was sent: the dial failed.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func replayable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != ""
}

func (p *Proxy) markDown(r *replica, err error) {
	if r.up.Swap(false) {
		p.log.Warn("upstream failed; taken out of rotation until it is ready again",
			"service", r.service, "upstream", r.url.Host, "err", err)
	}
	p.metrics.up.WithLabelValues(r.service, r.url.Host).Set(0)
	// Its other kept-alive connections died with it.
	r.tr.CloseIdleConnections()
}

// order is the replicas to try: the ready ones in round-robin order, then
// the others as a last resort.
func (pl *pool) order() []*replica {
	n := len(pl.replicas)
	start := int(pl.next.Add(1) % uint64(n))
	ready := make([]*replica, 0, n)
	var rest []*replica
	for i := 0; i < n; i++ {
		r := pl.replicas[(start+i)%n]
		if r.up.Load() {
			ready = append(ready, r)
		} else {
			rest = append(rest, r)
		}
	}
	return append(ready, rest...)
}

func (p *Proxy) counted(resp *http.Response) error {
	svc, _ := resp.Request.Context().Value(serviceKey{}).(string)
	p.metrics.requests.WithLabelValues(svc, fmt.Sprint(resp.StatusCode)).Inc()
	return nil
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	svc, _ := r.Context().Value(serviceKey{}).(string)
	if r.Context().Err() != nil {
		return // nobody is listening
	}
	var sent *sentError
	var prob *httpx.Problem
	if errors.As(err, &sent) {
		p.log.Warn("upstream failed mid-request", "service", svc, "method", r.Method, "path", r.URL.Path, "err", err)
		prob = httpx.NewProblem(http.StatusBadGateway, "upstream-failed", "Upstream failed",
			"the "+svc+" service failed before it answered; the request may or may not have taken effect — send it again with the same Idempotency-Key")
	} else {
		p.log.Warn("no replica reachable", "service", svc, "method", r.Method, "path", r.URL.Path, "err", err)
		prob = httpx.NewProblem(http.StatusServiceUnavailable, "service-unavailable", "Service unavailable",
			"no replica of the "+svc+" service answered; nothing was processed, please try again")
		prob.RetryAfter = time.Second
	}
	p.metrics.requests.WithLabelValues(svc, fmt.Sprint(prob.Status)).Inc()
	httpx.WriteProblem(w, r, prob)
}

// ready answers 200 when every service has a replica in rotation.
func (p *Proxy) ready(w http.ResponseWriter, r *http.Request) {
	var missing []string
	for name, pl := range p.pools {
		if name == Any {
			continue
		}
		ok := false
		for _, rep := range pl.replicas {
			ok = ok || rep.up.Load()
		}
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		prob := httpx.NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready",
			"no replica ready: "+strings.Join(missing, ", "))
		prob.RetryAfter = time.Second
		httpx.WriteProblem(w, r, prob)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ready\n"))
}

// RunHealth probes every replica's /readyz each interval until ctx ends;
// a replica that answers 200 is put (back) in rotation.
func (p *Proxy) RunHealth(ctx context.Context, interval time.Duration) {
	client := &http.Client{Timeout: 2 * time.Second}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, r := range p.all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.probe(ctx, client, r)
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Proxy) probe(ctx context.Context, client *http.Client, r *replica) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url.JoinPath("/readyz").String(), nil)
	if err != nil {
		return
	}
	resp, err := client.Do(req)
	ok := err == nil && resp.StatusCode == http.StatusOK
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if ctx.Err() != nil {
		return
	}
	switch {
	case ok && !r.up.Swap(true):
		p.log.Info("upstream ready; back in rotation", "service", r.service, "upstream", r.url.Host)
	case !ok && r.up.Swap(false):
		p.log.Warn("upstream not ready; out of rotation", "service", r.service, "upstream", r.url.Host, "err", err)
	}
	v := 0.0
	if ok {
		v = 1
	}
	p.metrics.up.WithLabelValues(r.service, r.url.Host).Set(v)
}
