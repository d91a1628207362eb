package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
)

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. It must
// outlast any delay between an outbox relay's publish and its commit.
const DuplicateWindow = 15 * time.Minute

// StreamMaxAge is how long the event stream keeps a message: the longest
// a stored event can wait before a consumer handles it.
const StreamMaxAge = 30 * 24 * time.Hour

// ReplayHorizon is the oldest an event may be (since it was first stored)
// and still be replayed from the quarantine or the dead letters.
const ReplayHorizon = 15 * 24 * time.Hour

// MinInboxRetention is the shortest inbox retention allowed: a replayed
// copy stored within ReplayHorizon of the original and handled within
// StreamMaxAge after that still meets the original's inbox row.
const MinInboxRetention = StreamMaxAge + ReplayHorizon

// advisorySubject catches the server's own notice that a message ran out
// of deliveries (e.g. a handler that crashed its process every time).
const advisorySubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + events.Stream + ".>"

// SetupStreams creates or updates the event and dead-letter streams. It is
// idempotent: every service calls it at start.
func SetupStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       events.Stream,
		Subjects:   []string{events.SubjectPrefix + ">"},
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     StreamMaxAge,
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
		Replicas:   replicas,
	})
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", events.Stream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       events.DeadLetterStream,
		Subjects:   []string{events.DeadLetterPrefix + ">", advisorySubject},
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     90 * 24 * time.Hour,
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
		Replicas:   replicas,
	})
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", events.DeadLetterStream, err)
	}
	return nil
}
