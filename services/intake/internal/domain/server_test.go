package domain

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/events"
)

// SV-5, SV-11: renewal or new, carried-over days and coverage end.
func TestDecide_SV5_SV11(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	dn := DN{CommonName: "www.example.co.jp", Organization: "Example K.K.", Locality: "Chiyoda-ku", State: "Tokyo", Country: "JP"}
	prev := &ServerCertificate{ID: uuid.New(), DN: dn, NotAfter: now.Add(60 * 24 * time.Hour), CoverageEnd: now.Add(90 * 24 * time.Hour)}

	if d := Decide(nil, dn, 12, now); d.Kind != events.KindNew || d.RenewalOf != nil || !d.CoverageEnd.Equal(now.AddDate(1, 0, 0)) {
		t.Fatalf("no previous: %+v", d)
	}
	d := Decide(prev, dn, 12, now)
	if d.Kind != events.KindRenewal || d.CarryOverDays != 90 || !d.CoverageEnd.Equal(prev.CoverageEnd.AddDate(1, 0, 0)) || *d.RenewalOf != prev.ID {
		t.Fatalf("renewal: %+v", d)
	}
	// Case and surrounding spaces do not change a DN.
	same := dn
	same.CommonName, same.Organization = "WWW.example.co.jp", " Example K.K. "
	if d := Decide(prev, same, 12, now); d.Kind != events.KindRenewal {
		t.Fatalf("same DN: %+v", d)
	}
	for field, change := range map[string]func(*DN){
		"common name":         func(d *DN) { d.CommonName = "shop.example.co.jp" },
		"organization name":   func(d *DN) { d.Organization = "Example Holdings K.K." },
		"locality":            func(d *DN) { d.Locality = "Minato-ku" },
		"state or prefecture": func(d *DN) { d.State = "Osaka" },
		"country":             func(d *DN) { d.Country = "US" },
	} {
		changed := dn
		change(&changed)
		d := Decide(prev, changed, 12, now)
		if d.Kind != events.KindNew || d.CarryOverDays != 0 || !d.CoverageEnd.Equal(now.AddDate(1, 0, 0)) ||
			d.Reason != "new: the "+field+" changed, nothing is carried over" {
			t.Fatalf("%s: %+v", field, d)
		}
	}
	expired := *prev
	expired.NotAfter = now
	if d := Decide(&expired, dn, 24, now); d.Kind != events.KindNew || d.CarryOverDays != 0 || !d.CoverageEnd.Equal(now.AddDate(2, 0, 0)) {
		t.Fatalf("expired: %+v", d)
	}
	// An imported certificate's coverage is its validity.
	imported := *prev
	imported.CoverageEnd = time.Time{}
	if d := Decide(&imported, dn, 12, now); d.CarryOverDays != 60 || !d.CoverageEnd.Equal(prev.NotAfter.AddDate(1, 0, 0)) {
		t.Fatalf("imported: %+v", d)
	}
}

// SV-12: every step, pending until reported, a domain validation per name.
func TestSteps_SV12(t *testing.T) {
	at := time.Now()
	s := Steps([]string{"a.example", "b.example"}, []StepRow{{Name: StepDomainValidation, Key: "b.example", Status: StepDone, At: at}})
	if len(s) != 7 || s[0].Name != StepPayment || s[1].Domain != "a.example" || s[1].Status != StepPending ||
		s[2].Status != StepDone || s[6].Name != StepIssuance {
		t.Fatalf("%+v", s)
	}
	if s := Steps(nil, nil); len(s) != 6 || s[1].Name != StepDomainValidation {
		t.Fatalf("without application: %+v", s)
	}
}

func TestOrderStatus(t *testing.T) {
	now := time.Now()
	id := uuid.New()
	for want, o := range map[string]Order{
		OrderAwaitingPayment:     {},
		OrderAwaitingApplication: {PaidAt: &now},
		OrderInProgress:          {PaidAt: &now, ApplicationID: &id},
		OrderIssued:              {PaidAt: &now, ApplicationID: &id, CertificateID: &id},
		OrderCancelled:           {CancelledAt: &now},
		OrderRefunded:            {RefundedAt: &now},
	} {
		if got := o.Status(); got != want {
			t.Fatalf("%+v: %s, want %s", o, got, want)
		}
	}
	if MonthsOf(8760*time.Hour) != 12 || MonthsOf(17520*time.Hour) != 24 || MonthsOf(time.Hour) != 1 {
		t.Fatal("MonthsOf")
	}
}
