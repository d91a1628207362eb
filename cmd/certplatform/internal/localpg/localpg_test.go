package localpg

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
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
		url, err := ensureDB(ctx, admin, DBName)
		if err != nil {
			cl.Stop()
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, url)
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
