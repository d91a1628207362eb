package intake_test

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// issued takes a new application to an issued certificate expiring
// `left` from now (as the issuer would announce it) and returns a session.
func (r *rig) issued(t *testing.T, email string, left time.Duration) (certID, token string) {
	t.Helper()
	appID, certID, code := r.readyCode(t, email, "new")
	env := r.WaitEvent(events.TypeApplicationProvisional, appID, time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](env)
	now := r.Clock.Now()
	notAfter := now.Add(left)
	r.Publish(events.CertificateIssued{CertificateID: certID, ApplicationID: appID, ApplicantID: ev.Application.ApplicantID,
		Product: "client", Kind: "new", Recipient: ev.Application.Recipient(), Serial: "0a0b", Issuer: "ica1",
		NotBefore: now, NotAfter: notAfter, Windows: announcedWindows(notAfter)}, appID)
	testenv.Eventually(t, 10*time.Second, "issued", func() bool { return r.view(t, appID, email).Status == "issued" })
	resp := r.Do("POST", "/v1/sessions", login(email, "an application password", code))
	if resp.Status != 201 {
		t.Fatalf("login %d %s", resp.Status, resp.Body)
	}
	var s struct {
		Token string `json:"token"`
	}
	resp.JSON(t, &s)
	return certID, s.Token
}

// announcedWindows are the windows the issuer announces with a
// certificate expiring at notAfter (it owns PC-8 and PC-11; the
// cross-service test in cmd/certplatform checks both sides agree).
func announcedWindows(notAfter time.Time) *events.Windows {
	return &events.Windows{RenewalFrom: notAfter.Add(-30 * 24 * time.Hour), RenewalUntil: notAfter.Add(365 * 24 * time.Hour),
		ReissueUntil: notAfter.Add(-30 * 24 * time.Hour)}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// PC-8: a renewal is possible from 30 days before expiry to 365 days
// after it, and needs a new coupon.
func TestRenewalWindowAndCoupon_PC8(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, token := r.issued(t, "renew@example.co.jp", 40*24*time.Hour)
	path := "/v1/certificates/" + cert + "/renewals"
	if resp := r.Do("POST", path, map[string]any{"coupon": nextCoupon()}, bearer(token)...); resp.Status != 409 {
		t.Fatalf("40 days before expiry: %d %s", resp.Status, resp.Body)
	}
	r.Advance(11 * 24 * time.Hour) // 29 days left
	token = r.relogin(t, "renew@example.co.jp", token)
	if resp := r.Do("POST", path, map[string]any{}, bearer(token)...); resp.Status != 422 || asProblem(t, resp).fields() != "coupon" {
		t.Fatalf("no coupon: %d %s", resp.Status, resp.Body)
	}
	coupon := nextCoupon()
	resp := r.Do("POST", path, map[string]any{"coupon": coupon}, bearer(token)...)
	if resp.Status != 202 {
		t.Fatalf("renewal: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	env := r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second)
	ev, _ := events.Decode[events.ApplicationProvisional](env)
	if ev.Application.Kind != "renewal" || ev.Application.PreviousCertificateID != cert || ev.Application.Coupon != coupon ||
		ev.Application.Organization.NameEn != "VeriSign Japan K.K." || !ev.CancelDeadline.After(ev.AcceptedAt) {
		t.Fatalf("renewal event %+v", ev)
	}
	if resp := r.Do("POST", path, map[string]any{"coupon": nextCoupon()}, bearer(token)...); resp.Status != 409 {
		t.Fatalf("second renewal: %d", resp.Status)
	}
}

// PC-8: 365 days after expiry the certificate is no longer renewable.
func TestRenewalClosesAYearAfterExpiry_PC8(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, _ := r.issued(t, "late@example.co.jp", 10*24*time.Hour)
	r.Advance((10 + 364) * 24 * time.Hour)
	token := r.relogin(t, "late@example.co.jp", "")
	pre := r.Do("GET", "/v1/certificates/"+cert+"/prefill", nil, bearer(token)...)
	var p struct {
		RenewalOpen bool `json:"renewal_open"`
	}
	pre.JSON(t, &p)
	if !p.RenewalOpen {
		t.Fatal("364 days after expiry should still be renewable")
	}
	r.Advance(2 * 24 * time.Hour)
	token = r.relogin(t, "late@example.co.jp", "")
	if resp := r.Do("POST", "/v1/certificates/"+cert+"/renewals", map[string]any{"coupon": nextCoupon()}, bearer(token)...); resp.Status != 409 {
		t.Fatalf("366 days after expiry: %d", resp.Status)
	}
}

// PC-9: the form is prefilled with the previous data; the organization and
// the subject's names cannot be changed (422 naming the field); other
// fields can, and are checked like a new application's.
func TestRenewalPrefillAndImmutableFields_PC9(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, token := r.issued(t, "prefill@example.co.jp", 20*24*time.Hour)
	resp := r.Do("GET", "/v1/certificates/"+cert+"/prefill", nil, bearer(token)...)
	var p struct {
		Organization struct {
			NameEn string `json:"name_en"`
		} `json:"organization"`
		Applicant struct {
			Phone string `json:"phone"`
		} `json:"applicant"`
		Immutable   []string `json:"immutable"`
		RenewalOpen bool     `json:"renewal_open"`
	}
	resp.JSON(t, &p)
	if resp.Status != 200 || p.Organization.NameEn != "VeriSign Japan K.K." || p.Applicant.Phone != "0350001111" || !p.RenewalOpen || len(p.Immutable) != 6 {
		t.Fatalf("prefill %d %s", resp.Status, resp.Body)
	}
	path := "/v1/certificates/" + cert + "/renewals"
	for field, changes := range map[string]map[string]any{
		"changes.organization.name_en": {"organization": map[string]any{"name_en": "Other K.K."}},
		"changes.applicant.name_ja":    {"applicant": map[string]any{"name_ja": "別人 花子"}},
		"changes.applicant.name_en":    {"applicant": map[string]any{"name_en": "Other Person"}},
		"changes.applicant.phone":      {"applicant": map[string]any{"phone": "03-1111"}},
		"changes.language":             {"language": "de"},
		"changes.product":              {"product": "server"},
	} {
		resp := r.Do("POST", path, map[string]any{"coupon": nextCoupon(), "changes": changes}, bearer(token)...)
		if resp.Status != 422 || asProblem(t, resp).fields() != field && !(field == "changes.product" && asProblem(t, resp).fields() == "product") {
			t.Errorf("%s: %d %s", field, resp.Status, resp.Body)
		}
	}
	// Unchanged names are fine; other fields change.
	resp = r.Do("POST", path, map[string]any{"coupon": nextCoupon(), "changes": map[string]any{
		"language":  "en",
		"applicant": map[string]any{"name_en": "Veri Taro", "phone": "0311112222", "address": map[string]any{"building": "新ビル5F"}},
	}}, bearer(token)...)
	if resp.Status != 202 {
		t.Fatalf("renewal with changes: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	ev, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if ev.Application.Applicant.Phone != "0311112222" || ev.Application.Applicant.Address.Building != "新ビル5F" ||
		ev.Application.Applicant.Address.City != "中央区" || ev.Application.Language != "en" {
		t.Fatalf("merged data %+v", ev.Application)
	}
}

// PC-11, PC-12: a reissue is not offered with 30 days or less left; it is
// final at once (no cancel window) and carries its reason; one at a time.
func TestReissueEligibilityAndImmediateAcceptance_PC11_PC12(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, token := r.issued(t, "reissue2@example.co.jp", 100*24*time.Hour)
	path := "/v1/certificates/" + cert + "/reissues"
	if resp := r.Do("POST", path, map[string]any{"reason": "lost"}, bearer(token)...); resp.Status != 422 || asProblem(t, resp).fields() != "reason" {
		t.Fatalf("bad reason: %d %s", resp.Status, resp.Body)
	}
	resp := r.Do("POST", path, map[string]any{"reason": "key_compromise", "changes": map[string]any{"applicant": map[string]any{"email": "new.address@example.co.jp"}}}, bearer(token)...)
	if resp.Status != 202 {
		t.Fatalf("reissue: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	if a.Status != "accepted" || !a.CancelDeadline.Equal(r.Clock.Now().Truncate(time.Microsecond)) && a.CancelDeadline.After(r.Clock.Now()) {
		t.Fatalf("a reissue is final at once: %+v", a)
	}
	ev, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if ev.Application.Kind != "reissue" || ev.Application.ReissueReason != "key_compromise" || ev.Application.Coupon != "" {
		t.Fatalf("reissue event %+v", ev.Application)
	}
	closed, _ := events.Decode[events.CancelWindowClosed](r.WaitEvent(events.TypeCancelWindowClosed, a.ID, 10*time.Second))
	if closed.Reason != "immediate" {
		t.Fatalf("reason %q", closed.Reason)
	}
	if c := r.Do("POST", "/v1/applications/"+a.ID+"/cancellation", nil, bearer(token)...); c.Status != 409 {
		t.Fatalf("cancel a reissue: %d", c.Status)
	}
	if resp := r.Do("POST", path, map[string]any{"reason": "superseded"}, bearer(token)...); resp.Status != 409 {
		t.Fatalf("second reissue: %d", resp.Status)
	}
	// The changed e-mail is the applicant's from now on (seed 003).
	testenv.Eventually(t, 10*time.Second, "new e-mail usable", func() bool {
		return r.Do("GET", "/v1/applications/"+a.ID, nil, basic("new.address@example.co.jp", "an application password")...).Status == 200
	})

	other, token2 := r.issued(t, "short@example.co.jp", 30*24*time.Hour)
	if resp := r.Do("POST", "/v1/certificates/"+other+"/reissues", map[string]any{"reason": "superseded"}, bearer(token2)...); resp.Status != 409 {
		t.Fatalf("30 days left: %d", resp.Status)
	}
	// Someone else's certificate is not found.
	if resp := r.Do("POST", "/v1/certificates/"+other+"/reissues", map[string]any{"reason": "superseded"}, bearer(token)...); resp.Status != 404 {
		t.Fatalf("other's certificate: %d", resp.Status)
	}
	if resp := r.Do("POST", "/v1/certificates/"+other+"/reissues", map[string]any{"reason": "superseded"}); resp.Status != 401 {
		t.Fatalf("no session: %d", resp.Status)
	}
}
