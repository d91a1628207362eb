// Package db opens a service's Postgres pool inside the service's own
// schema and applies its embedded migrations at start.
package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var platformMigrations embed.FS

// ConnectTimeout bounds each new connection unless the URL sets
// connect_timeout.
const ConnectTimeout = 5 * time.Second

var schemaName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Open connects to url with search_path set to schema, creates the schema,
// and applies the platform tables (outbox, inbox, timers) and then the
// service's own migrations (a directory of goose SQL files in migrations).
func Open(ctx context.Context, url, schema string, migrations fs.FS, log *slog.Logger) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("db: bad schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	// Every connection of this pool sees only the service's own schema: no
	// query can reach another service's tables by accident.
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = schema
	// A request must not hang on an unreachable Postgres: a connect that
	// does not finish in time fails, and the edge answers 503 (SE-8).
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if cfg.MaxConns < 10 {
		cfg.MaxConns = 10
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	if err := migrate(ctx, pool, schema, migrations, log); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS, log *slog.Logger) error {
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		// Two replicas may race to create it; the loser's error is harmless.
		var exists bool
		if qerr := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); qerr != nil || !exists {
			return fmt.Errorf("db: create schema %s: %w", schema, err)
		}
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	platform, err := fs.Sub(platformMigrations, "migrations")
	if err != nil {
		return err
	}
	sets := []struct {
		table string
		fsys  fs.FS
	}{
		{schema + ".goose_platform_version", platform},
		{schema + ".goose_db_version", migrations},
	}
	for i, set := range sets {
		if set.fsys == nil {
			continue
		}
		// One advisory lock ID per schema and set, so replicas of one
		// service migrate one at a time while services do not wait on each other.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(set.table)))
		if err != nil {
			return err
		}
		p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, set.fsys,
			goose.WithTableName(set.table), goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
		if err != nil {
			if i == 1 && errors.Is(err, goose.ErrNoMigrations) {
				continue
			}
			return fmt.Errorf("db: migrations for %s: %w", set.table, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("db: migrate %s: %w", set.table, err)
		}
		for _, r := range results {
			if log != nil {
				log.Info("migration applied", "table", set.table, "source", r.Source.Path, "duration", r.Duration)
			}
		}
	}
	return nil
}

func lockID(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64() >> 1)
}

// Querier is a pool, a connection or a transaction: what every store
// function runs on, so that the caller owns the transaction boundary.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InTx runs fn inside one transaction: the one place a service's state
// change and the events it emits are committed together.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}
