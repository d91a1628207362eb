package intake_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

type prefillView struct {
	Organization events.Organization `json:"organization"`
	Immutable    []string            `json:"immutable"`
}

func (r *rig) prefill(t *testing.T, cert, token string) prefillView {
	t.Helper()
	resp := r.Do("GET", "/v1/certificates/"+cert+"/prefill", nil, bearer(token)...)
	if resp.Status != 200 {
		t.Fatalf("prefill: %d %s", resp.Status, resp.Body)
	}
	var p prefillView
	resp.JSON(t, &p)
	return p
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// PC-1, PC-17: the identifier of a new application reaches the other
// services (the issuer writes it into subject:organizationIdentifier,
// the reviewer sees it), normalized.
func TestNewApplicationCarriesIdentifier_PC1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	b := body("oid-new@example.co.jp")
	b["organization"].(map[string]any)["identifier"] = " leixg-5493001kjtiigc8y1r12 "
	a := r.submit(t, b)
	ev, err := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Application.Organization.Identifier; got != "LEIXG-5493001KJTIIGC8Y1R12" {
		t.Fatalf("identifier in the event %q", got)
	}
	// A bad one is one clear field error, nothing stored.
	b = body("oid-bad@example.co.jp")
	b["organization"].(map[string]any)["identifier"] = "NTRJP-4010001012346"
	resp := r.Do("POST", "/v1/applications", b)
	p := asProblem(t, resp)
	if resp.Status != 422 || p.fields() != "organization.identifier" || !strings.Contains(p.Errors[0].Message, "check digit") {
		t.Fatalf("bad check digit: %d %s", resp.Status, resp.Body)
	}
	if n := r.count(t, "applications"); n != 1 {
		t.Fatalf("%d applications stored", n)
	}
}

// PC-1, PC-9: like the organization's name, the identifier cannot be
// changed by a renewal or a reissue (422 naming it); sent back unchanged
// (in any case) it is accepted. The prefill lists it as immutable.
func TestIdentifierImmutableOnRenewalAndReissue_PC1_PC9(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, token := r.issued(t, "oid-keep@example.co.jp", 20*24*time.Hour)
	p := r.prefill(t, cert, token)
	if p.Organization.Identifier != "NTRJP-4010001012345" || !has(p.Immutable, "organization.identifier") {
		t.Fatalf("prefill %+v", p)
	}
	other := map[string]any{"organization": map[string]any{"identifier": "LEIXG-5493001KJTIIGC8Y1R12"}}
	for path, b := range map[string]map[string]any{
		"/renewals": {"coupon": nextCoupon(), "changes": other},
		"/reissues": {"reason": "superseded", "changes": other},
	} {
		resp := r.Do("POST", "/v1/certificates/"+cert+path, b, bearer(token)...)
		p := asProblem(t, resp)
		if resp.Status != 422 || p.fields() != "changes.organization.identifier" || !strings.Contains(p.Errors[0].Message, "cannot be changed") {
			t.Errorf("%s changing the identifier: %d %s", path, resp.Status, resp.Body)
		}
	}
	resp := r.Do("POST", "/v1/certificates/"+cert+"/renewals", map[string]any{"coupon": nextCoupon(),
		"changes": map[string]any{"organization": map[string]any{"identifier": "ntrjp-4010001012345"}}}, bearer(token)...)
	if resp.Status != 202 {
		t.Fatalf("renewal with the same identifier: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	ev, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if ev.Application.Organization.Identifier != "NTRJP-4010001012345" {
		t.Fatalf("renewal's identifier %q", ev.Application.Organization.Identifier)
	}
}

// PC-1: a certificate applied for before the identifier was collected
// has none; its renewal (and reissue) may add one, checked like a new
// application's, after which it is the organization's.
func TestRenewalOfOldCertificateMayAddIdentifier_PC1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cert, token := r.issued(t, "oid-old@example.co.jp", 20*24*time.Hour)
	reissued, token2 := r.issued(t, "oid-old2@example.co.jp", 100*24*time.Hour)
	// As stored before this change: no identifier.
	if _, err := r.Unit("intake").Deps.Pool.Exec(context.Background(),
		`UPDATE applications SET organization = organization - 'identifier'`); err != nil {
		t.Fatal(err)
	}
	p := r.prefill(t, cert, token)
	if p.Organization.Identifier != "" || has(p.Immutable, "organization.identifier") {
		t.Fatalf("prefill of an old certificate %+v", p)
	}
	path := "/v1/certificates/" + cert + "/renewals"
	resp := r.Do("POST", path, map[string]any{"coupon": nextCoupon(),
		"changes": map[string]any{"organization": map[string]any{"identifier": "NTRJP-7000012050003"}}}, bearer(token)...)
	if resp.Status != 422 || asProblem(t, resp).fields() != "changes.organization.identifier" {
		t.Fatalf("adding a bad identifier: %d %s", resp.Status, resp.Body)
	}
	resp = r.Do("POST", path, map[string]any{"coupon": nextCoupon(),
		"changes": map[string]any{"organization": map[string]any{"identifier": "NTRJP-7000012050002"}}}, bearer(token)...)
	if resp.Status != 202 {
		t.Fatalf("renewal adding the identifier: %d %s", resp.Status, resp.Body)
	}
	var a accepted
	resp.JSON(t, &a)
	ev, _ := events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if ev.Application.Organization.Identifier != "NTRJP-7000012050002" || ev.Application.Organization.NameEn != "VeriSign Japan K.K." {
		t.Fatalf("renewal's organization %+v", ev.Application.Organization)
	}

	resp = r.Do("POST", "/v1/certificates/"+reissued+"/reissues", map[string]any{"reason": "superseded",
		"changes": map[string]any{"organization": map[string]any{"identifier": "GOVJP+13"}}}, bearer(token2)...)
	if resp.Status != 202 {
		t.Fatalf("reissue adding the identifier: %d %s", resp.Status, resp.Body)
	}
	resp.JSON(t, &a)
	ev, _ = events.Decode[events.ApplicationProvisional](r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if ev.Application.Organization.Identifier != "GOVJP+13" {
		t.Fatalf("reissue's identifier %q", ev.Application.Organization.Identifier)
	}
}
