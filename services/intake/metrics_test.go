package intake_test

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// series reads one series of /metrics by its exact name and labels, as
// the text format writes them (labels sorted); found is false when absent.
func (r *rig) series(t testing.TB, nameAndLabels string) (v float64, found bool) {
	t.Helper()
	resp := r.Do("GET", "/metrics", nil)
	if resp.Status != 200 {
		t.Fatalf("/metrics: %d", resp.Status)
	}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), nameAndLabels+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err != nil {
				t.Fatalf("%s: %q", nameAndLabels, rest)
			}
			return v, true
		}
	}
	return 0, false
}

// OP-3: the funnel counts applications per status at scrape time, and the
// time from provisional acceptance to approved and to issued is observed
// once per application — a later event that does not move the status
// (or a redelivery) observes nothing.
func TestFunnelAndTimeToState_OP3(t *testing.T) {
	r := newRig(t, testenv.Options{})
	issued := r.submit(t, body("funnel-issued@example.co.jp"))
	accepted := r.submit(t, body("funnel-accepted@example.co.jp"))
	cancelled := r.submit(t, body("funnel-cancelled@example.co.jp"))
	if resp := r.Do("POST", "/v1/applications/"+cancelled.ID+"/cancellation", nil,
		basic("funnel-cancelled@example.co.jp", "an application password")...); resp.Status != 200 {
		t.Fatalf("cancel: %d %s", resp.Status, resp.Body)
	}
	r.Advance(61 * time.Minute)
	r.WaitEvent(events.TypeCancelWindowClosed, issued.ID, 10*time.Second)
	r.WaitEvent(events.TypeCancelWindowClosed, accepted.ID, 10*time.Second)

	env := r.WaitEvent(events.TypeApplicationProvisional, issued.ID, time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](env)
	cert := uuid.NewString()
	ready := events.CertificateReady{CertificateID: cert, ApplicationID: issued.ID, ApplicantID: ev.Application.ApplicantID,
		Product: "client", Kind: "new", Recipient: ev.Application.Recipient()}
	r.Publish(ready, issued.ID)
	r.WaitEvent(events.TypeCertificateCodeIssued, issued.ID, 10*time.Second)
	// A second CertificateReady (another event ID) leaves the status where it is.
	r.Publish(ready, issued.ID)
	testenv.Eventually(t, 10*time.Second, "second code", func() bool {
		return len(r.Events(events.TypeCertificateCodeIssued)) == 2
	})
	r.Advance(2 * time.Hour)
	now := r.Clock.Now()
	r.Publish(events.CertificateIssued{CertificateID: cert, ApplicationID: issued.ID, ApplicantID: ev.Application.ApplicantID,
		Product: "client", Kind: "new", Recipient: ev.Application.Recipient(), Serial: "0a0c", Issuer: "ica1",
		NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour), Windows: announcedWindows(now.Add(365 * 24 * time.Hour))}, issued.ID)
	testenv.Eventually(t, 10*time.Second, "issued", func() bool {
		return r.view(t, issued.ID, "funnel-issued@example.co.jp").Status == "issued"
	})

	const h = `application_time_to_state_seconds`
	for state, min := range map[string]float64{"approved": 61 * 60, "issued": 181 * 60} {
		n, _ := r.series(t, h+`_count{service="intake",state="`+state+`"}`)
		sum, _ := r.series(t, h+`_sum{service="intake",state="`+state+`"}`)
		// The clock moved by min; real time adds seconds, not an hour.
		if n != 1 || sum < min || sum > min+3600 {
			t.Errorf("%s: count %v sum %v, want 1 observation of about %v s", state, n, sum, min)
		}
	}

	want := map[string]float64{"provisional": 0, "cancelled": 1, "accepted": 1, "awaiting_payment": 0,
		"validating": 0, "in_review": 0, "approved": 0, "issued": 1, "rejected": 0}
	for status, n := range want {
		got, found := r.series(t, `applications{service="intake",status="`+status+`"}`)
		if !found || got != n {
			t.Errorf("applications{status=%q} = %v (found %v), want %v", status, got, found, n)
		}
	}
}
