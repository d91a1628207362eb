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
	"strconv"
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

// Options bound what one session may hold (SE-8): a statement that runs
// longer than StatementTimeout is cancelled, and a session left idle inside
// a transaction longer than IdleInTransactionTimeout is ended, so a stuck
// client can neither hold locks nor a connection for ever. Both are
// server-side settings sent at connect time; a DATABASE_URL that sets them
// itself (…?statement_timeout=5s) wins.
type Options struct {
	StatementTimeout         time.Duration // default 30s
	IdleInTransactionTimeout time.Duration // default 60s
}

// DefaultOptions are the bounds every pool gets unless told otherwise.
var DefaultOptions = Options{StatementTimeout: 30 * time.Second, IdleInTransactionTimeout: 60 * time.Second}

// Open is OpenWith the default options.
func Open(ctx context.Context, url, schema string, migrations fs.FS, log *slog.Logger) (*pgxpool.Pool, error) {
	return OpenWith(ctx, url, schema, migrations, log, DefaultOptions)
}

// OpenWith connects to url with search_path set to schema, creates the
// schema, and applies the platform tables (outbox, inbox, timers, …) and
// then the service's own migrations (a directory of goose SQL files).
func OpenWith(ctx context.Context, url, schema string, migrations fs.FS, log *slog.Logger, opts Options) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("db: bad schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	// Every connection of this pool sees only the service's own schema: no
	// query can reach another service's tables by accident.
	params := cfg.ConnConfig.RuntimeParams
	params["search_path"] = schema
	params["application_name"] = schema
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = DefaultOptions.StatementTimeout
	}
	if opts.IdleInTransactionTimeout <= 0 {
		opts.IdleInTransactionTimeout = DefaultOptions.IdleInTransactionTimeout
	}
	if _, set := params["statement_timeout"]; !set {
		params["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	if _, set := params["idle_in_transaction_session_timeout"]; !set {
		params["idle_in_transaction_session_timeout"] = strconv.FormatInt(opts.IdleInTransactionTimeout.Milliseconds(), 10)
	}
	// A request must not hang on an unreachable Postgres: a connect that
	// does not finish in time fails, and the edge answers 503 (SE-8).
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	if cfg.MaxConns < 10 {
		cfg.MaxConns = 10
	}
	// Migrations may legitimately run long (an index on a big table): they
	// get their own small pool without the statement bound.
	mcfg := cfg.Copy()
	mcfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	mcfg.MaxConns = 4
	mpool, err := pgxpool.NewWithConfig(ctx, mcfg)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
	}
	err = migrate(ctx, mpool, schema, migrations, log)
	mpool.Close()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: %w", err)
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
