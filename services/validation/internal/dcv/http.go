package dcv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxRedirects bounds the redirects followed.
const maxRedirects = 10

// maxBody is how much of an answer is read: a random value is short.
const maxBody = 8 << 10

// HTTPFetcher fetches the HTTP method's file (VA-2, BR 3.2.2.4.18): over
// http on port 80 (DCV_HTTP_PORT, which stands for 80 in tests) or https
// on 443; redirects are followed only when they are HTTP 301, 302, 307 or
// 308 and lead to http or https on port 80 or 443; names are resolved by
// the validating resolver; no proxy, no connection kept for another
// check. Meta-refresh or script redirects are content, never followed.
type HTTPFetcher struct {
	Resolver *Resolver
	// Port is DCV_HTTP_PORT: where port 80 is reached (80 in production).
	Port int
}

// fetchResult is what one fetch saw.
type fetchResult struct {
	status int
	body   []byte
	// hops are the requests made, with their answers, for the record.
	hops []string
}

var errRedirect = errors.New("redirect refused")

func (f *HTTPFetcher) allowedPort(scheme string, port int) bool {
	switch scheme {
	case "http":
		return port == 80 || port == f.Port
	case "https":
		return port == 443
	}
	return false
}

// effectivePort is the port a URL reaches.
func effectivePort(u *url.URL) (int, error) {
	if p := u.Port(); p != "" {
		return strconv.Atoi(p)
	}
	if u.Scheme == "https" {
		return 443, nil
	}
	return 80, nil
}

// fetch GETs http://host/path and follows the allowed redirects.
func (f *HTTPFetcher) fetch(ctx context.Context, host, path string) (fetchResult, error) {
	var res fetchResult
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		Proxy: nil, // never through a proxy: the perspective is this host's network
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h, p, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if p == "80" {
				p = strconv.Itoa(f.Port)
			}
			ips, err := f.Resolver.Addrs(ctx, h)
			if err != nil {
				return nil, err
			}
			var lastErr error
			for _, ip := range ips {
				c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), p))
				if err == nil {
					return c, nil
				}
				lastErr = err
			}
			return nil, lastErr
		},
		// The random value proves control, not the certificate: an https
		// redirect target may have none yet that verifies (as ACME CAs do).
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  10 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
	}
	defer transport.CloseIdleConnections()
	// Redirects are followed here, not by an http.Client, so that each
	// one is checked before it is followed.
	u := &url.URL{Scheme: "http", Host: host, Path: path}
	for hop := 0; ; hop++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return res, err
		}
		req.Header.Set("User-Agent", "certlife-validation (+TLS BR 3.2.2.4.18)")
		resp, err := transport.RoundTrip(req)
		if err != nil {
			return res, err
		}
		res.status = resp.StatusCode
		res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		loc := resp.Header.Get("Location")
		_ = resp.Body.Close()
		if err != nil {
			return res, err
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			res.hops = append(res.hops, fmt.Sprintf("GET %s → %d %s", u, resp.StatusCode, excerpt(res.body)))
			return res, nil
		}
		next, err := u.Parse(loc)
		if err != nil {
			return res, fmt.Errorf("%w: Location %q is not a URL", errRedirect, loc)
		}
		res.hops = append(res.hops, fmt.Sprintf("GET %s → %d %s", u, resp.StatusCode, next.Redacted()))
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return res, fmt.Errorf("%w: HTTP %d is not a 301, 302, 307 or 308 redirect", errRedirect, resp.StatusCode)
		}
		if hop >= maxRedirects {
			return res, fmt.Errorf("%w: more than %d redirects", errRedirect, maxRedirects)
		}
		port, err := effectivePort(next)
		if err != nil || !f.allowedPort(next.Scheme, port) {
			return res, fmt.Errorf("%w: %s is not http or https on port 80 or 443", errRedirect, next.Redacted())
		}
		next.Fragment = ""
		u = next
	}
}

// holds reports whether the body holds the value: one of its lines,
// trimmed, is the value.
func holds(body []byte, value string) bool {
	for _, line := range strings.Split(string(body), "\n") {
		if strings.TrimSpace(line) == value {
			return true
		}
	}
	return false
}

// excerpt quotes the start of a body for the record.
func excerpt(b []byte) string {
	const n = 120
	s := string(b)
	if !utf8.ValidString(s) {
		return fmt.Sprintf("(%d bytes, not UTF-8)", len(b))
	}
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return strconv.Quote(s)
}
