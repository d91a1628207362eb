package timer

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Parked is a timer that failed MaxAttempts times, as operators see it.
type Parked struct {
	Kind      string          `json:"kind"`
	Key       string          `json:"key"`
	DueAt     time.Time       `json:"due_at"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	ParkedAt  time.Time       `json:"parked_at"`
	Payload   json.RawMessage `json:"payload"`
}

// ListParked returns up to limit parked timers of the pool's schema,
// oldest parking first.
func ListParked(ctx context.Context, pool *pgxpool.Pool, limit int) ([]Parked, error) {
	rows, err := pool.Query(ctx, `SELECT kind, key, due_at, attempts, coalesce(last_error, ''), parked_at, payload
		FROM timers WHERE parked_at IS NOT NULL ORDER BY parked_at, kind, key LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Parked, error) {
		var p Parked
		err := row.Scan(&p.Kind, &p.Key, &p.DueAt, &p.Attempts, &p.LastError, &p.ParkedAt, &p.Payload)
		return p, err
	})
}

// ErrNotParked: no parked timer of that kind and key.
var ErrNotParked = errors.New("no such parked timer")

// RetryParked un-parks a timer and makes it due at now, with a fresh set
// of attempts; the worker is woken at once.
func RetryParked(ctx context.Context, pool *pgxpool.Pool, kind, key string, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE timers SET parked_at = NULL, attempts = 0, due_at = $3
			WHERE kind = $1 AND key = $2 AND parked_at IS NOT NULL`, kind, key, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotParked
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_timers', '')`)
		return err
	})
}
