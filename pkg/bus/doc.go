// Package bus carries events between services: JetStream streams, the
// transactional outbox and its relay, and consumers with an inbox, retries
// and a dead-letter stream (EV-2, EV-3), built to survive the failures of
// its own dependencies (SE-8, SE-9, EV-4).
//
// # Sorting failures
//
// A handler's error is one of three things, and each is treated its own way:
//
//   - An outage (errs.Transient: Postgres or NATS unreachable, a timeout, a
//     serialization failure): the work itself is fine and will succeed
//     later. The message is redelivered after a short delay and the
//     attempt is not counted. The consumer also checks its service's
//     health (Postgres ping, NATS connected); while that fails, every
//     consumer of the service stops fetching and a probe resumes them by
//     itself once the dependencies answer. Nothing is dead-lettered
//     because of an outage, however long.
//   - A fault of the work (any other error): counted. The count is ours,
//     not the server's: JetStream's MaxDeliver is unlimited, because the
//     server cannot tell an outage from a fault; each counted failure is a
//     row in consumer_failures (keyed by consumer and stream sequence)
//     written after the handler's transaction rolled back. Consumer.MaxDeliver
//     counted failures dead-letter the message, with Consumer.Backoff
//     between them. A row lives only while its message is failing; if the
//     counting write itself fails, Postgres is in trouble and the attempt
//     is treated as an outage.
//   - A message that can never succeed (Permanent, an invalid or unknown-
//     version event, no handler for its type) or a bug (a panic, recovered
//     with its stack): dead-lettered at once; the process lives on.
//
// A handler runs under a deadline (Consumer.HandlerTimeout) shorter than
// the ack wait, so the server never redelivers a message that is still
// being handled. A handler that overruns its deadline while the service is
// healthy is a fault (counted); while it is not, an outage.
//
// # Outbox, quarantine and replay
//
// The relay publishes with a timeout. A row JetStream refuses for good
// (over the server's max payload, rejected by the stream) is moved to
// outbox_quarantine in the batch's transaction, so the rows behind it
// flow; operators list and replay it. Replay, like the relay's own
// re-publishing after a crash, may store an event a second time after the
// stream's duplicate window: only the consumers' inboxes catch it then. So
// the inbox outlives anything that can be replayed: a stored copy can wait
// in the stream for at most StreamMaxAge before it is consumed, the inbox
// keeps a row at least MinInboxRetention = StreamMaxAge + ReplayHorizon,
// and a replay (quarantine or dead letter) of an event first stored more
// than ReplayHorizon ago is refused (ErrReplayTooOld).
package bus
