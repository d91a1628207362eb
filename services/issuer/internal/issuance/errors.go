package issuance

import "fmt"

// Kind classifies a domain error; the HTTP edge turns it into a problem.
type Kind int

const (
	KindNotFound Kind = iota + 1
	KindInvalid       // a field of the request is not acceptable (422)
	KindConflict      // the certificate is not in a state that allows it (409)
	KindGone          // it existed and is gone for good (410)
)

// Error is a domain error with what the caller may be told.
type Error struct {
	Kind   Kind
	Slug   string // stable problem type for conflicts and gones
	Field  string // for KindInvalid
	Detail string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Detail)
	}
	return e.Detail
}

func notFound() error { return &Error{Kind: KindNotFound, Detail: "no such certificate"} }

func invalid(field, detail string) error {
	return &Error{Kind: KindInvalid, Field: field, Detail: detail}
}

func conflict(slug, detail string) error {
	return &Error{Kind: KindConflict, Slug: slug, Detail: detail}
}
