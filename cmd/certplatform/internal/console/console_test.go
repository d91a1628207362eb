package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

func serveConsole(t *testing.T) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	Routes(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// SE-5 (the console's side): every page and file is served with a CSP
// that allows only the console's own files, X-Frame-Options: DENY and
// nosniff, with the content type a module script needs; the API's path
// /ops/v1 and unknown files are 404 problems.
func TestConsoleServesPagesWithSecurityHeaders_SE5(t *testing.T) {
	srv := serveConsole(t)
	for path, ctype := range map[string]string{
		"/ops/":                        "text/html; charset=utf-8",
		"/ops/reviews":                 "text/html; charset=utf-8",
		"/ops/mass-revocation":         "text/html; charset=utf-8",
		"/ops/assets/app.js":           "text/javascript; charset=utf-8",
		"/ops/assets/pages/reviews.js": "text/javascript; charset=utf-8",
		"/ops/assets/console.css":      "text/css; charset=utf-8",
	} {
		res := get(t, "GET", srv.URL+path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q, want 200 %q", path, res.StatusCode, res.Header.Get("Content-Type"), ctype)
		}
		if res.Header.Get("Content-Security-Policy") != CSP || !strings.HasPrefix(CSP, "default-src 'self';") ||
			res.Header.Get("X-Frame-Options") != "DENY" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, res.Header)
		}
		if again := get(t, "GET", srv.URL+path, "If-None-Match", res.Header.Get("ETag")); again.StatusCode != 304 {
			t.Errorf("%s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}
	for _, path := range []string{"/ops/v1", "/ops/assets/nothing.js", "/ops/assets/index.html", "/ops/Reviews", "/ops/assets/"} {
		if res := get(t, "GET", srv.URL+path); res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q, want a 404 problem", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	if res := get(t, "GET", srv.URL+"/ops?x=1"); res.StatusCode != 301 || res.Header.Get("Location") != "/ops/?x=1" {
		t.Errorf("/ops: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := get(t, "HEAD", srv.URL+"/ops/"); res.StatusCode != 200 {
		t.Errorf("HEAD /ops/: %d", res.StatusCode)
	}
	if res := get(t, "POST", srv.URL+"/ops/"); res.StatusCode != 405 {
		t.Errorf("POST /ops/: %d", res.StatusCode)
	}
}

var (
	textEntry  = regexp.MustCompile(`'([a-zA-Z0-9_.]+)':\s*\[\s*'((?:[^'\\]|\\.)*)',\s*'((?:[^'\\]|\\.)*)',?\s*\]`)
	textUse    = regexp.MustCompile(`\bt\('([a-zA-Z0-9_.]+)'`)
	keyField   = regexp.MustCompile(`\b(?:nav|desc|label|done|titleKey):\s*'([a-z0-9_.]+)'`)
	sectionUse = regexp.MustCompile(`section\('[a-z-]+', '([a-z0-9_.]+)'`)
)

// The console works in both languages: every text key a page uses is
// defined with an English and a Japanese text, and the families of keys
// built from API values (roles, statuses, revocation reasons) are
// complete. No page writes HTML from strings, and the document has no
// inline script or style (the CSP would refuse them).
func TestConsoleTextsInBothLanguagesAndNoInlineCode(t *testing.T) {
	i18n, err := static.ReadFile("static/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range textEntry.FindAllStringSubmatch(string(i18n), -1) {
		if m[2] == "" || m[3] == "" {
			t.Errorf("text %s lacks a language", m[1])
		}
		defined[m[1]] = true
	}
	if len(defined) < 100 {
		t.Fatalf("read %d texts from i18n.js: the pattern is broken", len(defined))
	}
	used := 0
	err = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		src := string(b)
		if strings.Contains(src, "innerHTML") || strings.Contains(src, "insertAdjacentHTML") || strings.Contains(src, "document.write") {
			t.Errorf("%s writes HTML from strings", p)
		}
		if !strings.HasSuffix(p, ".js") {
			return nil
		}
		for _, re := range []*regexp.Regexp{textUse, keyField, sectionUse} {
			for _, m := range re.FindAllStringSubmatch(src, -1) {
				used++
				if strings.HasSuffix(m[1], ".") {
					continue // a family, checked below
				}
				if !defined[m[1]] {
					t.Errorf("%s uses text %q, which i18n.js does not define", p, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if used < 100 {
		t.Fatalf("found %d text uses: the patterns are broken", used)
	}
	for _, family := range [][]string{
		{"role.", "reviewer", "billing", "admin"},
		{"status.", "provisional", "cancelled", "accepted", "awaiting_payment", "validating", "in_review", "approved", "issued", "rejected", "pending"},
		{"reason.", "superseded", "keyCompromise", "cessationOfOperation", "affiliationChanged", "privilegeWithdrawn"},
		{"mass.", "serials", "organization", "public_key_sha256"},
	} {
		for _, v := range family[1:] {
			if !defined[family[0]+v] {
				t.Errorf("text %s%s is missing", family[0], v)
			}
		}
	}
	index, _ := static.ReadFile("static/index.html")
	scripts := regexp.MustCompile(`(?s)<script\b([^>]*)>(.*?)</script>`).FindAllStringSubmatch(string(index), -1)
	if len(scripts) != 1 {
		t.Fatalf("index.html has %d scripts, want the one module", len(scripts))
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], `src="/ops/assets/`) || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script in index.html: %q", m[0])
		}
	}
	if strings.Contains(string(index), "<style") || regexp.MustCompile(`\s(?:style|on[a-z]+)=`).Match(index) {
		t.Error("index.html has inline style or event handlers")
	}
}
