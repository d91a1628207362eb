// Package localpg finds a Postgres for the all-in-one runner: the one named
// by DATABASE_URL, else the local server, else a private cluster it
// initialises under DATA_DIR when the server binaries are installed.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// LocalURL is the machine's own server, tried when DATABASE_URL is unset.
const LocalURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DBName is the database the platform keeps its schemas in.
const DBName = "certplatform"

// Cluster is a private cluster this process started; Stop ends it.
type Cluster struct {
	cmd *exec.Cmd
}

// Stop shuts the private cluster down (fast mode).
func (c *Cluster) Stop() {
	if c == nil || c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
	}
}

// Source says where the platform's database is, for the banner.
type Source struct {
	URL      string // connection string of the platform's database
	Database string // its name
	Server   string // "server DATABASE_URL names", "local server 127.0.0.1:5432", "private cluster in …"
	Created  bool   // the runner created the database on this start
}

// Find returns the platform's database: the one DATABASE_URL names, else
// the database certplatform on the local server, else on a private
// cluster. It never keeps its schemas in a maintenance database: when
// DATABASE_URL names postgres (or template0/1), certplatform is created
// beside it on that server and used instead.
func Find(ctx context.Context, configured, dataDir string, log *slog.Logger) (Source, *Cluster, error) {
	return FindNamed(ctx, configured, dataDir, DBName, log)
}

// FindNamed is Find with the database named dbName (split mode keeps its
// own database beside the all-in-one's).
func FindNamed(ctx context.Context, configured, dataDir, dbName string, log *slog.Logger) (Source, *Cluster, error) {
	if configured != "" {
		name, err := databaseName(configured)
		if err != nil {
			return Source{}, nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		if !maintenance(name) {
			return Source{URL: configured, Database: name, Server: "server DATABASE_URL names"}, nil, nil
		}
		src, err := ensureDB(ctx, configured, dbName)
		if err != nil {
			return Source{}, nil, err
		}
		src.Server = "server DATABASE_URL names (not its maintenance database " + name + ")"
		log.Info("DATABASE_URL names a maintenance database; using the platform's own", "database", src.Database)
		return src, nil, nil
	}
	if src, err := ensureDB(ctx, LocalURL, dbName); err == nil {
		src.Server = "local server 127.0.0.1:5432"
		log.Info("using the local Postgres server", "database", src.Database)
		return src, nil, nil
	}
	bin, err := serverBinaries()
	if err != nil {
		return Source{}, nil, fmt.Errorf("no DATABASE_URL, no Postgres on 127.0.0.1:5432, and %w", err)
	}
	dir := filepath.Join(dataDir, "pg")
	cl, url, err := startPrivate(ctx, bin, dir, log)
	if err != nil {
		return Source{}, nil, err
	}
	src, err := ensureDB(ctx, url, dbName)
	if err != nil {
		cl.Stop()
		return Source{}, nil, err
	}
	src.Server = "private cluster in " + dir
	return src, cl, nil
}

func maintenance(name string) bool {
	return name == "postgres" || name == "template0" || name == "template1"
}

func databaseName(connString string) (string, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return "", err
	}
	return cfg.Database, nil
}

// withDatabase is connString naming database name instead, everything
// else (password, TLS settings) kept.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// key=value form: a later dbname wins.
	return connString + " dbname=" + name, nil
}

// ensureDB connects to adminURL and creates the database name if
// needed; it returns that database.
func ensureDB(ctx context.Context, adminURL, name string) (Source, error) {
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return Source{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return Source{}, err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return Source{}, err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			// Another runner may have created it meanwhile.
			if qerr := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); qerr != nil || !exists {
				return Source{}, err
			}
		}
	}
	u, err := withDatabase(adminURL, name)
	if err != nil {
		return Source{}, err
	}
	return Source{URL: u, Database: name, Created: !exists}, nil
}

func serverBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries are installed (apt-get install postgresql)")
}

// startPrivate initialises (once) and starts a cluster listening only on
// a Unix socket inside dir. Postgres refuses to run as root, so as root it
// runs as the postgres user.
func startPrivate(ctx context.Context, bin, dir string, log *slog.Logger) (*Cluster, string, error) {
	data := filepath.Join(dir, "data")
	sock, err := filepath.Abs(filepath.Join(dir, "run"))
	if err != nil {
		return nil, "", err
	}
	cred, uid, gid, err := credential()
	if err != nil {
		return nil, "", err
	}
	for _, d := range []string{dir, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, "", err
		}
		if cred != nil {
			_ = os.Chown(d, uid, gid)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		log.Info("initialising a private Postgres cluster", "dir", data)
		initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("initdb: %v: %s", err, out)
		}
	}
	const port = 5433
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", sock, "-c", "listen_addresses=", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	logFile, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		cmd.Stdout, cmd.Stderr = logFile, logFile
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start postgres: %w", err)
	}
	url := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", sock, port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			c.Close(ctx)
			log.Info("private Postgres cluster running", "socket", sock)
			return &Cluster{cmd: cmd}, url, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	(&Cluster{cmd: cmd}).Stop()
	return nil, "", fmt.Errorf("private Postgres did not start; see %s", filepath.Join(dir, "postgres.log"))
}

func credential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, 0, 0, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, errors.New("running as root needs a postgres user to run the private cluster as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// Ensure creates the database that url names when it does not exist yet,
// connecting to the same server's postgres database to do so.
func Ensure(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // not "database does not exist"
		return err
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	if conn, err = pgx.ConnectConfig(cctx, admin); err != nil {
		return err
	}
	defer conn.Close(ctx)
	return createIfMissing(ctx, conn, cfg.Database)
}

func createIfMissing(ctx context.Context, conn *pgx.Conn, name string) error {
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile
		return nil
	}
	return err
}
