// Package retention bounds the tables a service writes on its hot paths:
// each service declares (table, time column, period) and a durable timer
// per table deletes what is older than the period, in batches, one
// transaction per batch, again and again until nothing is left, then every
// Interval. Because the pruning is a timer, it follows the injected clock,
// runs on one replica at a time, and a rule that keeps failing ends parked
// where operators see it.
package retention

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/timer"
)

// TimerKind is the kind of the pruning timers; the key is the table.
const TimerKind = "retention"

// Rule says how long rows of one table are kept.
type Rule struct {
	// Table is a table of the service's own schema.
	Table string
	// Column is a timestamp column: a row is old when it is older than Period.
	Column string
	Period time.Duration
	// Where, if set, is an extra SQL condition a row must also meet to be
	// deleted (written by the service, never from input), e.g.
	// "status <> 'pending'".
	Where string
	// Prune, if set, replaces the generic DELETE for a table whose age is
	// not one column (e.g. two tables pruned together): it deletes at most
	// limit rows older than cutoff inside tx and says how many. Column is
	// then unused.
	Prune func(ctx context.Context, tx pgx.Tx, cutoff time.Time, limit int) (int64, error)
	// Clock ages the rows; nil = the service's injected clock. Tables
	// whose timestamps are Postgres's now() and whose bound follows
	// JetStream's real-time windows (the inbox) use clock.Real.
	Clock clock.Clock
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Registry holds a service's rules and prunes by them.
type Registry struct {
	// Interval between two pruning passes of a table (default 1h).
	Interval time.Duration
	// Batch is the most rows one transaction deletes (default 1000).
	Batch int

	mu      sync.Mutex
	rules   map[string]Rule
	deleted *prometheus.CounterVec
}

// NewRegistry returns an empty registry whose metric is registered on reg
// (nil = nowhere).
func NewRegistry(reg prometheus.Registerer) *Registry {
	r := &Registry{rules: map[string]Rule{}, deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "retention_deleted_rows_total", Help: "Rows deleted by retention, per table.",
	}, []string{"table"})}
	if reg != nil {
		reg.MustRegister(r.deleted)
	}
	return r
}

// Register declares a rule; a table has one rule.
func (r *Registry) Register(rule Rule) error {
	if !identifier.MatchString(rule.Table) || (rule.Prune == nil && !identifier.MatchString(rule.Column)) {
		return fmt.Errorf("retention: bad table or column name %q.%q", rule.Table, rule.Column)
	}
	if rule.Period <= 0 {
		return fmt.Errorf("retention: %s: the period must be positive, not %s", rule.Table, rule.Period)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.rules[rule.Table]; dup {
		return fmt.Errorf("retention: %s has a rule already", rule.Table)
	}
	r.rules[rule.Table] = rule
	r.deleted.WithLabelValues(rule.Table) // at zero until the first pruning
	return nil
}

// Rules returns the declared rules, by table.
func (r *Registry) Rules() []Rule {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Rule, 0, len(r.rules))
	for _, rule := range r.rules {
		out = append(out, rule)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out
}

// Install registers the pruning handler on w and makes sure every rule has
// its timer (a first pass is due now; an existing timer keeps its time).
func (r *Registry) Install(ctx context.Context, pool *pgxpool.Pool, w *timer.Worker) error {
	if r.Interval <= 0 {
		r.Interval = time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	w.Handle(TimerKind, func(ctx context.Context, tx pgx.Tx, t timer.Timer) error { return r.prune(ctx, tx, w.Clock, t) })
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, rule := range r.Rules() {
			if _, err := tx.Exec(ctx, `INSERT INTO timers (kind, key, due_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				TimerKind, rule.Table, w.Clock.Now()); err != nil {
				return fmt.Errorf("retention: %s: %w", rule.Table, err)
			}
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify(current_schema() || '_timers', '')`)
		return err
	})
}

// prune deletes one batch of the timer's table and schedules the next
// pass: at once when the batch was full, else after Interval.
func (r *Registry) prune(ctx context.Context, tx pgx.Tx, svcClock clock.Clock, t timer.Timer) error {
	r.mu.Lock()
	rule, ok := r.rules[t.Key]
	r.mu.Unlock()
	if !ok {
		return nil // the rule was dropped: its timer ends here
	}
	ages := rule.Clock
	if ages == nil {
		ages = svcClock
	}
	cutoff := ages.Now().Add(-rule.Period)
	var n int64
	if rule.Prune != nil {
		var err error
		if n, err = rule.Prune(ctx, tx, cutoff, r.Batch); err != nil {
			return fmt.Errorf("retention: %s: %w", rule.Table, err)
		}
	} else {
		table := pgx.Identifier{rule.Table}.Sanitize()
		cond := pgx.Identifier{rule.Column}.Sanitize() + " < $1"
		if rule.Where != "" {
			cond += " AND (" + rule.Where + ")"
		}
		// ctid batches: a bounded DELETE without needing a key column.
		tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE ctid = ANY(ARRAY(SELECT ctid FROM `+table+` WHERE `+cond+` LIMIT $2))`,
			cutoff, r.Batch)
		if err != nil {
			return fmt.Errorf("retention: %s: %w", rule.Table, err)
		}
		n = tag.RowsAffected()
	}
	r.deleted.WithLabelValues(rule.Table).Add(float64(n))
	next := svcClock.Now().Add(r.Interval)
	if n >= int64(r.Batch) {
		next = svcClock.Now()
	}
	return timer.Schedule(ctx, tx, TimerKind, rule.Table, next, nil)
}

// Deleted is the counter of deleted rows, by table.
func (r *Registry) Deleted() *prometheus.CounterVec { return r.deleted }
