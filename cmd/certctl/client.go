package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Exit codes a script can rely on.
const (
	exitOK       = 0
	exitAPI      = 1 // the API refused (problem detail printed), or could not be reached
	exitUsage    = 2
	exitAuth     = 3 // 401 / 403, or no usable token
	exitNotFound = 4
)

// exitError ends the command with a code and a message for stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func fail(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// problem is an RFC 9457 problem document as the platform writes it.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Errors   []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors,omitempty"`
}

// client speaks the ops API over HTTP (and nothing else).
type client struct {
	server string
	token  string
	http   *http.Client
	stderr io.Writer
	json   bool // --output json: problems are printed as JSON too
}

// request is one API call.
type request struct {
	method      string
	path        string
	query       url.Values
	body        any    // JSON-encoded unless raw is set
	raw         []byte // sent as is with contentType
	contentType string
	// notFound, when set, replaces the problem of a 404 that has no
	// resource behind it (a route this server does not have yet).
	notFound string
}

// do sends req and decodes a 2xx JSON answer into out (nil: ignored).
// Every other answer becomes an exitError with the code the status
// calls for; the problem detail is printed.
func (c *client) do(req request, out any) error {
	u := strings.TrimRight(c.server, "/") + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var body io.Reader
	ctype := ""
	switch {
	case req.raw != nil:
		body, ctype = bytes.NewReader(req.raw), req.contentType
	case req.body != nil:
		b, err := json.Marshal(req.body)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	hr, err := http.NewRequest(req.method, u, body)
	if err != nil {
		return fail(exitUsage, "bad server URL %q: %v", c.server, err)
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	hr.Header.Set("Accept", "application/json, application/problem+json")
	hr.Header.Set("Authorization", "Bearer "+c.token)
	if req.method == http.MethodPost || req.method == http.MethodPut {
		// A retried command is not applied twice by routes that honour it.
		hr.Header.Set("Idempotency-Key", newKey())
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return fail(exitAPI, "cannot reach %s: %v", c.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fail(exitAPI, "reading the answer: %v", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || len(bytes.TrimSpace(raw)) == 0 {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fail(exitAPI, "the server answered %d with something that is not JSON: %v", resp.StatusCode, err)
		}
		return nil
	}
	return c.problem(req, resp, raw)
}

func (c *client) problem(req request, resp *http.Response, raw []byte) error {
	code := exitAPI
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		code = exitAuth
	case http.StatusNotFound:
		code = exitNotFound
	}
	var p problem
	isProblem := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") && json.Unmarshal(raw, &p) == nil
	if resp.StatusCode == http.StatusNotFound && req.notFound != "" && (!isProblem || p.Detail == "") {
		return fail(code, "%s", req.notFound)
	}
	if !isProblem {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return fail(code, "%s %s: %s %s", req.method, req.path, resp.Status, msg)
	}
	if c.json {
		b, _ := json.MarshalIndent(json.RawMessage(raw), "", "  ")
		return fail(code, "%s", b)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s: %d %s", req.method, req.path, p.Status, p.Title)
	if p.Detail != "" {
		fmt.Fprintf(&sb, ": %s", p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&sb, "\n  %s: %s", e.Field, e.Message)
	}
	if p.Type != "" && p.Type != "about:blank" {
		fmt.Fprintf(&sb, "\n  (%s)", p.Type)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		sb.WriteString("\n  check CERTCTL_TOKEN or the token in the config file")
	}
	return fail(code, "%s", sb.String())
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newHTTPClient() *http.Client { return &http.Client{Timeout: 5 * time.Minute} }
