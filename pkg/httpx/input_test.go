package httpx_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/httpx"
)

// SE-9: content types are matched exactly.
func TestMediaTypeIsExactSE9(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                     true,
		"Application/JSON":                     true,
		"application/json; charset=utf-8":      true,
		"application/json;charset=UTF-8":       true,
		"":                                     false,
		"application/jsonp":                    false,
		"application/json-seq":                 false,
		"application/json5":                    false,
		"application/problem+json":             false,
		"application/json; charset=latin1":     false,
		"application/json; charset=utf-8; x=y": false,
		"application/json; boundary=x":         false,
		"application/json, text/plain":         false,
		"text/json":                            false,
		"application/x-www-form-urlencoded":    false,
		"application/json\x00":                 false,
		"application/json; charset=\"utf-8\"":  true,
		"application/json;;":                   false,
	} {
		if got := httpx.MediaTypeIs(ct, "application/json"); got != want {
			t.Errorf("%q: %v, want %v", ct, got, want)
		}
	}
	if httpx.MediaTypeIs("text/csv; charset=latin1", "text/csv") || !httpx.MediaTypeIs("text/csv", "text/csv") {
		t.Error("text/csv")
	}
}

type nested struct {
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Inner map[string]string `json:"inner"`
}

func decode(t *testing.T, ct, body string) (*httpx.Problem, nested) {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	var dst nested
	return httpx.DecodeJSON(httptest.NewRecorder(), r, &dst, 0), dst
}

// SE-4, SE-9: DecodeJSON takes only exactly application/json, valid
// UTF-8 and strings without NUL; each refusal is a 4xx problem.
func TestDecodeJSONRefusesBadTextSE4(t *testing.T) {
	cases := []struct {
		ct, body string
		status   int
		field    string
	}{
		{"application/json", `{"name":"a\u0000b"}`, 422, "name"},
		{"application/json", `{"tags":["ok","x\u0000"]}`, 422, "tags[1]"},
		{"application/json", `{"inner":{"k":"\u0000"}}`, 422, "inner.k"},
		{"application/json", `{"inner":{"k\u0000":"v"}}`, 422, `inner.k\u0000`},
		{"application/json", "{\"name\":\"\xff\xfe\"}", 400, ""},
		{"application/json", "{\"name\":\"caf\xc3\"}", 400, ""},
		{"application/json", `{"name":"\ud800"}`, 400, ""},
		{"application/json", `{"name":"\udc00x"}`, 400, ""},
		{"application/json", `{"name":"\ud800\u0041"}`, 400, ""},
		{"application/json", "{\"name\":\"a\x00\"}", 400, ""}, // raw NUL is a syntax error
		{"application/jsonp", `{"name":"x"}`, 415, ""},
		{"application/json-seq", `{"name":"x"}`, 415, ""},
		{"", `{"name":"x"}`, 415, ""},
		{"text/plain", `{"name":"x"}`, 415, ""},
		{"application/json; charset=iso-8859-1", `{"name":"x"}`, 415, ""},
	}
	for _, c := range cases {
		p, _ := decode(t, c.ct, c.body)
		if p == nil || p.Status != c.status {
			t.Errorf("%q %q: %+v, want %d", c.ct, c.body, p, c.status)
			continue
		}
		if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
			t.Errorf("%q: fields %+v, want %s", c.body, p.Errors, c.field)
		}
	}
	// What is fine stays fine: a surrogate pair, an escaped backslash
	// before u0000 (text, not NUL), U+FFFD itself, charset=utf-8.
	for _, body := range []string{
		`{"name":"\ud83d\ude00","tags":["\\u0000"],"inner":{"a":"\ufffd"}}`,
		`{"name":"日本ベリサイン"}`,
	} {
		p, got := decode(t, "application/json; charset=utf-8", body)
		if p != nil {
			t.Errorf("%s: %+v", body, p)
		}
		if strings.ContainsRune(got.Name, 0) {
			t.Errorf("%s: NUL got through", body)
		}
	}
	if _, got := decode(t, "application/json", `{"name":"\ud83d\ude00"}`); got.Name != "😀" {
		t.Errorf("surrogate pair decoded as %q", got.Name)
	}
}

func problemOf(t *testing.T, resp *http.Response) httpx.Problem {
	t.Helper()
	var p httpx.Problem
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%d %s: %s", resp.StatusCode, ct, body)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return p
}

// SE-4: NUL, control characters and invalid UTF-8 in the path, query,
// headers or Basic credentials are a 400 problem before any route runs.
func TestValidInputRefusesNULAndBadUTF8SE4(t *testing.T) {
	reached := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { reached++ })
	srv := httptest.NewServer(httpx.ValidInput(mux))
	defer srv.Close()

	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	cases := []struct {
		name, path string
		header     [2]string
	}{
		{"NUL in path", "/v1/applications/a%00b", [2]string{}},
		{"newline in path", "/v1/applications/a%0Ab", [2]string{}},
		{"invalid UTF-8 in path", "/v1/applications/%ff%fe", [2]string{}},
		{"NUL in query", "/v1/x?status=a%00", [2]string{}},
		{"invalid UTF-8 in query", "/v1/x?status=%c3", [2]string{}},
		{"NUL in query key", "/v1/x?a%00=1", [2]string{}},
		{"bad query escape", "/v1/x?a=%zz", [2]string{}},
		{"invalid UTF-8 in a header", "/v1/x", [2]string{"X-Name", "caf\xc3"}},
		{"NUL in Basic user", "/v1/x", [2]string{"Authorization", basic("taro\x00@example.jp", "pw")}},
		{"NUL in Basic password", "/v1/x", [2]string{"Authorization", basic("taro@example.jp", "p\x00w")}},
		{"invalid UTF-8 in Basic", "/v1/x", [2]string{"Authorization", basic("taro@example.jp", "p\xffw")}},
		{"control char in Basic", "/v1/x", [2]string{"Authorization", basic("taro@example.jp\x1b", "pw")}},
	}
	for _, c := range cases {
		req, err := http.NewRequest("GET", srv.URL+c.path, nil)
		if err != nil {
			t.Fatal(c.name, err)
		}
		if c.header[0] != "" {
			req.Header.Set(c.header[0], c.header[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(c.name, err)
		}
		p := problemOf(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 400 || p.Type != httpx.ProblemBase+"malformed-request" || p.Detail == "" {
			t.Errorf("%s: %d %+v", c.name, resp.StatusCode, p)
		}
	}
	if reached != 0 {
		t.Fatalf("%d bad requests reached the route", reached)
	}
	// Good input passes: UTF-8 in the path and query, a normal Basic login.
	req, _ := http.NewRequest("GET", srv.URL+"/v1/%E6%97%A5?q=%E6%97%A5%09x", nil)
	req.Header.Set("Authorization", basic("taro@example.jp", "日本語 password"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || reached != 1 {
		t.Fatalf("good input: %d, reached %d", resp.StatusCode, reached)
	}

	// A raw NUL in a header value never reaches the handler either (the
	// server itself answers 400).
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = conn.Write([]byte("GET /v1/x HTTP/1.1\r\nHost: x\r\nX-Name: a\x00b\r\n\r\n"))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || reached != 1 {
		t.Fatalf("raw NUL header: %d, reached %d", resp.StatusCode, reached)
	}
}

// SE-9: RequireContentType answers 415 to anything but its exact types.
func TestRequireContentTypeSE9(t *testing.T) {
	h := httpx.RequireContentType("text/csv")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	}))
	for ct, want := range map[string]int{
		"text/csv": 204, "text/csv; charset=utf-8": 204, "text/csv; charset=latin1": 415,
		"text/csvx": 415, "application/json": 415, "": 415, "text/csv; header=present": 415,
	} {
		r := httptest.NewRequest("POST", "/ops/v1/coupons", strings.NewReader("a,b\n"))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("%q: %d, want %d", ct, w.Code, want)
		}
		if want == 415 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: not a problem", ct)
		}
	}
}
