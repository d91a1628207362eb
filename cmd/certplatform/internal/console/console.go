// Package console is the ops console: a small set of static pages (HTML,
// CSS and plain JavaScript modules, embedded; no build step) served under
// /ops/ that operators sign in to with their ops token and that call the
// ops JSON API under /ops/v1/ with it. The all-in-one mounts it on its
// router; split mode's proxy serves it itself (the pages are the same
// files, and their API calls go through the proxy like any client's).
//
// The token is kept in the tab's sessionStorage and sent as
// "Authorization: Bearer" by fetch (never in a URL or a cookie). Every
// answer carries a Content-Security-Policy that allows only the console's
// own files (no inline script or style), X-Frame-Options: DENY and
// nosniff.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/certlife/platform/pkg/httpx"
)

//go:embed static
var static embed.FS

// Patterns are the console's routes (GET and HEAD; chi syntax). A page is
// one path segment (/ops/reviews); the API under /ops/v1/ is not the
// console's, and the single segment /ops/v1 answers 404.
var Patterns = []string{"/ops", "/ops/", "/ops/{page}", "/ops/assets/*"}

// CSP is the console's Content-Security-Policy: its own files only.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

var pageName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

type file struct {
	body  []byte
	ctype string
	etag  string
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// files are the embedded files by their path under static/.
var files = func() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = file{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // only a build-time mistake gets here
	}
	return out
}()

// Routes mounts the console on r.
func Routes(r chi.Router) {
	h := Handler()
	for _, p := range Patterns {
		r.Method(http.MethodGet, p, h)
		r.Method(http.MethodHead, p, h)
	}
}

// Handler serves the console's paths (see Patterns); anything else is a
// 404 problem.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		httpx.MethodNotAllowedHandler(w, r)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/ops":
		target := "/ops/"
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
		return
	case p == "/ops/":
		send(w, r, files["index.html"])
		return
	}
	rest, ok := strings.CutPrefix(p, "/ops/")
	if !ok {
		httpx.NotFoundHandler(w, r)
		return
	}
	if asset, ok := strings.CutPrefix(rest, "assets/"); ok {
		f, found := files[asset]
		if !found || asset == "index.html" {
			httpx.NotFoundHandler(w, r)
			return
		}
		send(w, r, f)
		return
	}
	if rest == "v1" || !pageName.MatchString(rest) {
		httpx.NotFoundHandler(w, r)
		return
	}
	// Every page is the same document; the script shows the page the
	// path names (or says there is none).
	send(w, r, files["index.html"])
}

func send(w http.ResponseWriter, r *http.Request, f file) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	// Revalidated every time: a new build's files are used at once.
	h.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(f.body)
}
