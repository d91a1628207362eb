package split

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/events"
)

// keptOnFailure is a temporary directory that stays for a post-mortem
// when the test fails.
func keptOnFailure(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "split-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("split mode's files are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// buildBinaries builds the multi-call binary and every service binary,
// as `make build` does.
func buildBinaries(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go env GOWORK: %v %q", err, out)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	pkgs := []string{"./cmd/certplatform"}
	for _, g := range Services {
		pkgs = append(pkgs, "./services/"+g.Service+"/cmd/"+g.Service)
	}
	pkgs = append(pkgs, "./services/validation/cmd/validation-agent") // VA-7's processes
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return dir
}

type supervisor struct {
	cmd    *exec.Cmd
	exited chan error
	state  State
	data   string
	dbURL  string
}

func startSupervisor(t *testing.T, bin, data, dbURL string) *supervisor {
	t.Helper()
	out, err := os.Create(filepath.Join(data, "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd := exec.Command(filepath.Join(bin, "certplatform"), "split")
	cmd.Env = append(os.Environ(),
		"DATA_DIR="+data, "DATABASE_URL="+dbURL, "HTTP_ADDR=127.0.0.1:0",
		"NATS_URL=", "SMTP_ADDR=", "CLOCK_CONTROL=false", "PUBLIC_URL=",
		"CANCEL_WINDOW="+cancelWindow, "REVIEW_AUTO_APPROVE=true",
		"OPS_TOKENS="+opsToken+":admin", "LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = out, out
	// If this test binary dies, so does split mode (and its children with it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &supervisor{cmd: cmd, exited: make(chan error, 1), data: data, dbURL: dbURL}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, data)
			s.diagnose(t)
		}
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	path := filepath.Join(data, "run", "split.json")
	waitFor(t, ctx, "split mode to be ready ("+path+")", func() bool {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("the supervisor exited: %v", err)
		default:
		}
		raw, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(raw, &s.state) == nil && s.state.PID == cmd.Process.Pid
	})
	return s
}

func (s *supervisor) pid(t *testing.T, name string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.data, "run", name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

func (s *supervisor) pids(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range s.state.Processes {
		out[p.Name] = s.pid(t, p.Name)
	}
	return out
}

// kill sends SIGKILL to a process by its PID file and returns the PID.
func (s *supervisor) kill(t *testing.T, name string) int {
	t.Helper()
	pid := s.pid(t, name)
	if pid == 0 {
		t.Fatalf("no PID file for %s", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (%d): %v", name, pid, err)
	}
	t.Logf("kill -9 %s (pid %d)", name, pid)
	return pid
}

// waitRestarted waits until name runs again under a new PID and answers
// its health check.
func (s *supervisor) waitRestarted(t *testing.T, ctx context.Context, name string, old int) {
	t.Helper()
	var health string
	for _, p := range s.state.Processes {
		if p.Name == name {
			health = p.Health
		}
	}
	waitFor(t, ctx, name+" to come back with a new PID", func() bool {
		pid := s.pid(t, name)
		if pid == 0 || pid == old || syscall.Kill(pid, 0) != nil {
			return false
		}
		resp, err := http.Get(health)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Logf("%s is back (pid %d, was %d)", name, s.pid(t, name), old)
}

func (s *supervisor) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			t.Fatalf("the supervisor ended with %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the supervisor did not stop within 2 minutes of SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(s.data, "run", "split.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("split.json left behind: %v", err)
	}
}

// proxyRetries reads the proxy's retry counter (summed over services).
func proxyRetries(api string) string {
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	total := 0.0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "certlife_proxy_retries_total{") {
			if v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64); err == nil {
				total += v
			}
		}
	}
	return strconv.FormatFloat(total, 'f', 0, 64)
}

// streamLeader names the NATS node leading the EVENTS stream.
func streamLeader(t *testing.T, url string) string {
	t.Helper()
	nc, js := connect(t, url)
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != NATSNodes || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream %s: %d replicas, cluster %+v", events.Stream, info.Config.Replicas, info.Cluster)
	}
	return info.Cluster.Leader
}

func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// streamEvents reads every event of a type on the stream. Unlike
// testenv.StreamEvents it reads again when a pull fails: on a cluster the
// first pulls of a new consumer may find no responder yet.
func streamEvents(t *testing.T, ctx context.Context, js jetstream.JetStream, eventType string) []events.Envelope {
	t.Helper()
	for {
		cons, err := js.OrderedConsumer(ctx, events.Stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{events.Subject(eventType)},
		})
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []events.Envelope
		for uint64(len(out)) < info.NumPending {
			msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
			if err != nil {
				break
			}
			env, err := events.Parse(msg.Data())
			if err != nil {
				t.Fatalf("bad event on the stream: %v", err)
			}
			out = append(out, env)
		}
		if uint64(len(out)) == info.NumPending {
			return out
		}
		if err := pause(ctx); err != nil {
			t.Fatalf("read %d of %d %s events: %v", len(out), info.NumPending, eventType, err)
		}
	}
}

// unsettled says what is still busy: a consumer with messages pending or
// unacknowledged, an outbox row not yet published, a timer due. "" =
// settled.
func unsettled(ctx context.Context, js jetstream.JetStream, db *pgx.Conn) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, events.Stream)
	if err != nil {
		return err.Error()
	}
	consumers := s.ListConsumers(cctx)
	n := 0
	for info := range consumers.Info() {
		n++
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Sprintf("consumer %s: %d pending, %d unacknowledged", info.Name, info.NumPending, info.NumAckPending)
		}
	}
	if err := consumers.Err(); err != nil {
		return err.Error()
	}
	if n == 0 {
		return "no consumer on the stream"
	}
	for _, g := range Services {
		var outbox, due int
		err := db.QueryRow(cctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s.outbox), (SELECT count(*) FROM %[1]s.timers WHERE due_at <= now())`,
			pgx.Identifier{g.Service}.Sanitize())).Scan(&outbox, &due)
		switch {
		case err != nil:
			return err.Error()
		case outbox != 0:
			return fmt.Sprintf("%s: %d outbox rows", g.Service, outbox)
		case due != 0:
			return fmt.Sprintf("%s: %d timers due", g.Service, due)
		}
	}
	return ""
}

// waitFor polls cond until it holds; the deadline is ctx's. why, when
// given, says what was last seen.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool, why ...*string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			if len(why) > 0 {
				t.Fatalf("gave up waiting for %s: %s", what, *why[0])
			}
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// diagnose logs the state of the stream, its consumers, and every
// service's outbox and timers (a failed run's post-mortem).
func (s *supervisor) diagnose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if nc, err := nats.Connect(s.state.NATSURL); err == nil {
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if st, err := js.Stream(ctx, events.Stream); err == nil {
			if info, err := st.Info(ctx); err == nil {
				t.Logf("stream %s: %d messages, cluster %+v", events.Stream, info.State.Msgs, info.Cluster)
			}
			for info := range st.ListConsumers(ctx).Info() {
				t.Logf("consumer %s: pending %d, ack pending %d, redelivered %d, waiting %d, delivered %d, ack floor %d, leader %v",
					info.Name, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting,
					info.Delivered.Stream, info.AckFloor.Stream, info.Cluster)
			}
		} else {
			t.Logf("stream: %v", err)
		}
	}
	db, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Logf("database: %v", err)
		return
	}
	defer db.Close(ctx)
	for _, g := range Services {
		rows, err := db.Query(ctx, fmt.Sprintf(`SELECT kind, count(*), min(due_at) FROM %s.timers GROUP BY kind`, pgx.Identifier{g.Service}.Sanitize()))
		if err == nil {
			for rows.Next() {
				var kind string
				var n int
				var due time.Time
				_ = rows.Scan(&kind, &n, &due)
				t.Logf("%s timers %s: %d, first due %s", g.Service, kind, n, due.Format(time.RFC3339Nano))
			}
			rows.Close()
		}
		var outbox int
		_ = db.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s.outbox`, pgx.Identifier{g.Service}.Sanitize())).Scan(&outbox)
		t.Logf("%s outbox: %d", g.Service, outbox)
	}
	var active []string
	rows, err := db.Query(ctx, `SELECT coalesce(application_name, ''), state, wait_event_type || ':' || wait_event, left(query, 120)
		FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()`)
	if err == nil {
		for rows.Next() {
			var a, b, c, d *string
			_ = rows.Scan(&a, &b, &c, &d)
			active = append(active, fmt.Sprintf("%v %v %v %v", deref(a), deref(b), deref(c), deref(d)))
		}
		rows.Close()
	}
	t.Logf("busy database sessions: %d\n%s", len(active), strings.Join(active, "\n"))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func dumpLogs(t *testing.T, data string) {
	files, _ := filepath.Glob(filepath.Join(data, "split", "log", "*.log"))
	files = append([]string{filepath.Join(data, "supervisor.log")}, files...)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
		var keep []string
		for _, l := range lines {
			if !strings.Contains(l, `"level":"INFO"`) && !strings.Contains(l, "[INF]") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 25 {
			keep = keep[len(keep)-25:]
		}
		t.Logf("==== %s (%d lines, last warnings and errors)\n%s", filepath.Base(f), len(lines), strings.Join(keep, "\n"))
	}
}
