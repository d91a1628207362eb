package httpx

import (
	"net/http"
	"time"

	"github.com/certlife/platform/pkg/errs"
)

var kinds = map[errs.Kind]struct {
	status int
	slug   string
	title  string
}{
	errs.KindMalformed:    {http.StatusBadRequest, "malformed-request", "Malformed request"},
	errs.KindUnauthorized: {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	errs.KindForbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	errs.KindNotFound:     {http.StatusNotFound, "not-found", "Not found"},
	errs.KindConflict:     {http.StatusConflict, "conflict", "Conflict"},
	errs.KindGone:         {http.StatusGone, "gone", "Gone"},
	errs.KindTooLarge:     {http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large"},
	errs.KindUnsupported:  {http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"},
	errs.KindInvalid:      {http.StatusUnprocessableEntity, "validation", "The request has invalid fields"},
	errs.KindTooMany:      {http.StatusTooManyRequests, "too-many-requests", "Too many requests"},
	errs.KindUnavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	errs.KindInternal:     {http.StatusInternalServerError, "internal", "Internal error"},
}

// FromError is the problem document of err: its *errs.Error as the
// caller may see it, a 503 with Retry-After for a dependency outage
// (SE-8), else a 500 that says nothing of the cause. ok is false for the
// 500, whose cause the caller should log.
func FromError(err error) (p *Problem, ok bool) {
	if p, isProblem := err.(*Problem); isProblem {
		return p, true
	}
	e, typed := errs.As(err)
	if !typed {
		if errs.Transient(err) {
			e = errs.Unavailable("", "a dependency is unavailable; try again shortly", 5*time.Second, err)
		} else {
			e = &errs.Error{Kind: errs.KindInternal}
		}
	}
	k, known := kinds[e.Kind]
	if !known {
		k = kinds[errs.KindInternal]
	}
	slug := e.Slug
	if slug == "" {
		slug = k.slug
	}
	p = NewProblem(k.status, slug, k.title, e.Detail)
	if e.Kind == errs.KindInternal {
		p.Detail = ""
	}
	for _, f := range e.Fields {
		p.Errors = append(p.Errors, FieldError{Field: f.Name, Message: f.Message})
	}
	p.RetryAfter = e.RetryAfter
	if (e.Kind == errs.KindUnavailable || e.Kind == errs.KindTooMany) && p.RetryAfter <= 0 {
		p.RetryAfter = 5 * time.Second
	}
	return p, e.Kind != errs.KindInternal
}
