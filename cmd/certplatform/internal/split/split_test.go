package split

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
			if err != nil {
				f.failed.CompareAndSwap(nil, &err)
			}
			results <- res
		}()
	}

	// The kills, each when its condition holds, while the flow runs.
	killed := map[string]int{}
	// A flow that gave up fails the test now, not after the whole timeout.
	until := func(cond func() bool) func() bool {
		return func() bool {
			if err := f.failed.Load(); err != nil {
				t.Fatalf("an application gave up: %v", *err)
			}
			return cond()
		}
	}
	waitFor(t, ctx, "half of the applications submitted", until(func() bool { return f.submitted.Load() >= applications/2 }))
	leader := streamLeader(t, st.NATSURL)
	killed[leader] = sup.kill(t, leader)
	waitFor(t, ctx, "every application submitted", until(func() bool { return f.submitted.Load() == applications }))
	killed["intake-1"] = sup.kill(t, "intake-1")
	waitFor(t, ctx, "retrievals under way", until(func() bool { return f.retrieving.Load() >= 3 }))
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
	t.Logf("the clients met %d outage answers (502, 503, none) and tried again; the proxy sent %s requests to another replica",
		f.outages.Load(), proxyRetries(st.API))

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
