// Package events is the platform's event contract: the envelope (EV-1), the
// subjects events travel on, and the versioned payload of every event and
// synchronous request. It depends on nothing of ours, so that any service —
// or a service written in another language — can implement it from this file.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Stream and subject names. Every event of type T is published on
// "events.T"; dead letters on "deadletter.<service>.<consumer>".
const (
	Stream           = "EVENTS"
	SubjectPrefix    = "events."
	DeadLetterStream = "DEADLETTERS"
	DeadLetterPrefix = "deadletter."
)

// Subject is the subject an event type is published on.
func Subject(eventType string) string { return SubjectPrefix + eventType }

// TypeOfSubject is the inverse of Subject.
func TypeOfSubject(subject string) string { return strings.TrimPrefix(subject, SubjectPrefix) }

// Envelope wraps every event (EV-1).
type Envelope struct {
	ID            uuid.UUID       `json:"id"`
	Type          string          `json:"type"`
	Version       int             `json:"version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	SubjectID     string          `json:"subject_id"`
	CorrelationID string          `json:"correlation_id"`
	Data          json.RawMessage `json:"data"`
}

// Payload is implemented by every event payload type.
type Payload interface {
	EventType() string
	// EventVersion is the newest version of the payload this code knows.
	EventVersion() int
	// AggregateID is the envelope's subject_id (e.g. the application ID).
	AggregateID() string
	// Validate reports a payload that parsed but is not usable.
	Validate() error
}

// ErrInvalid marks an envelope or payload that cannot be processed, ever:
// consumers dead-letter it instead of retrying.
var ErrInvalid = errors.New("invalid event")

// ErrUnknownVersion marks an event of a version newer than this code knows.
var ErrUnknownVersion = errors.New("unknown event version")

// New builds an envelope around p. correlationID ties the events of one
// application together; empty means "start a new correlation" (the event ID).
func New(p Payload, occurredAt time.Time, correlationID string) (Envelope, error) {
	if err := p.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%s: %w", p.EventType(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, err
	}
	if correlationID == "" {
		correlationID = id.String()
	}
	return Envelope{
		ID:            id,
		Type:          p.EventType(),
		Version:       p.EventVersion(),
		OccurredAt:    occurredAt.UTC(),
		SubjectID:     p.AggregateID(),
		CorrelationID: correlationID,
		Data:          data,
	}, nil
}

// Follow builds an event caused by cause, carrying its correlation ID.
func Follow(cause Envelope, p Payload, occurredAt time.Time) (Envelope, error) {
	return New(p, occurredAt, cause.CorrelationID)
}

// Parse decodes and checks an envelope. Errors wrap ErrInvalid or
// ErrUnknownVersion; both mean the message must be dead-lettered.
func Parse(raw []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return env, fmt.Errorf("%w: envelope: %v", ErrInvalid, err)
	}
	switch {
	case env.ID == uuid.Nil || env.ID.Version() != 7:
		return env, fmt.Errorf("%w: id must be a UUIDv7", ErrInvalid)
	case env.Type == "":
		return env, fmt.Errorf("%w: type missing", ErrInvalid)
	case env.Version < 1:
		return env, fmt.Errorf("%w: version missing", ErrInvalid)
	case env.OccurredAt.IsZero():
		return env, fmt.Errorf("%w: occurred_at missing", ErrInvalid)
	case len(env.Data) == 0:
		return env, fmt.Errorf("%w: data missing", ErrInvalid)
	}
	known, ok := versions[env.Type]
	if !ok {
		return env, fmt.Errorf("%w: unknown type %q", ErrInvalid, env.Type)
	}
	if env.Version > known {
		return env, fmt.Errorf("%w: %s v%d (this code knows v%d)", ErrUnknownVersion, env.Type, env.Version, known)
	}
	return env, nil
}

// Decode unmarshals the envelope's data into a payload of type T.
func Decode[T Payload](env Envelope) (T, error) {
	var p T
	if env.Type != p.EventType() {
		return p, fmt.Errorf("%w: want %s, got %s", ErrInvalid, p.EventType(), env.Type)
	}
	if env.Version > p.EventVersion() {
		return p, fmt.Errorf("%w: %s v%d", ErrUnknownVersion, env.Type, env.Version)
	}
	if err := json.Unmarshal(env.Data, &p); err != nil {
		return p, fmt.Errorf("%w: %s data: %v", ErrInvalid, env.Type, err)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%w: %s: %v", ErrInvalid, env.Type, err)
	}
	return p, nil
}

// Marshal encodes the envelope for the wire.
func (e Envelope) Marshal() ([]byte, error) { return json.Marshal(e) }

// Types lists every known event type.
func Types() []string {
	out := make([]string, 0, len(versions))
	for t := range versions {
		out = append(out, t)
	}
	return out
}

// required reports the first empty field of name/value pairs.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return fmt.Errorf("%s is required", pairs[i])
		}
	}
	return nil
}
