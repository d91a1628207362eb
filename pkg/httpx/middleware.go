package httpx

import (
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Recover turns a panic into a logged 500 problem rather than a dropped
// connection; a panic is a bug, and the log carries its stack.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic in handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
					WriteProblem(w, r, NewProblem(http.StatusInternalServerError, "internal", "Internal error", ""))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// NotFoundHandler and MethodNotAllowedHandler answer unknown routes with
// problems too.
func NotFoundHandler(w http.ResponseWriter, r *http.Request) { WriteProblem(w, r, NotFound()) }

func MethodNotAllowedHandler(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, r, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", ""))
}
