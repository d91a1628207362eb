package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/events"
)

// Quarantined is an outbox row JetStream refused, as operators see it.
type Quarantined struct {
	ID            int64           `json:"id"`
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	Subject       string          `json:"subject"`
	Bytes         int             `json:"bytes"`
	Error         string          `json:"error"`
	CreatedAt     time.Time       `json:"created_at"`
	QuarantinedAt time.Time       `json:"quarantined_at"`
	Replayable    bool            `json:"replayable"` // still inside ReplayHorizon
	Event         json.RawMessage `json:"event,omitempty"`
}

// quarantineShown is the largest event shown whole in a listing; larger
// ones (often the reason they were refused) show their size only.
const quarantineShown = 64 << 10

// ListQuarantined returns up to limit quarantined rows of the pool's
// schema, oldest first.
func ListQuarantined(ctx context.Context, pool *pgxpool.Pool, limit int) ([]Quarantined, error) {
	rows, err := pool.Query(ctx, `SELECT id, event_id::text, subject, length(payload),
			CASE WHEN length(payload) <= $2 THEN payload END, error, created_at, quarantined_at,
			created_at > now() - make_interval(secs => $3)
		FROM outbox_quarantine ORDER BY id LIMIT $1`, limit, quarantineShown, ReplayHorizon.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Quarantined, error) {
		var q Quarantined
		var payload []byte
		err := row.Scan(&q.ID, &q.EventID, &q.Subject, &q.Bytes, &payload, &q.Error, &q.CreatedAt, &q.QuarantinedAt, &q.Replayable)
		q.Type = events.TypeOfSubject(q.Subject)
		if json.Valid(payload) {
			q.Event = payload
		}
		return q, err
	})
}

// ErrNotQuarantined: no quarantined row with that ID.
var ErrNotQuarantined = errors.New("no such quarantined event")

// ReplayQuarantined moves a quarantined row back into the outbox, where
// the relay publishes it (same event ID, so the same Nats-Msg-Id) once
// woken. The row keeps its creation time: a row first written more than
// ReplayHorizon ago is refused (ErrReplayTooOld), so that no copy can
// outlive the inbox rows that would recognize it. Ages are Postgres's
// now(), the clock created_at was written with.
func ReplayQuarantined(ctx context.Context, pool *pgxpool.Pool, id int64) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var fresh bool
		err := tx.QueryRow(ctx, `SELECT created_at > now() - make_interval(secs => $2)
			FROM outbox_quarantine WHERE id = $1 FOR UPDATE`, id, ReplayHorizon.Seconds()).Scan(&fresh)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotQuarantined
		}
		if err != nil {
			return err
		}
		if !fresh {
			return fmt.Errorf("quarantined event %d: %w", id, ErrReplayTooOld)
		}
		if _, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM outbox_quarantine WHERE id = $1
				RETURNING event_id, subject, payload, created_at)
			INSERT INTO outbox (event_id, subject, payload, created_at)
			SELECT event_id, subject, payload, created_at FROM moved`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_outbox', '')`)
		return err
	})
}
