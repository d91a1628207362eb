package split

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// Applications driven through split mode (N clients at once).
const applications = 20

const (
	opsToken     = "split-test-ops-token-0123456789abcdef"
	password     = "an application password"
	p12Password  = "a strong p12 password"
	cancelWindow = "3s"
)

var codeRe = regexp.MustCompile(`[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}`)

// EV-4 (SPEC §2 scale-out, §7 `make run-split`): split mode — a 3-node
// NATS JetStream cluster with 3-replica streams, two intake and two issuer
// replicas, one of every other service, the mail sink and the proxy, each
// its own process — drives client applications through the whole flow
// over the proxy while one NATS node (the EVENTS stream's leader), one
// intake replica and one issuer replica are killed with -9 and come back
// with new PIDs. Every application completes, with exactly one certificate
// and exactly one certificate-code mail; SIGTERM then stops every process.
func TestSplitModeSurvivesKilledNodeAndReplicas_EV4(t *testing.T) {
	bin := buildBinaries(t)
	data := keptOnFailure(t)
	sup := startSupervisor(t, bin, data, testenv.Database(t))
	st := sup.state
	dbURL := sup.dbURL

	// Coupons for every application (billing, through the proxy).
	var csv strings.Builder
	csv.WriteString("number,product,expires_at\n")
	for i := range applications {
		fmt.Fprintf(&csv, "%08d-%08d,client,2030-12-31\n", 50000000+i, 60000000+i)
	}
	if r := call(context.Background(), "POST", st.API+"/ops/v1/coupons", csv.String(), "Content-Type", "text/csv",
		"Authorization", "Bearer "+opsToken); r.err != nil || r.status != 200 {
		t.Fatalf("coupon import: %d %v %s", r.status, r.err, r.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	f := &flow{api: st.API, mail: newMailbox(st.MailDir), killsDone: make(chan struct{})}
	results := make(chan result, applications)
	nonce := time.Now().UnixNano() % 1e9
	for i := range applications {
		go func() {
			email := fmt.Sprintf("split%02d-%d@example.co.jp", i, nonce)
			res, err := f.client(ctx, fmt.Sprintf("%08d-%08d", 50000000+i, 60000000+i), email)
			res.email, res.err = email, err
			results <- res
		}()
	}

	// The kills, each when its condition holds, while the flow runs.
	killed := map[string]int{}
	waitFor(t, ctx, "half of the applications submitted", func() bool { return f.submitted.Load() >= applications/2 })
	leader := streamLeader(t, st.NATSURL)
	killed[leader] = sup.kill(t, leader)
	waitFor(t, ctx, "every application submitted", func() bool { return f.submitted.Load() == applications })
	killed["intake-1"] = sup.kill(t, "intake-1")
	waitFor(t, ctx, "retrievals under way", func() bool { return f.retrieving.Load() >= 3 })
	killed["issuer-1"] = sup.kill(t, "issuer-1")
	for name, old := range killed {
		sup.waitRestarted(t, ctx, name, old)
	}
	close(f.killsDone) // downloads (once only, PC-14) wait for this

	done := map[string]result{}
	for range applications {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("%s: %v", r.email, r.err)
			}
			done[r.email] = r
		case <-ctx.Done():
			t.Fatalf("only %d of %d applications completed", len(done), applications)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Let the platform settle (redeliveries after the kills included)
	// before counting: no consumer has anything pending or unacknowledged,
	// no outbox row is unpublished, no timer is due.
	nc, js := connect(t, st.NATSURL)
	defer nc.Close()
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var busy string
	waitFor(t, ctx, "the platform to settle", func() bool {
		busy = unsettled(ctx, js, db)
		return busy == ""
	}, &busy)

	// Exactly one certificate per application (IS-5): one row at the
	// issuer, one CertificateReady announced, and the one delivered.
	ready := map[string]map[string]bool{}
	for _, env := range streamEvents(t, ctx, js, events.TypeCertificateReady) {
		ev, err := events.Decode[events.CertificateReady](env)
		if err != nil {
			t.Fatal(err)
		}
		if ready[env.SubjectID] == nil {
			ready[env.SubjectID] = map[string]bool{}
		}
		ready[env.SubjectID][ev.CertificateID] = true
	}
	for email, r := range done {
		var n int
		var serial string
		if err := db.QueryRow(ctx, `SELECT count(*), coalesce(max(serial), '') FROM issuer.certificates WHERE application_id = $1`,
			r.application).Scan(&n, &serial); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%s: %d certificates for application %s, want 1", email, n, r.application)
		}
		if len(ready[r.application]) != 1 {
			t.Errorf("%s: %d distinct certificates announced ready, want 1", email, len(ready[r.application]))
		}
		if serial != r.serial {
			t.Errorf("%s: delivered serial %s, issuer holds %s", email, r.serial, serial)
		}
	}

	// Exactly one certificate-code mail per applicant (PC-13, PC-16).
	mails, err := testenv.ReadMailDir(st.MailDir)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int{}
	for _, m := range mails {
		if codeRe.MatchString(m.Body) {
			for _, to := range m.To {
				codes[to]++
			}
		}
	}
	for email := range done {
		if codes[email] != 1 {
			t.Errorf("%s: %d certificate-code mails, want 1", email, codes[email])
		}
	}

	// SIGTERM stops every process.
	pids := sup.pids(t)
	sup.stop(t)
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still runs after the supervisor stopped: %v", name, pid, err)
		}
	}
}

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
		return err == nil && json.Unmarshal(raw, &s.state) == nil
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

// flow is the client side: front-end applications driving the API.
type flow struct {
	api        string
	mail       *mailbox
	submitted  atomic.Int64
	retrieving atomic.Int64
	killsDone  chan struct{}
}

type result struct {
	email, application, serial string
	err                        error
}

// client runs one application through the whole flow: submit, code by
// mail, session, retrieval, PKCS#12 download, status issued.
func (f *flow) client(ctx context.Context, coupon, email string) (result, error) {
	var res result
	body := map[string]any{
		"product": "client", "coupon": coupon, "password": password, "language": "ja",
		"organization": map[string]any{"company_code": "984940947", "name_ja": "日本ベリサイン株式会社", "name_en": "VeriSign Japan K.K."},
		"applicant": map[string]any{"name_ja": "辺利 太郎", "name_en": "Veri Taro", "title_ja": "本部長", "department_ja": "経理部",
			"title_en": "Director, Accounting Dept.", "email": email, "phone": "0350001111",
			"address": map[string]any{"postal_code": "1040028", "prefecture": "東京都", "city": "中央区",
				"street": "八重洲2-8-1", "building": "日東ビル13F"}},
	}
	// One Idempotency-Key for every attempt of this submission (SE-6).
	r := retry(ctx, "POST", f.api+"/v1/applications", body, "Idempotency-Key", uuid.NewString())
	if r.status != http.StatusAccepted {
		return res, fmt.Errorf("submit: %s", r)
	}
	var app struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.body, &app); err != nil {
		return res, err
	}
	res.application = app.ID
	f.submitted.Add(1)

	code, err := f.mail.waitCode(ctx, email)
	if err != nil {
		return res, err
	}
	r = retry(ctx, "POST", f.api+"/v1/sessions", map[string]string{"email": email, "password": password, "certificate_code": code})
	if r.status != http.StatusCreated {
		return res, fmt.Errorf("session: %s", r)
	}
	var sess struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(r.body, &sess); err != nil {
		return res, err
	}
	auth := []string{"Authorization", "Bearer " + sess.Token}

	var certs struct {
		Certificates []struct {
			ID            string `json:"id"`
			ApplicationID string `json:"application_id"`
		} `json:"certificates"`
	}
	for len(certs.Certificates) == 0 {
		r = retry(ctx, "GET", f.api+"/v1/certificates?eligible_for=retrieval", nil, auth...)
		if r.status != http.StatusOK {
			return res, fmt.Errorf("certificates: %s", r)
		}
		if err := json.Unmarshal(r.body, &certs); err != nil {
			return res, err
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
	if len(certs.Certificates) != 1 || certs.Certificates[0].ApplicationID != app.ID {
		return res, fmt.Errorf("ready for retrieval: %+v", certs.Certificates)
	}
	cert := certs.Certificates[0].ID

	// The retrieval signs at once; asking again is idempotent (SPEC §5).
	f.retrieving.Add(1)
	r = retry(ctx, "POST", f.api+"/v1/certificates/"+cert+"/retrieval",
		map[string]any{"accept_terms": true, "pkcs12_password": p12Password}, auth...)
	if r.status != http.StatusAccepted {
		return res, fmt.Errorf("retrieval: %s", r)
	}
	for {
		r = retry(ctx, "GET", f.api+"/v1/certificates/"+cert+"/retrieval", nil, auth...)
		var progress struct {
			Status string `json:"status"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &progress) != nil || progress.Status == "failed" {
			return res, fmt.Errorf("retrieval progress: %s", r)
		}
		if progress.Status == "ready" {
			break
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
	// The PKCS#12 is served once (PC-14): an answer lost to a replica
	// killed mid-download cannot be asked again, so downloads wait until
	// the kills are over.
	select {
	case <-f.killsDone:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	r = retry(ctx, "GET", f.api+"/v1/certificates/"+cert+"/retrieval/pkcs12", nil, auth...)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-pkcs12" {
		return res, fmt.Errorf("pkcs12: %s", r)
	}
	_, leaf, _, err := pkcs12.DecodeChain(r.body, p12Password)
	if err != nil {
		return res, fmt.Errorf("open PKCS#12: %w", err)
	}
	if len(leaf.EmailAddresses) != 1 || leaf.EmailAddresses[0] != email {
		return res, fmt.Errorf("certificate for %v", leaf.EmailAddresses)
	}
	res.serial = leaf.SerialNumber.Text(16)

	for {
		r = retry(ctx, "GET", f.api+"/v1/applications/"+app.ID, nil, auth...)
		var view struct {
			Status        string `json:"status"`
			CertificateID string `json:"certificate_id"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &view) != nil {
			return res, fmt.Errorf("application: %s", r)
		}
		if view.Status == "issued" {
			if view.CertificateID != cert {
				return res, fmt.Errorf("issued with certificate %s, retrieved %s", view.CertificateID, cert)
			}
			return res, nil
		}
		if err := pause(ctx); err != nil {
			return res, err
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r response) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// retry sends a request until it gets an answer that is not an outage
// (502, 503, 504, or no answer): while a replica or a NATS node is down,
// a client sees those and tries again, as a front-end would.
func retry(ctx context.Context, method, url string, body any, headers ...string) response {
	for {
		r := call(ctx, method, url, body, headers...)
		if r.err == nil && r.status != http.StatusBadGateway && r.status != http.StatusServiceUnavailable && r.status != http.StatusGatewayTimeout {
			return r
		}
		if err := pause(ctx); err != nil {
			if r.err == nil {
				r.err = fmt.Errorf("still %d when the test's deadline passed: %s", r.status, r.body)
			}
			return r
		}
	}
}

func call(ctx context.Context, method, url string, body any, headers ...string) response {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{err: err}
		}
		rd = bytes.NewReader(raw)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, url, rd)
	if err != nil {
		return response{err: err}
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: raw, err: err}
}

// pause is the poll interval of the clients; it ends early with ctx.
func pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// mailbox reads the mail sink's directory for the clients: one reader,
// at most every 100ms, however many clients wait.
type mailbox struct {
	dir  string
	mu   sync.Mutex
	last time.Time
	seen map[string][]string // recipient → codes, in order
}

func newMailbox(dir string) *mailbox { return &mailbox{dir: dir, seen: map[string][]string{}} }

func (m *mailbox) codes(email string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.last) >= 100*time.Millisecond {
		mails, err := testenv.ReadMailDir(m.dir)
		if err != nil {
			return nil, err
		}
		m.seen = map[string][]string{}
		for _, ml := range mails {
			if c := codeRe.FindString(ml.Body); c != "" {
				for _, to := range ml.To {
					m.seen[to] = append(m.seen[to], c)
				}
			}
		}
		m.last = time.Now()
	}
	return m.seen[email], nil
}

func (m *mailbox) waitCode(ctx context.Context, email string) (string, error) {
	for {
		codes, err := m.codes(email)
		if err != nil {
			return "", err
		}
		if len(codes) > 0 {
			return codes[0], nil
		}
		if err := pause(ctx); err != nil {
			return "", fmt.Errorf("no certificate-code mail to %s: %w", email, err)
		}
	}
}
