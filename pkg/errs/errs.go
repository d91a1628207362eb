// Package errs is the one error vocabulary of every service, after
// Boulder's berrors: use cases and domain code return an *Error that says
// what kind of failure it is and what the caller may be told; the HTTP
// edge (and only the edge) turns it into an RFC 9457 problem. Nothing here
// knows HTTP.
package errs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Kind classifies an error for the caller.
type Kind int

const (
	KindInternal     Kind = iota // a bug or an unexpected failure: nothing is said
	KindMalformed                // the request cannot be read (400)
	KindUnauthorized             // credentials missing or wrong (401)
	KindForbidden                // authenticated, not allowed (403)
	KindNotFound                 // no such thing, or not the caller's (404)
	KindConflict                 // not in a state that allows it (409)
	KindGone                     // existed, gone for good (410)
	KindTooLarge                 // body over its bound (413)
	KindUnsupported              // content type not accepted (415)
	KindInvalid                  // fields not acceptable (422), see Fields
	KindTooMany                  // throttled (429), see RetryAfter
	KindUnavailable              // a dependency or the service is down (503), see RetryAfter
)

// Field is one bad field of a request, by its JSON path.
type Field struct {
	Name    string
	Message string
}

// Error is a typed error with what the caller may be told. Err is the
// cause, logged but never shown.
type Error struct {
	Kind Kind
	// Slug is the stable problem type ("cancel-window-closed"); empty = the kind's default.
	Slug       string
	Detail     string
	Fields     []Field
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" && e.Slug != "" {
		msg = e.Slug
	}
	for _, f := range e.Fields {
		if msg != "" {
			msg += "; "
		}
		msg += f.Name + ": " + f.Message
	}
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func (k Kind) String() string {
	switch k {
	case KindMalformed:
		return "malformed"
	case KindUnauthorized:
		return "unauthorized"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindGone:
		return "gone"
	case KindTooLarge:
		return "too large"
	case KindUnsupported:
		return "unsupported media type"
	case KindInvalid:
		return "invalid"
	case KindTooMany:
		return "too many requests"
	case KindUnavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// As returns err's *Error, if it has one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf is err's kind: its *Error's, KindUnavailable for a transient
// outage, else KindInternal.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	if Transient(err) {
		return KindUnavailable
	}
	return KindInternal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Constructors, one per kind.

func Malformed(detail string) *Error { return &Error{Kind: KindMalformed, Detail: detail} }

func Unauthorized(detail string) *Error { return &Error{Kind: KindUnauthorized, Detail: detail} }

func Forbidden(detail string) *Error { return &Error{Kind: KindForbidden, Detail: detail} }

func NotFound(detail string) *Error { return &Error{Kind: KindNotFound, Detail: detail} }

func Conflict(slug, detail string) *Error {
	return &Error{Kind: KindConflict, Slug: slug, Detail: detail}
}

func Gone(slug, detail string) *Error { return &Error{Kind: KindGone, Slug: slug, Detail: detail} }

func TooLarge(limit int64) *Error {
	return &Error{Kind: KindTooLarge, Detail: fmt.Sprintf("at most %d bytes", limit)}
}

func Unsupported(detail string) *Error { return &Error{Kind: KindUnsupported, Detail: detail} }

// Invalid is one 422 naming every bad field.
func Invalid(fields ...Field) *Error { return &Error{Kind: KindInvalid, Fields: fields} }

// InvalidField is Invalid with one field.
func InvalidField(name, message string) *Error {
	return Invalid(Field{Name: name, Message: message})
}

func TooMany(slug, detail string, retry time.Duration) *Error {
	return &Error{Kind: KindTooMany, Slug: slug, Detail: detail, RetryAfter: retry}
}

// Unavailable is a 503: the service, or a dependency, cannot answer now.
func Unavailable(slug, detail string, retry time.Duration, cause error) *Error {
	return &Error{Kind: KindUnavailable, Slug: slug, Detail: detail, RetryAfter: retry, Err: cause}
}

// Transient reports whether err is an outage rather than a fault of the
// work itself: Postgres or NATS unreachable or restarting, a timeout, a
// serialization failure or deadlock. Such work is retried later and never
// counts as the caller's mistake (SE-8).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := As(err); ok && e.Kind == KindUnavailable {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, crash, cannot connect now
			return true
		case pgErr.Code == "57014": // statement_timeout
			return true
		case pgErr.Code == "53300", pgErr.Code == "53000": // too many connections, insufficient resources
			return true
		case pgErr.Code == "25P03": // idle_in_transaction_session_timeout
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, nats.ErrJetStreamNotEnabled):
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.Code == 503 || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// A connection the server (or the network) closed mid-query: pgx says
	// only "unexpected EOF".
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return false
}
