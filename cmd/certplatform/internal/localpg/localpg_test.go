package localpg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/testenv"
)

// SPEC §7: with no DATABASE_URL and no server on 127.0.0.1:5432, `make
// run` initialises a private cluster under DATA_DIR when the server
// binaries are installed (as the postgres user when run as root). This
// starts that cluster for real, creates the platform database in it, and
// starts it a second time on the same directory (no re-initdb).
func TestPrivateClusterStartsAndRestarts(t *testing.T) {
	bin, err := serverBinaries()
	if err != nil {
		t.Skip("no PostgreSQL server binaries here:", err)
	}
	dir := t.TempDir()
	// The cluster runs as postgres: it must be able to reach its directory.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		cl, admin, err := startPrivate(ctx, bin, filepath.Join(dir, "pg"), log)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		src, err := ensureDB(ctx, admin, DBName)
		if err != nil {
			cl.Stop()
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, src.URL)
		if err != nil {
			cl.Stop()
			t.Fatal(err)
		}
		var db string
		err = conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)
		conn.Close(ctx)
		cl.Stop()
		if err != nil || db != DBName {
			t.Fatalf("database %q (%v)", db, err)
		}
	}
}

// Issue 6 item 11: `make run` keeps its schemas in a database of its own,
// created when missing — also when DATABASE_URL names the maintenance
// database postgres — and uses any other database DATABASE_URL names as is.
func TestFindUsesADatabaseOfItsOwn(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	admin, err := withDatabase(testenv.AdminURL(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("certlife_t_localpg_%d", os.Getpid())
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, admin); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	for i, want := range []bool{true, false} {
		src, cl, err := FindNamed(ctx, admin, t.TempDir(), name, log)
		if err != nil || cl != nil {
			t.Fatal(err, cl)
		}
		if src.Database != name || src.Created != want || !strings.Contains(src.Server, "not its maintenance database postgres") {
			t.Fatalf("start %d: %+v", i, src)
		}
		conn, err := pgx.Connect(ctx, src.URL)
		if err != nil {
			t.Fatal(err)
		}
		var db string
		err = conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)
		conn.Close(ctx)
		if err != nil || db != name {
			t.Fatalf("connected to %q (%v)", db, err)
		}
	}
	// A DSN in key=value form keeps its settings and gets the database.
	if u, err := withDatabase("host=/tmp port=5433 user=postgres dbname=postgres sslmode=disable", name); err != nil ||
		func() string { n, _ := databaseName(u); return n }() != name {
		t.Fatalf("key=value: %q %v", u, err)
	}
	// Any other database is used as configured.
	own := testenv.Database(t)
	src, _, err := FindNamed(ctx, own, t.TempDir(), name, log)
	if err != nil || src.URL != own || src.Server != "server DATABASE_URL names" || src.Created {
		t.Fatalf("configured database: %+v %v", src, err)
	}
}

// SPEC §7 (split mode): the database DATABASE_URL names is created when it
// does not exist yet, and a second start finds it.
func TestEnsureCreatesTheNamedDatabase(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.ParseConfig(testenv.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("certlife_ensure_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", admin.User, admin.Host, admin.Port, name)
	t.Cleanup(func() {
		if c, err := pgx.Connect(ctx, testenv.AdminURL()); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	for i := 0; i < 2; i++ {
		if err := Ensure(ctx, url); err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect after ensure %d: %v", i, err)
		}
		c.Close(ctx)
	}
}
