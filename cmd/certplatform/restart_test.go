package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/events"
)

// EV-4, IS-5: the platform is stopped in the middle of the flow — right
// after the cancel window closed, with events in flight between services —
// and started again on the same database, NATS storage and clock. The
// application still reaches the end, and yields exactly one certificate,
// even when the review approval is delivered a second time.
func TestRestartMidFlowYieldsExactlyOneCertificate_EV4_IS5(t *testing.T) {
	clk := clock.NewOffset()
	first := startE2E(t, nil, clk)
	coupon := first.importCoupons(1)[0]
	email := "restart@example.co.jp"
	a := first.submit(coupon, email)
	first.waitEvent(events.TypeCouponReserved, a.ID)
	first.advance("61m")
	if err := first.p.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}

	cfg := first.cfg
	second := launch(t, cfg, first.smtp, clk)
	approved := second.waitEvent(events.TypeReviewApproved, a.ID)
	// Deliver the approval again, as a lost acknowledgement would.
	raw, _ := approved.Marshal()
	nc, err := nats.Connect(second.p.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(context.Background(), events.Subject(approved.Type), raw, jetstream.WithMsgID("redelivery-"+approved.ID.String())); err != nil {
		t.Fatal(err)
	}

	code := second.waitCode(email, 1)
	token := second.login(email, code)
	ready := second.eligible(token, "retrieval")
	if len(ready) != 1 {
		t.Fatalf("%d certificates ready, want 1", len(ready))
	}
	second.retrievePKCS12(token, ready[0].ID, "a strong p12 password")
	second.waitEvent(events.TypeCertificateRetrieved, a.ID)
	time.Sleep(300 * time.Millisecond) // let a (wrong) second certificate show
	certs := map[string]bool{}
	for _, env := range second.events(events.TypeCertificateReady) {
		if env.SubjectID == a.ID {
			ev, err := events.Decode[events.CertificateReady](env)
			if err != nil {
				t.Fatal(err)
			}
			certs[ev.CertificateID] = true
		}
	}
	if len(certs) != 1 {
		t.Fatalf("%d distinct certificates for one application", len(certs))
	}
	if n := len(second.smtp.To(email)); n < 2 { // acceptance + code
		t.Fatalf("%d mails", n)
	}
	codes := 0
	for _, m := range second.smtp.To(email) {
		if codeRe.MatchString(m.Body) {
			codes++
		}
	}
	if codes != 1 {
		t.Fatalf("%d code mails, want 1", codes)
	}
}
