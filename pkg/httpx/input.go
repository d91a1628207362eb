package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MediaTypeIs reports whether the Content-Type header value ct names
// exactly want (SE-9): the same type and subtype, with no parameter but
// an optional charset=utf-8. application/jsonp, application/json-seq or
// text/csv;charset=latin1 are not application/json or text/csv.
func MediaTypeIs(ct, want string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

func unsupported(types ...string) *Problem {
	return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
		"send Content-Type: "+strings.Join(types, " or ")+" (optionally with charset=utf-8)")
}

// RequireContentType lets through only requests whose Content-Type is
// exactly one of types (see MediaTypeIs); the others get a 415 problem.
// Mount it on routes that read a body other than JSON (text/csv);
// DecodeJSON checks application/json itself.
func RequireContentType(types ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ct := r.Header.Get("Content-Type")
			for _, t := range types {
				if MediaTypeIs(ct, t) {
					next.ServeHTTP(w, r)
					return
				}
			}
			WriteProblem(w, r, unsupported(types...))
		})
	}
}

// checkJSONText refuses a JSON body that is not valid UTF-8, or whose
// strings (keys or values) hold NUL or an unpaired UTF-16 surrogate
// escape. encoding/json would silently turn broken text into U+FFFD and
// keep NUL, which Postgres text refuses (a 500) and certificates must not
// carry.
func checkJSONText(raw []byte) *Problem {
	if !utf8.Valid(raw) {
		return BadRequest("the body is not valid UTF-8")
	}
	if !bytes.Contains(raw, []byte(`\u`)) {
		return nil // no escape, so no NUL and no surrogate: raw NUL is a JSON syntax error
	}
	if off := badEscape(raw); off >= 0 {
		if path := nulPath(raw); path != "" {
			return Invalid(FieldError{Field: path, Message: "must not contain NUL characters"})
		}
		return BadRequest("the body holds a NUL character or an unpaired UTF-16 surrogate at byte " + strconv.Itoa(off))
	}
	return nil
}

// badEscape returns the offset of the first \u0000 or unpaired surrogate
// escape inside a JSON string of raw, or -1.
func badEscape(raw []byte) int {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				v, ok := hex4(raw, i+2)
				switch {
				case !ok:
				case v == 0:
					return i
				case v >= 0xD800 && v < 0xDC00: // high surrogate: a low one must follow
					lo, ok := rune(0), i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u'
					if ok {
						lo, ok = hex4(raw, i+8)
					}
					if !ok || lo < 0xDC00 || lo >= 0xE000 {
						return i
					}
					i += 6
				case v >= 0xDC00 && v < 0xE000:
					return i
				}
				i += 5
			} else {
				i++
			}
		}
	}
	return -1
}

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// nulPath is the dotted path ("applicant.email", "items[2]") of the first
// key or string value holding NUL, or "" if none does.
func nulPath(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		array bool
		index int
		key   string
		isKey bool // the next string token of an object is a key
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	// after a value, an object expects a key next and an array moves on
	next := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].isKey = true
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ""
			}
			return "" // a syntax error is reported by the decoder itself
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{isKey: true})
			case '[':
				stack = append(stack, frame{array: true})
			default:
				stack = stack[:len(stack)-1]
				next()
			}
		case string:
			n := len(stack)
			if n > 0 && !stack[n-1].array && stack[n-1].isKey {
				stack[n-1].key = strings.ReplaceAll(v, "\x00", `\u0000`)
				stack[n-1].isKey = false
				if strings.ContainsRune(v, 0) {
					return path()
				}
				continue
			}
			if strings.ContainsRune(v, 0) {
				if p := path(); p != "" {
					return p
				}
				return "(body)"
			}
			next()
		default:
			next()
		}
	}
}

// cleanText reports whether s is valid UTF-8 without NUL or other
// control characters (tab allowed).
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidInput refuses, with a 400 problem, a request whose path, query,
// header values or Basic credentials hold NUL, another control character
// or invalid UTF-8 (SE-4): such text is no identifier, e-mail or token
// any route accepts, and passed on it turns into a 500 in Postgres
// ("invalid byte sequence") instead of an answer. The router mounts it
// before every route.
func ValidInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if detail := inputFault(r); detail != "" {
			WriteProblem(w, r, BadRequest(detail))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func inputFault(r *http.Request) string {
	if !cleanText(r.URL.Path) {
		return "the path holds a NUL byte, a control character or invalid UTF-8"
	}
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return "the query string is malformed"
		}
		for k, vs := range q {
			if !cleanText(k) {
				return "the query holds a NUL byte, a control character or invalid UTF-8"
			}
			for _, v := range vs {
				if !cleanText(v) {
					return "the query parameter " + strconv.Quote(k) + " holds a NUL byte, a control character or invalid UTF-8"
				}
			}
		}
	}
	for name, vs := range r.Header {
		for _, v := range vs {
			if !cleanText(v) {
				return "the header " + name + " holds a NUL byte, a control character or invalid UTF-8"
			}
		}
	}
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Basic") {
		// r.BasicAuth() hands the decoded user and password to the use
		// cases unchecked; base64 hides any byte from the header check.
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		if err == nil && !cleanText(string(raw)) {
			return "the Basic credentials hold a NUL byte, a control character or invalid UTF-8"
		}
	}
	return ""
}
