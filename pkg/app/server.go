package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// MaxReadTimeout bounds how long a request may take to arrive, headers
// and body: a stalled body is cut within 30 s (SE-9).
const MaxReadTimeout = 30 * time.Second

// MaxHeaderBytes bounds the request line and headers of every server.
const MaxHeaderBytes = 64 << 10

// Defaults of the HTTP_* timeouts, for a Config not read by LoadConfig.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = MaxReadTimeout
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultHandlerTimeout    = time.Minute
)

// NewServer is every HTTP server of the platform, per-service binary and
// all-in-one alike (SE-9):
//   - ReadHeaderTimeout cuts a client that dribbles its headers;
//   - ReadTimeout is the deadline of the whole request, body included: a
//     stalled body is cut, the handler's read fails, DecodeJSON answers
//     408, and the connection is closed. Bodies are small (≤ 5 MiB), so
//     one deadline for the whole request is enough; no route streams an
//     upload.
//   - WriteTimeout runs from the end of the headers to the end of the
//     response; the largest responses (PKCS#12, CRL, certificate lists)
//     are kilobytes, so 2 minutes leaves room for slow handlers and
//     clients, not for a client that never reads;
//   - IdleTimeout closes idle keep-alive connections;
//   - MaxHeaderBytes bounds headers at 64 KiB (the default is 1 MiB);
//   - every request's context ends after HTTPHandlerTimeout (shorter than
//     WriteTimeout): a query stuck on a Postgres that stopped answering
//     (no reset, no close) is cancelled and the request answered 503
//     (SE-8) instead of hanging until TCP gives up.
//
// Zero durations in cfg take the defaults above.
func NewServer(cfg Config, h http.Handler, log *slog.Logger) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d <= 0 {
			return def
		}
		return d
	}
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           withDeadline(h, or(cfg.HTTPHandlerTimeout, DefaultHandlerTimeout)),
		ReadHeaderTimeout: or(cfg.HTTPReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(cfg.HTTPReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(cfg.HTTPWriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       or(cfg.HTTPIdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if log != nil {
		// net/http's own complaints (TLS handshakes, hijack misuse) go to the JSON log.
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return srv
}

func withDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
