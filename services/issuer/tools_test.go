package issuer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/services/issuer"
)

// ci: under CI=true a test whose external tool is missing fails; on a
// developer's machine it skips, saying what to install.
var ci = os.Getenv("CI") == "true"

// needTool finds an external program or stops the test (fail under CI,
// skip otherwise).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (Debian package %s; .ci/run installs it)", name, pkg)
		if ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// run runs a program, failing the test with its output when it fails.
func run(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(dir, env, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, env []string, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}

// The zlint command (zmap/zlint/v3/cmd/zlint at the module's version,
// v3.7.3), built once per test binary from the module cache.
var zlintBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

func zlintCommand(t *testing.T) string {
	t.Helper()
	path, msg := buildZlint()
	if msg != "" {
		if ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// buildZlint builds the command once; msg says why it could not.
func buildZlint() (path, msg string) {
	zlintBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "zlint-cli-")
		if err != nil {
			zlintBuild.err = err
			return
		}
		zlintBuild.dir, zlintBuild.path = dir, filepath.Join(dir, "zlint")
		zlintBuild.out, zlintBuild.err = runErr(".", nil, nil, "go", "build", "-o", zlintBuild.path,
			"github.com/zmap/zlint/v3/cmd/zlint")
	})
	if zlintBuild.err != nil {
		return "", fmt.Sprintf("cannot build the zlint command: %v\n%s", zlintBuild.err, zlintBuild.out)
	}
	return zlintBuild.path, ""
}

// zlintCLI runs the real zlint command on PEM files and returns, per
// file, the results at warning level or above that lints-accepted.txt
// does not accept (dev scope included: tests run the issuer in dev mode).
func zlintCLI(t *testing.T, files []string) map[string][]string {
	t.Helper()
	accepted, err := issuer.LintsAccepted()
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "", nil, nil, zlintCommand(t), files...)
	findings := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	i := 0
	for ; sc.Scan(); i++ {
		var results map[string]struct {
			Result  string `json:"result"`
			Details string `json:"details"`
		}
		if err := json.Unmarshal(sc.Bytes(), &results); err != nil {
			t.Fatalf("zlint output line %d: %v", i+1, err)
		}
		if len(results) < 100 {
			t.Fatalf("zlint ran only %d lints", len(results))
		}
		for name, r := range results {
			switch r.Result {
			case "warn", "error", "fatal":
				if !accepted.Accepts(name, true) {
					findings[files[i]] = append(findings[files[i]], name+" "+r.Result+": "+r.Details)
				}
			}
		}
	}
	if i != len(files) {
		t.Fatalf("zlint answered for %d of %d certificates", i, len(files))
	}
	for _, f := range findings {
		sort.Strings(f)
	}
	return findings
}

// collectIssued runs at the end of every test that started an issuer
// (PC-17, IS-3): the zlint command lints every certificate the test
// issued — client and server certificates, and the precertificates of
// the latter — and the CA certificates, with the accepted list applied.
func collectIssued(t *testing.T, pool *pgxpool.Pool, caDir string) {
	t.Helper()
	if t.Skipped() {
		return
	}
	if _, msg := buildZlint(); msg != "" {
		if ci {
			t.Error(msg)
		} else {
			t.Log("zlint command not run: " + msg)
		}
		return
	}
	// Issued certificates, and the precertificates of server certificates
	// (IS-9: submitted to CT logs, so they must be as clean).
	rows, err := pool.Query(context.Background(), `SELECT serial, der FROM certificates WHERE der IS NOT NULL
		UNION ALL SELECT 'pre-' || serial, der FROM precertificates`)
	if err != nil {
		t.Errorf("zlint command: cannot read the issued certificates: %v", err)
		return
	}
	dir := t.TempDir()
	var files []string
	for rows.Next() {
		var serial string
		var der []byte
		if err := rows.Scan(&serial, &der); err != nil {
			t.Errorf("zlint command: %v", err)
			return
		}
		f := filepath.Join(dir, serial+".pem")
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if err := rows.Err(); err != nil {
		t.Errorf("zlint command: %v", err)
		return
	}
	cas, _ := filepath.Glob(filepath.Join(caDir, "*.pem"))
	files = append(files, cas...)
	findings := zlintCLI(t, files)
	for f, found := range findings {
		t.Errorf("zlint command on %s: %s", filepath.Base(f), strings.Join(found, "; "))
	}
	t.Logf("zlint command: %d certificates (%d CA), %d with findings", len(files), len(cas), len(findings))
}

// TestMain removes the zlint command built for this run.
func TestMain(m *testing.M) {
	code := m.Run()
	if zlintBuild.dir != "" {
		_ = os.RemoveAll(zlintBuild.dir)
	}
	os.Exit(code)
}
