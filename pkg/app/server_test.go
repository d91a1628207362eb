package app_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/httpx"
)

// serve runs NewServer on a loopback port until the test ends.
func serve(t *testing.T, cfg app.Config, h http.Handler) (string, *http.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := app.NewServer(cfg, h, nil)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), srv
}

// readUntilClosed reads what the server sends until it closes the
// connection. The deadline is only a safety net far above the server's
// timeouts: the assertion is that the server, not the client, ends it.
func readUntilClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "connection reset") {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server kept the stalled connection open (read so far: %q)", got)
		}
		t.Fatal(err)
	}
	return string(got)
}

// SE-9: a client that sends its headers and then stalls in the body is
// cut by the read deadline (HTTP_READ_TIMEOUT, here shortened): the
// handler's read fails, DecodeJSON answers 408, the connection closes.
func TestStalledBodyIsCutSE9(t *testing.T) {
	cfg := app.Config{HTTPReadHeaderTimeout: 200 * time.Millisecond, HTTPReadTimeout: 400 * time.Millisecond}
	var decoded = make(chan *httpx.Problem, 1)
	addr, _ := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		p := httpx.DecodeJSON(w, r, &v, 0)
		decoded <- p
		if p != nil {
			httpx.WriteProblem(w, r, p)
		}
	}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte("POST /v1/applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: 1000\r\n\r\n{\"product\":"))
	if err != nil {
		t.Fatal(err)
	}
	got := readUntilClosed(t, conn)
	p := <-decoded
	if p == nil || p.Status != http.StatusRequestTimeout {
		t.Fatalf("decode of a stalled body: %+v", p)
	}
	if !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Logf("response before close: %q", got) // the write may race the close; the cut is what matters
	}
}

// SE-9: a client that stalls in its headers is cut by
// HTTP_READ_HEADER_TIMEOUT without any handler running.
func TestStalledHeadersAreCutSE9(t *testing.T) {
	cfg := app.Config{HTTPReadHeaderTimeout: 200 * time.Millisecond, HTTPReadTimeout: 400 * time.Millisecond}
	reached := make(chan struct{}, 1)
	addr, _ := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached <- struct{}{} }))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /v1/applications HTTP/1.1\r\nHost: x\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, conn)
	select {
	case <-reached:
		t.Fatal("a request with unfinished headers reached the handler")
	default:
	}
}

// SE-9: headers over 64 KiB are refused (431), and an idle keep-alive
// connection is closed after HTTP_IDLE_TIMEOUT.
func TestHeaderBoundAndIdleTimeoutSE9(t *testing.T) {
	cfg := app.Config{HTTPIdleTimeout: 300 * time.Millisecond}
	addr, _ := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	// Keep-alive, then silence: the server closes the idle connection.
	readUntilClosed(t, conn)

	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	_ = big.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = big.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n"))
	resp, err = http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("80 KiB of headers: %v %v", resp, err)
	}
}

// SE-9: the defaults keep every read deadline within 30 s, and a
// configuration that would hold a stalled body longer does not start.
func TestServerTimeoutDefaultsSE9(t *testing.T) {
	srv := app.NewServer(app.Config{}, http.NotFoundHandler(), nil)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.ReadTimeout > 30*time.Second ||
		srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes != app.MaxHeaderBytes {
		t.Fatalf("%+v", srv)
	}
	t.Setenv("HTTP_READ_TIMEOUT", "45s")
	if _, err := app.LoadConfig(); err == nil {
		t.Fatal("HTTP_READ_TIMEOUT=45s accepted")
	}
	t.Setenv("HTTP_READ_TIMEOUT", "")
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if srv := app.NewServer(cfg, http.NotFoundHandler(), nil); srv.ReadTimeout != 30*time.Second || srv.ReadHeaderTimeout != 10*time.Second {
		t.Fatalf("from the environment: %+v", srv)
	}
}
