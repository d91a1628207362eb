// Package httpx holds the HTTP edge shared by every service: RFC 9457
// problem documents (SE-4), strict bounded JSON decoding, and JSON replies.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProblemBase prefixes every problem type; the types are stable API.
const ProblemBase = "https://certlife.dev/problems/"

// FieldError names one bad field of a request body, by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document. It is also an error, so domain
// code can return one and the edge writes it.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// RetryAfter, when set, becomes a Retry-After header (503, 429).
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// NewProblem builds a problem of a stable type slug.
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// Common problems.
func BadRequest(detail string) *Problem {
	return NewProblem(http.StatusBadRequest, "malformed-request", "Malformed request", detail)
}
func NotFound() *Problem {
	return NewProblem(http.StatusNotFound, "not-found", "Not found", "")
}
func Conflict(slug, detail string) *Problem {
	return NewProblem(http.StatusConflict, slug, "Conflict", detail)
}
func Unauthorized(detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, "unauthorized", "Unauthorized", detail)
}
func Forbidden(detail string) *Problem {
	return NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail)
}

// Invalid is a 422 with one error per bad field.
func Invalid(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "The request has invalid fields", "")
	p.Errors = errs
	return p
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((p.RetryAfter+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteError writes err as its problem document (FromError). A 500's
// cause is logged, never shown; a 503's cause is logged at warn.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p, ok := FromError(err)
	if log != nil {
		switch {
		case !ok:
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		case p.Status == http.StatusServiceUnavailable:
			log.Warn("request unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	WriteProblem(w, r, p)
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MaxBody is the default bound on request bodies (SE-4).
const MaxBody = 64 << 10

// DecodeJSON reads one JSON object of at most limit bytes into dst,
// refusing unknown fields and trailing data. The body must be sent as
// exactly application/json (SE-9), be valid UTF-8 and hold no NUL
// character in any string (SE-4): text with NUL or broken encoding would
// reach the database or a certificate otherwise. The returned problem is
// 415, 413, 408 (body not received in time), 400 (syntax, encoding) or
// 422 (unknown field, wrong type, NUL in a field).
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64) *Problem {
	if !MediaTypeIs(r.Header.Get("Content-Type"), "application/json") {
		return unsupported("application/json")
	}
	if limit <= 0 {
		limit = MaxBody
	}
	raw, p := ReadBody(w, r, limit)
	if p != nil {
		return p
	}
	if p := checkJSONText(raw); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return BadRequest("the body must hold exactly one JSON object")
	}
	return nil
}

// ReadBody reads the whole body, at most limit bytes: 413 beyond it, 408
// when the client stalls past the server's read deadline (SE-9), 400 when
// the connection breaks.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *Problem) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return raw, nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, NewProblem(http.StatusRequestTimeout, "request-timeout", "Request timeout",
			"the request body was not received in time")
	default:
		return nil, BadRequest("the body could not be read")
	}
}

func tooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
		fmt.Sprintf("at most %d bytes", limit))
}

func decodeProblem(err error, limit int64) *Problem {
	var (
		mbe    *http.MaxBytesError
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tm     *time.ParseError
	)
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.As(err, &syntax):
		return BadRequest(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("the body is empty or cut short")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return BadRequest("the body must be a JSON object")
		}
		return Invalid(FieldError{Field: field, Message: "must be a " + jsonKind(typ.Type.Kind().String())})
	case errors.As(err, &tm):
		return Invalid(FieldError{Field: "", Message: "a date-time is not RFC 3339: " + tm.Value})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(FieldError{Field: name, Message: "unknown field"})
	default:
		return BadRequest(err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	default:
		return "number"
	}
}
