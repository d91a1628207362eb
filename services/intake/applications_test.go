package intake_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// PC-3: submission is provisionally accepted with cancel deadline =
// accepted_at + the cancel window, and ApplicationProvisional carries the
// application to the other services.
func TestSubmissionIsProvisionalWithCancelDeadline_PC3(t *testing.T) {
	r := newRig(t, testenv.Options{})
	before := r.Clock.Now()
	a := r.submit(t, body("taro@example.co.jp"))
	if a.Status != "provisional" {
		t.Fatalf("status %q", a.Status)
	}
	if d := a.CancelDeadline.Sub(before); d < time.Hour || d > time.Hour+5*time.Second {
		t.Fatalf("cancel deadline %s after submission, want 1h", d)
	}
	env := r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second)
	ev, err := events.Decode[events.ApplicationProvisional](env)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Application.Applicant.Email != "taro@example.co.jp" || ev.Application.Kind != "new" ||
		ev.Application.Organization.NameEn != "VeriSign Japan K.K." || !ev.CancelDeadline.Equal(a.CancelDeadline) {
		t.Fatalf("event %+v", ev)
	}
	if strings.Contains(string(env.Data), "an application password") {
		t.Fatal("the password travelled in the event (SE-1)")
	}
	v := r.view(t, a.ID, "taro@example.co.jp")
	if v.Status != "provisional" || len(v.Timeline) != 1 || v.Timeline[0].Event != "ApplicationProvisional" {
		t.Fatalf("view %+v", v)
	}
}

// PC-3, PC-4: the cancel window closes by its durable timer when the
// clock passes the deadline; then cancellation is refused with 409.
func TestCancelWindowClosesByTimerThenCancelIs409_PC3_PC4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, body("hanako@example.co.jp"))
	r.Advance(59 * time.Minute)
	if v := r.view(t, a.ID, "hanako@example.co.jp"); v.Status != "provisional" {
		t.Fatalf("closed early: %s", v.Status)
	}
	r.Advance(2 * time.Minute)
	if v := r.view(t, a.ID, "hanako@example.co.jp"); v.Status != "accepted" {
		t.Fatalf("status after the deadline: %s", v.Status)
	}
	env := r.WaitEvent(events.TypeCancelWindowClosed, a.ID, 10*time.Second)
	ev, _ := events.Decode[events.CancelWindowClosed](env)
	if ev.Reason != "deadline" || ev.Application.Coupon == "" {
		t.Fatalf("event %+v", ev)
	}
	resp := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, basic("hanako@example.co.jp", "an application password")...)
	if resp.Status != 409 {
		t.Fatalf("cancel after the window: %d %s", resp.Status, resp.Body)
	}
	if p := asProblem(t, resp); p.Type != "https://certlife.dev/problems/cancel-window-closed" {
		t.Fatalf("problem type %q", p.Type)
	}
}

// PC-4: cancelling inside the window ends the application and tells
// billing (ApplicationCancelled carries the coupon to release); the timer
// does not close it afterwards.
func TestCancelInsideWindow_PC4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	b := body("jiro@example.co.jp")
	a := r.submit(t, b)
	resp := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, basic("jiro@example.co.jp", "an application password")...)
	if resp.Status != 200 {
		t.Fatalf("cancel: %d %s", resp.Status, resp.Body)
	}
	env := r.WaitEvent(events.TypeApplicationCancelled, a.ID, 10*time.Second)
	ev, _ := events.Decode[events.ApplicationCancelled](env)
	if ev.Coupon != b["coupon"] || ev.Recipient.Email != "jiro@example.co.jp" {
		t.Fatalf("event %+v", ev)
	}
	r.Advance(2 * time.Hour)
	if v := r.view(t, a.ID, "jiro@example.co.jp"); v.Status != "cancelled" {
		t.Fatalf("status %s", v.Status)
	}
	if n := len(r.Events(events.TypeCancelWindowClosed)); n != 0 {
		t.Fatalf("%d CancelWindowClosed after a cancellation", n)
	}
	// A second cancellation is a conflict, not a second event.
	// (issue 6 item 11: it says so, not that the window closed.)
	resp = r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, basic("jiro@example.co.jp", "an application password")...)
	if p := asProblem(t, resp); resp.Status != 409 || p.Type != "https://certlife.dev/problems/already-cancelled" ||
		!strings.Contains(string(resp.Body), "the application is already cancelled") {
		t.Fatalf("second cancel: %d %s", resp.Status, resp.Body)
	}
	// The coupon of a cancelled application may be used again (PC-2).
	b2 := body("jiro@example.co.jp")
	b2["coupon"] = b["coupon"]
	r.submit(t, b2)
}

// PC-4: another applicant's application answers 404, as does a wrong password.
func TestOtherApplicantsApplicationIs404_PC4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, body("one@example.co.jp"))
	r.submit(t, body("two@example.co.jp"))
	for _, h := range [][]string{
		basic("two@example.co.jp", "an application password"),
		basic("one@example.co.jp", "wrong password!"),
	} {
		if resp := r.Do("GET", "/v1/applications/"+a.ID, nil, h...); resp.Status != 404 {
			t.Fatalf("got %d", resp.Status)
		}
		if resp := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, h...); resp.Status != 404 {
			t.Fatalf("cancel got %d", resp.Status)
		}
	}
	if resp := r.Do("GET", "/v1/applications/"+a.ID, nil); resp.Status != 401 {
		t.Fatalf("no auth: %d", resp.Status)
	}
	if resp := r.Do("GET", "/v1/applications/"+uuid.NewString(), nil, basic("one@example.co.jp", "an application password")...); resp.Status != 404 {
		t.Fatalf("unknown id: %d", resp.Status)
	}
}

// EV-4, PC-3: the cancel window's timer is durable: stop intake with an
// application provisional, start it again on the same database, and the
// window still closes exactly once.
func TestCancelWindowTimerSurvivesRestart_PC3_EV4(t *testing.T) {
	first := newRig(t, testenv.Options{})
	a := first.submit(t, body("restart@example.co.jp"))
	first.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second)
	first.Stop()

	second := newRig(t, testenv.Options{DBURL: first.DBURL, NATS: first.NATS, Clock: first.Clock})
	second.Advance(61 * time.Minute)
	second.WaitEvent(events.TypeCancelWindowClosed, a.ID, 10*time.Second)
	if v := second.view(t, a.ID, "restart@example.co.jp"); v.Status != "accepted" {
		t.Fatalf("status %s", v.Status)
	}
	second.Advance(time.Hour)
	time.Sleep(200 * time.Millisecond)
	if n := len(second.Events(events.TypeCancelWindowClosed)); n != 1 {
		t.Fatalf("%d CancelWindowClosed events, want 1", n)
	}
}

// PC-2: a coupon billing refuses is a 422 on the coupon field at
// submission, and nothing is stored or published.
func TestBadCouponRefusedAtSubmission_PC2(t *testing.T) {
	r := newRig(t, testenv.Options{})
	for reason, msg := range map[string]string{"unknown": "does not exist", "used": "already been used", "expired": "expired", "wrong_product": "another product"} {
		b := body("c@example.co.jp")
		r.mu.Lock()
		r.coupons[b["coupon"].(string)] = reason
		r.mu.Unlock()
		resp := r.Do("POST", "/v1/applications", b)
		p := asProblem(t, resp)
		if resp.Status != 422 || p.fields() != "coupon" || !strings.Contains(p.Errors[0].Message, msg) {
			t.Fatalf("%s: %d %s", reason, resp.Status, resp.Body)
		}
	}
	if n := r.count(t, "applications"); n != 0 {
		t.Fatalf("%d applications stored", n)
	}
	if n := r.count(t, "outbox"); n != 0 {
		t.Fatalf("%d events in the outbox", n)
	}
}

// PC-2: two concurrent submissions of one coupon: exactly one is accepted.
func TestConcurrentSubmissionsOfOneCouponAcceptOne_PC2(t *testing.T) {
	r := newRig(t, testenv.Options{})
	coupon := nextCoupon()
	var wg sync.WaitGroup
	codes := make([]int, 6)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := body("race@example.co.jp")
			b["coupon"] = coupon
			codes[i] = r.Do("POST", "/v1/applications", b).Status
		}()
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case 202:
			ok++
		case 422:
		default:
			t.Fatalf("unexpected status %d", c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d submissions accepted, want 1 (%v)", ok, codes)
	}
}

// PC-2: when billing cannot reserve the coupon after all, the application
// is rejected and the applicant told (ApplicationRejected).
func TestCouponRejectedByBillingRejectsApplication_PC2(t *testing.T) {
	r := newRig(t, testenv.Options{})
	b := body("late@example.co.jp")
	a := r.submit(t, b)
	r.Publish(events.CouponRejected{ApplicationID: a.ID, Coupon: b["coupon"].(string), Reason: "used"}, a.ID)
	r.WaitEvent(events.TypeApplicationRejected, a.ID, 10*time.Second)
	if v := r.view(t, a.ID, "late@example.co.jp"); v.Status != "rejected" {
		t.Fatalf("status %s", v.Status)
	}
	r.Advance(2 * time.Hour)
	if n := len(r.Events(events.TypeCancelWindowClosed)); n != 0 {
		t.Fatal("a rejected application reached final acceptance")
	}
}

// PC-6: the status follows the other services' events in any order, and
// never moves back.
func TestStatusFollowsEventsInAnyOrder_PC6(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, body("order@example.co.jp"))
	r.Advance(61 * time.Minute)
	cert := uuid.NewString()
	appl := r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](appl)
	// Ready arrives before the payment confirmation.
	r.Publish(events.CertificateReady{CertificateID: cert, ApplicationID: a.ID, ApplicantID: ev.Application.ApplicantID,
		Product: "client", Kind: "new", Recipient: ev.Application.Recipient()}, a.ID)
	r.WaitEvent(events.TypeCertificateCodeIssued, a.ID, 10*time.Second)
	r.Publish(events.PaymentConfirmed{ApplicationID: a.ID, Method: "coupon"}, a.ID)
	testenv.Eventually(t, 10*time.Second, "payment on the timeline", func() bool {
		v := r.view(t, a.ID, "order@example.co.jp")
		return len(v.Timeline) == 4 && v.Timeline[3].Event == events.TypePaymentConfirmed
	})
	v := r.view(t, a.ID, "order@example.co.jp")
	if v.Status != "approved" || v.CertificateID != cert {
		t.Fatalf("status %s cert %s", v.Status, v.CertificateID)
	}
}

// PC-1, SE-4: the intake schema holds no plaintext password.
func TestPasswordStoredOnlyAsArgon2id_SE1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	r.submit(t, body("hash@example.co.jp"))
	var h string
	if err := r.Unit("intake").Deps.Pool.QueryRow(context.Background(), `SELECT password_hash FROM applicants`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$") || strings.Contains(h, "an application password") {
		t.Fatalf("stored %q", h)
	}
}
