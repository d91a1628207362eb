package billing

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/billing/internal/domain"
)

// PC-2: the instant check answers ok or the reason a coupon is unusable;
// expiry follows the injected clock.
func TestCouponCheckReasons_PC2(t *testing.T) {
	t.Parallel()
	p := start(t)
	fresh, soon, held := newCoupon(), newCoupon(), newCoupon()
	mustImport(t, p, fresh+",client,"+rfc(p, 30*24*time.Hour), soon+",client,"+rfc(p, time.Hour), held+",server,"+rfc(p, 30*24*time.Hour))

	for _, c := range []struct{ number, product, want string }{
		{fresh, "client", ""},
		{fresh, "server", domain.ReasonWrongProduct},
		{newCoupon(), "client", domain.ReasonUnknown},
		{"not-a-coupon", "client", domain.ReasonUnknown},
		{" " + fresh + " ", "client", ""},
	} {
		got := check(t, p, c.number, c.product)
		if got.OK != (c.want == "") || got.Reason != c.want {
			t.Errorf("check %q/%s = %+v, want reason %q", c.number, c.product, got, c.want)
		}
	}

	// Used: reserved by an application, and still used once consumed.
	a := application(held, "server")
	p.Publish(provisional(p, a), "")
	p.WaitEvent(events.TypeCouponReserved, a.ID, wait)
	if got := check(t, p, held, "server"); got.OK || got.Reason != domain.ReasonUsed {
		t.Errorf("reserved coupon: %+v, want used", got)
	}
	p.Publish(closed(p, a), "")
	p.WaitEvent(events.TypePaymentConfirmed, a.ID, wait)
	if got := check(t, p, held, "server"); got.OK || got.Reason != domain.ReasonUsed {
		t.Errorf("consumed coupon: %+v, want used", got)
	}

	// Expired by the clock.
	if got := check(t, p, soon, "client"); !got.OK {
		t.Fatalf("coupon expiring in an hour: %+v", got)
	}
	p.Advance(time.Hour)
	if got := check(t, p, soon, "client"); got.OK || got.Reason != domain.ReasonExpired {
		t.Errorf("after its expiry: %+v, want expired", got)
	}
}

// PC-2: reserved at provisional acceptance, consumed at final acceptance,
// which confirms the payment by coupon.
func TestReserveThenConsumeConfirmsPayment_PC2(t *testing.T) {
	t.Parallel()
	p := start(t)
	number := newCoupon()
	mustImport(t, p, number+",client,"+rfc(p, 24*time.Hour))
	a := application(number, "client")
	prov := p.Publish(provisional(p, a), "")
	res := decode[events.CouponReserved](t, p.WaitEvent(events.TypeCouponReserved, a.ID, wait))
	if res.Coupon != number {
		t.Errorf("reserved %q", res.Coupon)
	}
	p.Publish(closed(p, a), prov.CorrelationID)
	env := p.WaitEvent(events.TypePaymentConfirmed, a.ID, wait)
	paid := decode[events.PaymentConfirmed](t, env)
	if paid.Method != "coupon" || paid.Reference != number {
		t.Errorf("payment = %+v", paid)
	}
	if env.CorrelationID != prov.CorrelationID {
		t.Errorf("payment not correlated with the application")
	}
	if n := count(t, p, `SELECT count(*) FROM coupons WHERE number = $1 AND status = 'consumed' AND application_id = $2`, number, a.ID); n != 1 {
		t.Error("coupon not consumed by the application")
	}
	p.Settle("billing-coupons", wait)
	metrics := scrape(t, p)
	for _, m := range []string{"coupons_imported_total", "coupons_reserved_total", "coupons_consumed_total"} {
		if !strings.Contains(metrics, m+`{service="billing"} 1`) {
			t.Errorf("metric %s not 1", m)
		}
	}
}

// PC-2, PC-4: a cancellation releases the coupon, which can then be used
// by another application.
func TestCancelReleasesCoupon_PC2_PC4(t *testing.T) {
	t.Parallel()
	p := start(t)
	number := newCoupon()
	mustImport(t, p, number+",client,"+rfc(p, 24*time.Hour))
	a := application(number, "client")
	p.Publish(provisional(p, a), "")
	p.WaitEvent(events.TypeCouponReserved, a.ID, wait)
	p.Publish(cancelled(p, a), "")
	rel := decode[events.CouponReleased](t, p.WaitEvent(events.TypeCouponReleased, a.ID, wait))
	if rel.Coupon != number {
		t.Errorf("released %q", rel.Coupon)
	}
	if got := check(t, p, number, "client"); !got.OK {
		t.Errorf("released coupon not usable: %+v", got)
	}
	b := application(number, "client")
	p.Publish(provisional(p, b), "")
	p.WaitEvent(events.TypeCouponReserved, b.ID, wait)
	p.Publish(closed(p, b), "")
	p.WaitEvent(events.TypePaymentConfirmed, b.ID, wait)
	// A late final-acceptance event of the cancelled application pays nothing.
	p.Publish(closed(p, a), "")
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypePaymentConfirmed, a.ID)); n != 0 {
		t.Errorf("cancelled application paid %d times", n)
	}
}

// PC-2: a coupon that cannot be reserved is rejected with its reason and
// never pays the application.
func TestUnreservableCouponsAreRejected_PC2(t *testing.T) {
	t.Parallel()
	p := start(t)
	serverOnly, soon := newCoupon(), newCoupon()
	mustImport(t, p, serverOnly+",server,"+rfc(p, 24*time.Hour), soon+",client,"+rfc(p, time.Hour))
	p.Advance(2 * time.Hour)
	for _, c := range []struct{ number, reason string }{
		{newCoupon(), domain.ReasonUnknown},
		{serverOnly, domain.ReasonWrongProduct},
		{soon, domain.ReasonExpired},
	} {
		a := application(c.number, "client")
		p.Publish(provisional(p, a), "")
		rej := decode[events.CouponRejected](t, p.WaitEvent(events.TypeCouponRejected, a.ID, wait))
		if rej.Reason != c.reason || rej.Coupon != c.number {
			t.Errorf("rejected %+v, want reason %s", rej, c.reason)
		}
		p.Publish(closed(p, a), "")
		p.Settle("billing-coupons", wait)
		if n := len(eventsOf(p, events.TypePaymentConfirmed, a.ID)); n != 0 {
			t.Errorf("%s: rejected coupon paid", c.reason)
		}
	}
	if got := check(t, p, serverOnly, "server"); !got.OK {
		t.Errorf("a wrong-product attempt must not hold the coupon: %+v", got)
	}
}

// PC-2: two applications with one coupon arrive at once; exactly one
// reserves it and is paid, the other is rejected as used and never paid.
func TestCouponConsumedOnceUnderConcurrency_PC2(t *testing.T) {
	t.Parallel()
	p := start(t)
	number := newCoupon()
	mustImport(t, p, number+",client,"+rfc(p, 24*time.Hour))
	a, b := application(number, "client"), application(number, "client")
	var wg sync.WaitGroup
	for _, x := range []events.Application{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); p.Publish(provisional(p, x), "") }()
	}
	wg.Wait()
	p.Settle("billing-coupons", wait)
	p.Publish(closed(p, a), "")
	p.Publish(closed(p, b), "")
	p.Settle("billing-coupons", wait)

	reserved := len(eventsOf(p, events.TypeCouponReserved, a.ID)) + len(eventsOf(p, events.TypeCouponReserved, b.ID))
	paidA, paidB := len(eventsOf(p, events.TypePaymentConfirmed, a.ID)), len(eventsOf(p, events.TypePaymentConfirmed, b.ID))
	if reserved != 1 || paidA+paidB != 1 {
		t.Fatalf("reserved %d, paid a=%d b=%d; want exactly one of each", reserved, paidA, paidB)
	}
	loser := b
	if paidB == 1 {
		loser = a
	}
	rej := eventsOf(p, events.TypeCouponRejected, loser.ID)
	if len(rej) != 1 || decode[events.CouponRejected](t, rej[0]).Reason != domain.ReasonUsed {
		t.Errorf("loser's rejection = %v, want one CouponRejected{used}", rej)
	}
}

// PC-2: many transactions race to claim one coupon through the handlers
// themselves, half of them by reservation and half by final acceptance
// arriving first; the row lock lets exactly one win.
func TestCouponClaimRaceHasOneWinner_PC2(t *testing.T) {
	t.Parallel()
	p := start(t)
	number := newCoupon()
	mustImport(t, p, number+",client,"+rfc(p, 24*time.Hour))
	svc := p.Unit("billing").Service.(*Service)
	pool := p.Unit("billing").Deps.Pool

	const n = 12
	ready := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		a := application(number, "client")
		var env events.Envelope
		var err error
		handle := svc.app.Provisional
		if i%2 == 0 {
			env, err = events.New(provisional(p, a), p.Clock.Now(), "")
		} else {
			env, err = events.New(closed(p, a), p.Clock.Now(), "")
			handle = svc.app.WindowClosed
		}
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			errs <- db.InTx(context.Background(), pool, func(tx pgx.Tx) error { return handle(context.Background(), tx, env) })
		}()
	}
	close(ready)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if held := count(t, p, `SELECT count(*) FROM coupon_reservations WHERE state IN ('reserved', 'consumed')`); held != 1 {
		t.Errorf("%d applications hold the coupon, want 1", held)
	}
	if rejected := count(t, p, `SELECT count(*) FROM coupon_reservations WHERE state = 'rejected' AND reason = 'used'`); rejected != n-1 {
		t.Errorf("%d rejected as used, want %d", rejected, n-1)
	}
}

// PC-2, EV-2: events of one application arriving out of order still end
// in the state the right order gives.
func TestOutOfOrderDelivery_PC2_EV2(t *testing.T) {
	t.Parallel()
	p := start(t)
	c1, c2, c3 := newCoupon(), newCoupon(), newCoupon()
	mustImport(t, p, c1+",client,"+rfc(p, 24*time.Hour), c2+",client,"+rfc(p, 24*time.Hour), c3+",client,"+rfc(p, 24*time.Hour))

	// Final acceptance before the provisional event: consumed and paid
	// once; the late provisional event reserves nothing.
	a := application(c1, "client")
	p.Publish(closed(p, a), "")
	paid := decode[events.PaymentConfirmed](t, p.WaitEvent(events.TypePaymentConfirmed, a.ID, wait))
	if paid.Reference != c1 {
		t.Errorf("paid with %q", paid.Reference)
	}
	p.Publish(provisional(p, a), "")
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypeCouponReserved, a.ID)); n != 0 {
		t.Errorf("late provisional event reserved again")
	}
	if got := check(t, p, c1, "client"); got.Reason != domain.ReasonUsed {
		t.Errorf("coupon after out-of-order consumption: %+v", got)
	}

	// Cancellation before the provisional event: the coupon is never left
	// reserved.
	b := application(c2, "client")
	p.Publish(cancelled(p, b), "")
	p.WaitEvent(events.TypeCouponReleased, b.ID, wait)
	p.Publish(provisional(p, b), "")
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypeCouponReserved, b.ID)); n != 0 {
		t.Errorf("cancelled application reserved its coupon")
	}
	if got := check(t, p, c2, "client"); !got.OK {
		t.Errorf("coupon of an application cancelled early is not usable: %+v", got)
	}

	// Final acceptance first for a coupon another application holds:
	// rejected, never paid.
	holder, late := application(c3, "client"), application(c3, "client")
	p.Publish(provisional(p, holder), "")
	p.WaitEvent(events.TypeCouponReserved, holder.ID, wait)
	p.Publish(closed(p, late), "")
	rej := decode[events.CouponRejected](t, p.WaitEvent(events.TypeCouponRejected, late.ID, wait))
	if rej.Reason != domain.ReasonUsed {
		t.Errorf("rejected for %q, want used", rej.Reason)
	}
	p.Publish(provisional(p, late), "")
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypePaymentConfirmed, late.ID)); n != 0 {
		t.Errorf("application without the coupon was paid")
	}
}

// EV-2: one event stored twice on the stream (another Nats-Msg-Id) has
// its effect once.
func TestRedeliveryHasNoSecondEffect_EV2(t *testing.T) {
	t.Parallel()
	p := start(t)
	c1, c2 := newCoupon(), newCoupon()
	mustImport(t, p, c1+",client,"+rfc(p, 24*time.Hour), c2+",client,"+rfc(p, 24*time.Hour))

	a := application(c1, "client")
	prov := p.Publish(provisional(p, a), "")
	p.PublishAgain(prov)
	p.WaitEvent(events.TypeCouponReserved, a.ID, wait)
	win := p.Publish(closed(p, a), "")
	p.PublishAgain(win)
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypeCouponReserved, a.ID)); n != 1 {
		t.Errorf("CouponReserved %d times", n)
	}
	if n := len(eventsOf(p, events.TypePaymentConfirmed, a.ID)); n != 1 {
		t.Errorf("PaymentConfirmed %d times", n)
	}

	b := application(c2, "client")
	p.Publish(provisional(p, b), "")
	p.WaitEvent(events.TypeCouponReserved, b.ID, wait)
	cancel := p.Publish(cancelled(p, b), "")
	p.PublishAgain(cancel)
	p.Settle("billing-coupons", wait)
	if n := len(eventsOf(p, events.TypeCouponReleased, b.ID)); n != 1 {
		t.Errorf("CouponReleased %d times", n)
	}
	if !strings.Contains(scrape(t, p), `events_duplicates_total{consumer="billing-coupons",service="billing"} 3`) {
		t.Error("the inbox did not count 3 duplicates")
	}
}

func scrape(t *testing.T, p *testenv.Platform) string {
	t.Helper()
	resp, err := http.Get(p.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
