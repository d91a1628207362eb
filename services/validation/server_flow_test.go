package validation

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// SV-7, SV-8, SV-9, VA-1, VA-2, VA-4, VA-7, VA-8, VA-9, PC-6, OP-1: a
// server application end to end inside the service. CancelWindowClosed
// starts a DNS validation per name; the name whose TXT record is already
// published (in a DNSSEC-signed zone) validates on the first check,
// through Unbound and the five agents, with CAA → DomainValidated; the
// customer reads what to publish for the other one, switches it to HTTP
// (a new value), serves the file → DomainValidated. The CSR's
// organization matches the registry → OrganizationVerified, and a phone
// check to the registry's number waits for an operator; recorded
// confirmed → PhoneVerified. The payment arrives last; the review enters
// the queue with its evidence and an operator's approval emits
// ReviewApproved carrying the server part as given.
// VA-3: the resolver (DCV_DNS_SERVER, Unbound on loopback) and the HTTP
// port (DCV_HTTP_PORT, a loopback server) are configuration.
func TestServerApplicationEndToEnd_SV7_SV8_SV9_VA2_VA3_VA7_VA9(t *testing.T) {
	f := startFlow(t, flowOptions{})
	a := serverApplication(t, "cust-e2e", registrySubject, "dns", "www.e2e.signed.test", "api.e2e.plain.test")
	f.accept(a)

	// The first name: publish after the instructions, before any check
	// could pass (the first check runs at once and fails: VA-6).
	st := f.dcvStatus("cust-e2e", a.ID)
	if len(st.Domains) != 2 || st.Organization.Status != domain.OrgVerified || st.Phone.Status != domain.PhonePending {
		t.Fatalf("status: %+v", st)
	}
	www := f.domainOf(st, "www.e2e.signed.test")
	if www.Method != domain.MethodDNS || www.RecordType != "TXT" || len(www.Value) != 32 || www.Status != domain.DCVPending ||
		strings.Join(www.RecordNames, ",") != "_pki-validation.www.e2e.signed.test,www.e2e.signed.test" {
		t.Fatalf("instructions: %+v", www)
	}
	failed := f.p.WaitEvent(events.TypeDomainValidationFailed, a.ID, wait)
	fv := decode[events.DomainValidationFailed](t, failed)
	if fv.Final || fv.Method != "dns" || !strings.Contains(fv.Detail, fv.Domain) || !strings.Contains(fv.Detail, "expected") {
		t.Errorf("first failure (VA-6): %+v", fv)
	}
	f.txt("_pki-validation.www.e2e.signed.test", www.Value)
	// The next check comes from the durable timer, on the injected clock.
	f.recheckedUntil("www validated", func() bool { return f.validatedDomains(a.ID)["www.e2e.signed.test"].ValidationID != "" })
	v := f.validatedDomains(a.ID)["www.e2e.signed.test"]
	if v.OrderID != a.Server.OrderID || v.Method != "dns" || v.ValidationID != www.ValidationID.String() ||
		!v.ValidUntil.Equal(v.ValidatedAt.Add(domain.DomainReuse(v.ValidatedAt))) {
		t.Errorf("DomainValidated: %+v", v)
	}

	// The second name: the customer switches to HTTP (SV-8).
	r := f.customer("cust-e2e", "PUT", "/v1/applications/"+a.ID+"/dcv", map[string]any{"method": "http", "domains": []string{"api.e2e.plain.test"}})
	mustStatus(t, r, http.StatusOK)
	var changed struct {
		Domains []domain.Instructions `json:"domains"`
	}
	r.JSON(t, &changed)
	var api domain.Instructions
	for _, d := range changed.Domains {
		if d.Domain == "api.e2e.plain.test" {
			api = d
		}
	}
	u, err := url.Parse(api.URL)
	if err != nil || api.Method != domain.MethodHTTP || !strings.HasPrefix(u.Path, "/.well-known/pki-validation/") || len(api.Value) != 32 {
		t.Fatalf("after the change: %+v", api)
	}
	f.host("api.e2e.plain.test")
	f.web.page("api.e2e.plain.test", u.Path, api.Value)
	f.recheckedUntil("api validated", func() bool { return f.validatedDomains(a.ID)["api.e2e.plain.test"].Method == "http" })

	// A validated domain's method no longer changes (409).
	r = f.customer("cust-e2e", "PUT", "/v1/applications/"+a.ID+"/dcv", map[string]any{"method": "dns", "domains": []string{"www.e2e.signed.test"}})
	mustStatus(t, r, http.StatusConflict)

	// The organization matched; verified data is new: a phone call.
	ov := decode[events.OrganizationVerified](t, f.p.WaitEvent(events.TypeOrganizationVerified, a.ID, wait))
	if ov.Reused || ov.DUNS != registryDUNS || ov.OrderID != a.Server.OrderID {
		t.Errorf("OrganizationVerified: %+v", ov)
	}
	pc := f.phoneCheckOf(a.ID)
	if pc.Phone != "+81 3-5000-1111" || pc.Organization != "VeriSign Japan K.K." || pc.Status != domain.PhonePending {
		t.Errorf("phone check (SV-9: the registry's number): %+v", pc)
	}
	if got := eventsOf(f.p, events.TypeReviewApproved, a.ID); len(got) != 0 {
		t.Fatal("approved before the phone check and the payment")
	}
	r = ops(t, f.p, "POST", "/ops/v1/phone-checks/"+pc.ID.String(), map[string]string{"result": "confirmed", "note": "spoke with the general affairs desk"})
	mustStatus(t, r, http.StatusOK)
	pv := decode[events.PhoneVerified](t, f.p.WaitEvent(events.TypePhoneVerified, a.ID, wait))
	if !pv.Confirmed || pv.CheckID != pc.ID.String() || pv.Operator != reviewerActor() {
		t.Errorf("PhoneVerified: %+v", pv)
	}
	// Recorded once.
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/phone-checks/"+pc.ID.String(), map[string]string{"result": "failed", "note": "x"}), http.StatusConflict)

	// Everything checked, not paid: not in the queue yet.
	st = f.dcvStatus("cust-e2e", a.ID)
	if st.Phone.Status != domain.PhoneConfirmed || f.domainOf(st, "www.e2e.signed.test").Status != domain.DCVValidated {
		t.Errorf("status after the checks: %+v", st)
	}
	if len(list(t, f.p, "pending")) != 0 {
		t.Fatal("queued before the payment")
	}
	f.pay(a)
	rv := pendingReview(t, f.p, a.ID)
	// OP-1: the evidence — the registry's record, the phone check, each
	// name's validation.
	ev := rv.Evidence.Server
	if ev == nil || ev.Registry == nil || ev.Registry.Phone != "+81 3-5000-1111" || ev.Organization.Status != domain.OrgVerified ||
		ev.Phone == nil || ev.Phone.Status != domain.PhoneConfirmed || len(ev.Validations) != 2 || ev.CommonName != "www.e2e.signed.test" ||
		ev.Validations[0].Status != domain.DCVValidated || ev.Validations[1].Status != domain.DCVValidated {
		t.Errorf("server evidence: %+v", ev)
	}
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil), http.StatusOK)
	approved := decode[events.ReviewApproved](t, f.p.WaitEvent(events.TypeReviewApproved, a.ID, wait))
	if approved.Application.Server == nil || approved.Application.Server.CSR != a.Server.CSR ||
		!approved.Application.Server.CoverageEnd.Equal(a.Server.CoverageEnd) || approved.Reviewer != reviewerActor() {
		t.Errorf("ReviewApproved: %+v", approved)
	}

	// VA-9: every attempt recorded with each perspective's observation.
	page := f.attempts("domain=www.e2e.signed.test")
	var passed *validationAttempt
	for i, at := range page.Validations {
		if at.Kind == "domain" && at.Result == "passed" {
			passed = &page.Validations[i]
		}
	}
	if passed == nil || len(passed.Perspectives) != 6 || passed.ValueSHA256 != domain.HashValue(www.Value) ||
		perspectivesOf(*passed)["primary"].DNSSEC != domain.DNSSECSecure {
		t.Errorf("recorded: %+v", page.Validations)
	}
}

// PC-6, VA-5, SV-9: with REVIEW_AUTO_APPROVE, a payment that arrives
// before the application, then checks that pass → ReviewApproved without
// an operator. A second application of the same customer for the same
// names and organization reuses the validations and the verified
// organization (no phone call) and is approved at once.
func TestServerApplicationPaidFirstAndReuse_VA5_PC6(t *testing.T) {
	f := startFlow(t, flowOptions{autoApprove: true})
	f.txt("_pki-validation.www.re.plain.test", "placeholder")
	first := serverApplication(t, "cust-re", registrySubject, "dns", "www.re.plain.test")
	f.pay(first)
	f.p.Settle(validationapp.ConsumerServer, wait)
	f.accept(first)
	in := f.domainOf(f.dcvStatus("cust-re", first.ID), "www.re.plain.test")
	f.txt("_pki-validation.www.re.plain.test", in.Value)
	f.recheckedUntil("first validated", func() bool { return len(eventsOf(f.p, events.TypeDomainValidated, first.ID)) > 0 })
	pc := f.phoneCheckOf(first.ID)
	if len(eventsOf(f.p, events.TypeReviewApproved, first.ID)) != 0 {
		t.Fatal("approved before the phone check")
	}
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/phone-checks/"+pc.ID.String(), map[string]string{"result": "confirmed"}), http.StatusOK)
	if a := decode[events.ReviewApproved](t, f.p.WaitEvent(events.TypeReviewApproved, first.ID, wait)); a.Reviewer != domain.ReviewerAuto {
		t.Errorf("first: %+v", a)
	}

	second := serverApplication(t, "cust-re", registrySubject, "dns", "www.re.plain.test")
	f.accept(second)
	f.pay(second)
	if a := decode[events.ReviewApproved](t, f.p.WaitEvent(events.TypeReviewApproved, second.ID, wait)); a.Reviewer != domain.ReviewerAuto {
		t.Errorf("second: %+v", a)
	}
	ov := decode[events.OrganizationVerified](t, f.p.WaitEvent(events.TypeOrganizationVerified, second.ID, wait))
	if !ov.Reused || !ov.ValidUntil.After(f.p.Clock.Now().Add(397*domain.Day)) {
		t.Errorf("organization reuse (VA-5): %+v", ov)
	}
	st := f.dcvStatus("cust-re", second.ID)
	if st.Phone.Status != domain.PhoneNotNeeded || !st.Organization.Reused || f.domainOf(st, "www.re.plain.test").Status != domain.DCVValidated {
		t.Errorf("second's status: %+v", st)
	}
	if len(eventsOf(f.p, events.TypeDomainValidated, second.ID)) != 1 {
		t.Error("the reused validation is not told (DomainValidated)")
	}
}

// SV-7: a CSR whose organization differs from the registry's English
// record: OrganizationVerificationFailed naming each field with both
// values, no OrganizationVerified, no phone check, and the application
// is refused (ReviewRejected with both values) — shown to the customer
// too.
func TestServerApplicationOrganizationMismatch_SV7(t *testing.T) {
	f := startFlow(t, flowOptions{})
	subject := registrySubject
	subject.Organization, subject.Locality = []string{"VeriSign Japan KK"}, []string{"Chuo"}
	a := serverApplication(t, "cust-om", subject, "dns", "www.om.plain.test")
	f.accept(a)
	fail := decode[events.OrganizationVerificationFailed](t, f.p.WaitEvent(events.TypeOrganizationVerificationFailed, a.ID, wait))
	if !fail.Final || len(fail.Mismatches) != 2 ||
		fail.Mismatches[0] != (events.OrganizationMismatch{Field: "organization", Applied: "VeriSign Japan KK", Registry: "VeriSign Japan K.K."}) {
		t.Errorf("failure: %+v", fail)
	}
	rej := decode[events.ReviewRejected](t, f.p.WaitEvent(events.TypeReviewRejected, a.ID, wait))
	for _, want := range []string{`"VeriSign Japan KK"`, `"VeriSign Japan K.K."`, `"Chuo"`, `"Chuo-ku"`} {
		if !strings.Contains(rej.Reason, want) {
			t.Errorf("reason %q does not name %s", rej.Reason, want)
		}
	}
	if rej.Recipient.Email != "taro@example.co.jp" {
		t.Errorf("rejection: %+v", rej)
	}
	st := f.dcvStatus("cust-om", a.ID)
	if st.Organization.Status != domain.OrgMismatch || len(st.Organization.Mismatches) != 2 || st.Phone.Status != domain.PhoneNone {
		t.Errorf("status: %+v", st)
	}
	if len(eventsOf(f.p, events.TypeOrganizationVerified, a.ID)) != 0 {
		t.Error("OrganizationVerified for a mismatch")
	}
	// Paid later: stays rejected; the method no longer changes.
	f.pay(a)
	f.p.Settle(validationapp.ConsumerServer, wait)
	if len(eventsOf(f.p, events.TypeReviewApproved, a.ID)) != 0 || len(eventsOf(f.p, events.TypeReviewRejected, a.ID)) != 1 {
		t.Error("decided twice")
	}
	mustStatus(t, f.customer("cust-om", "PUT", "/v1/applications/"+a.ID+"/dcv", map[string]any{"method": "http"}), http.StatusConflict)
}

// VA-4, VA-7, VA-8: the refusals, each a DomainValidationFailed naming
// the domain, the method, what was expected and what was found (VA-6),
// and no DomainValidated: a CAA record forbidding this CA, a CAA
// accounturi of another account, a bogus DNSSEC signature, two of five
// perspectives seeing another value.
func TestServerApplicationRefusals_VA4_VA6_VA7_VA8(t *testing.T) {
	f := startFlow(t, flowOptions{})
	names := []string{"www.caa.plain.test", "www.acct.plain.test", "www.bogus.test", "www.hijack.plain.test"}
	f.everywhere(func(s *testenv.DNSServer) {
		s.CAA(t, "caa.plain.test", `0 issue "other-ca.example"`)
		s.CAA(t, "acct.plain.test", `0 issue "certlife.example; accounturi=acct:someone-else@certlife.example"`)
	})
	a := serverApplication(t, "cust-rf", registrySubject, "dns", names...)
	f.accept(a)
	st := f.dcvStatus("cust-rf", a.ID)
	for _, n := range names {
		in := f.domainOf(st, n)
		f.txt("_pki-validation."+n, in.Value)
	}
	f.views["arin-1"].TXT(t, "_pki-validation.www.hijack.plain.test", "hijacked-1")
	f.views["ripe-2"].TXT(t, "_pki-validation.www.hijack.plain.test", "hijacked-2")
	want := map[string][]string{
		"www.caa.plain.test":    {"other-ca.example"},
		"www.acct.plain.test":   {"acct:someone-else@certlife.example"},
		"www.bogus.test":        {"SERVFAIL"},
		"www.hijack.plain.test": {"arin-1", "ripe-2", "hijacked-1"},
	}
	f.recheckedUntil("the published values checked", func() bool {
		fs := f.failures(a.ID)
		for n, subs := range want {
			if !strings.Contains(fs[n].Detail, subs[0]) {
				return false
			}
		}
		return true
	})
	fs := f.failures(a.ID)
	for n, subs := range want {
		for _, s := range append(subs, n, "method dns") {
			if !strings.Contains(fs[n].Detail, s) {
				t.Errorf("%s: %q does not name %q", n, fs[n].Detail, s)
			}
		}
	}
	if v := f.validatedDomains(a.ID); len(v) != 0 {
		t.Errorf("validated despite the refusals: %+v", v)
	}
	f.pay(a)
	f.p.Settle(validationapp.ConsumerServer, wait)
	if len(list(t, f.p, "pending")) != 0 || len(eventsOf(f.p, events.TypeReviewApproved, a.ID)) != 0 {
		t.Error("queued or approved with unvalidated domains")
	}
}

// VA-2, SE-1: the e-mail method of a server application: the link's
// page changes nothing (mail scanners open links); posting it validates
// (CAA checked) → DomainValidated. An unknown value is 404.
func TestServerApplicationEmailLink_VA2(t *testing.T) {
	f := startFlow(t, flowOptions{})
	a := serverApplication(t, "cust-em", registrySubject, "email", "www.em.plain.test")
	a.Server.DCV.ApproverEmail = "admin@em.plain.test"
	f.accept(a)
	req := decode[events.DomainValidationEmailRequested](t, f.p.WaitEvent(events.TypeDomainValidationEmailRequested, a.ID, wait))
	raw, err := f.notifier.Open(req.SealedValue)
	if err != nil || req.Recipient.Email != "admin@em.plain.test" || !req.Deprecated {
		t.Fatalf("request: %+v %v", req, err)
	}
	page := f.p.Do("GET", "/v1/dcv/confirm?value="+string(raw), nil)
	if page.Status != http.StatusOK || !strings.Contains(string(page.Body), `method="post"`) {
		t.Fatalf("page: %d %s", page.Status, page.Body)
	}
	if st := f.dcvStatus("cust-em", a.ID); st.Domains[0].Status != domain.DCVPending || !st.Domains[0].Deprecated {
		t.Fatalf("the page validated: %+v", st.Domains[0])
	}
	mustStatus(t, f.p.Do("POST", "/v1/dcv/confirm?value=not-a-value", nil), http.StatusNotFound)
	r := f.p.Do("POST", "/v1/dcv/confirm?value="+string(raw), nil)
	mustStatus(t, r, http.StatusOK)
	v := decode[events.DomainValidated](t, f.p.WaitEvent(events.TypeDomainValidated, a.ID, wait))
	if v.Method != "email" || v.Domain != "www.em.plain.test" {
		t.Errorf("DomainValidated: %+v", v)
	}
	mustStatus(t, f.p.Do("POST", "/v1/dcv/confirm?value="+string(raw), nil), http.StatusNotFound)
}

// SV-8, VA-2: the customer's routes refuse what they must: no session
// 401; another customer's application 404; an unknown method, HTTP for
// a wildcard, an approver outside the constructed addresses 422; a name
// not of the application 422.
func TestServerDCVRouteProblems_SV8(t *testing.T) {
	f := startFlow(t, flowOptions{})
	a := serverApplication(t, "cust-pr", registrySubject, "dns", "www.pr.plain.test", "*.pr.plain.test")
	f.accept(a)
	path := "/v1/applications/" + a.ID + "/dcv"
	testenv.Eventually(t, wait, "the validations", func() bool {
		return f.customer("cust-pr", "GET", path, nil).Status == http.StatusOK
	})
	mustStatus(t, f.p.Do("GET", path, nil), http.StatusUnauthorized)
	mustStatus(t, f.customer("cust-other", "GET", path, nil), http.StatusNotFound)
	mustStatus(t, f.customer("cust-other", "PUT", path, map[string]any{"method": "http"}), http.StatusNotFound)
	for _, body := range []map[string]any{
		{"method": "carrier-pigeon"},
		{"method": "http", "domains": []string{"*.pr.plain.test"}},
		{"method": "email", "approver_email": "ceo@pr.plain.test", "domains": []string{"www.pr.plain.test"}},
		{"method": "dns", "domains": []string{"www.other.test"}},
		{"method": "dns", "unknown": true},
	} {
		r := f.customer("cust-pr", "PUT", path, body)
		if r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
			t.Errorf("%v: %d %s", body, r.Status, r.Body)
		}
	}
	st := f.dcvStatus("cust-pr", a.ID)
	if w := f.domainOf(st, "*.pr.plain.test"); w.Method != domain.MethodDNS {
		t.Errorf("a refused change changed the wildcard: %+v", w)
	}
}

// VA-4: CAA is checked again when an operator approves a server
// application whose last CAA check is older than the issuer can rely on
// (8 hours, BR §4.2.2.1): a record that now forbids refuses the approval
// (409 caa-forbids, recorded); once it permits again, the approval goes
// through.
func TestServerApprovalChecksCAAAgain_VA4(t *testing.T) {
	f := startFlow(t, flowOptions{})
	a := serverApplication(t, "cust-ca", registrySubject, "dns", "www.ca2.plain.test")
	f.accept(a)
	in := f.domainOf(f.dcvStatus("cust-ca", a.ID), "www.ca2.plain.test")
	f.txt("_pki-validation.www.ca2.plain.test", in.Value)
	f.recheckedUntil("validated", func() bool { return len(eventsOf(f.p, events.TypeDomainValidated, a.ID)) > 0 })
	pc := f.phoneCheckOf(a.ID)
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/phone-checks/"+pc.ID.String(), map[string]string{"result": "confirmed"}), http.StatusOK)
	f.pay(a)
	rv := pendingReview(t, f.p, a.ID)

	f.everywhere(func(s *testenv.DNSServer) { s.CAA(t, "ca2.plain.test", `0 issue "other-ca.example"`) })
	f.p.Advance(9 * time.Hour)
	r := ops(t, f.p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "other-ca.example") || !strings.Contains(string(r.Body), "caa-forbids") {
		t.Fatalf("approval with a forbidding CAA: %d %s", r.Status, r.Body)
	}
	if len(eventsOf(f.p, events.TypeReviewApproved, a.ID)) != 0 {
		t.Fatal("approved")
	}
	f.everywhere(func(s *testenv.DNSServer) { s.Set(t, "ca2.plain.test", dns.TypeCAA) })
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/reviews/"+rv.ID.String()+"/approve", nil), http.StatusOK)
	f.p.WaitEvent(events.TypeReviewApproved, a.ID, wait)
	caa := 0
	for _, at := range f.attempts("domain=www.ca2.plain.test").Validations {
		if at.Kind == "caa" {
			caa++
		}
	}
	if caa != 3 {
		t.Errorf("CAA attempts recorded: %d, want 3 (with the validation, refused, permitted)", caa)
	}
}

// PC-6: the last two checks of an application finishing at once (two
// names validated by timers firing together) still queue the review:
// each reads the other's result under the review's lock.
func TestServerLastChecksAtOnce_PC6(t *testing.T) {
	f := startFlow(t, flowOptions{autoApprove: true})
	names := []string{"a.twin.plain.test", "b.twin.plain.test", "c.twin.plain.test"}
	a := serverApplication(t, "cust-tw", registrySubject, "dns", names...)
	f.accept(a)
	mustStatus(t, ops(t, f.p, "POST", "/ops/v1/phone-checks/"+f.phoneCheckOf(a.ID).ID.String(), map[string]string{"result": "confirmed"}), http.StatusOK)
	f.pay(a)
	st := f.dcvStatus("cust-tw", a.ID)
	for _, n := range names {
		f.txt("_pki-validation."+n, f.domainOf(st, n).Value)
	}
	f.recheckedUntil("every name validated", func() bool { return len(f.validatedDomains(a.ID)) == len(names) })
	f.p.WaitEvent(events.TypeReviewApproved, a.ID, wait)
}

// SV-7: an organization not in the registry yet is told once (not
// final) and looked up again hourly; once operators load it, it is
// verified and its phone check opens.
func TestServerOrganizationLoadedLater_SV7(t *testing.T) {
	f := startFlow(t, flowOptions{})
	subject := registrySubject
	subject.Organization = []string{"Later K.K."}
	a := serverApplication(t, "cust-lt", subject, "dns", "www.lt.plain.test")
	a.Server.Organization.DUNS = "111111111"
	f.accept(a)
	fail := decode[events.OrganizationVerificationFailed](t, f.p.WaitEvent(events.TypeOrganizationVerificationFailed, a.ID, wait))
	if fail.Final || !strings.Contains(fail.Detail, "111111111") {
		t.Fatalf("not found: %+v", fail)
	}
	f.p.Advance(61 * time.Minute) // a second look-up, still missing: not told again
	testenv.Eventually(t, wait, "the second look-up", func() bool {
		return len(f.attempts("organization=111111111").Validations) >= 2
	})
	mustStatus(t, admin(t, f.p, "POST", "/ops/v1/registry", "text/csv", "number,name_en,street,city,state,postal_code,country,phone\n"+
		"111111111,Later K.K.,2-8-1 Yaesu,Chuo-ku,Tokyo,104-0028,JP,+81 3-5000-2222\n"), http.StatusOK)
	f.p.Advance(61 * time.Minute)
	ov := decode[events.OrganizationVerified](t, f.p.WaitEvent(events.TypeOrganizationVerified, a.ID, wait))
	if ov.DUNS != "111111111" || ov.Reused {
		t.Errorf("verified: %+v", ov)
	}
	if pc := f.phoneCheckOf(a.ID); pc.Phone != "+81 3-5000-2222" {
		t.Errorf("phone check: %+v", pc)
	}
	if n := len(eventsOf(f.p, events.TypeOrganizationVerificationFailed, a.ID)); n != 1 {
		t.Errorf("told %d times", n)
	}
}

// VA-1, VA-2, SV-8: a random value left unpublished expires after 30
// days: DomainValidationFailed, final; the customer draws a new one by
// changing the method — not to e-mail once 2028-03-15 has passed.
func TestServerDCVExpiryAndEmailSunset_VA1_VA2(t *testing.T) {
	f := startFlow(t, flowOptions{clock: frozenAt("2028-03-01T09:00:00Z")})
	a := serverApplication(t, "cust-ex", registrySubject, "dns", "www.ex.plain.test")
	f.accept(a)
	path := "/v1/applications/" + a.ID + "/dcv"
	if in := f.domainOf(f.dcvStatus("cust-ex", a.ID), "www.ex.plain.test"); !in.ExpiresAt.Equal(f.p.Clock.Now().Add(30 * domain.Day)) {
		t.Errorf("expires_at %s", in.ExpiresAt)
	}
	f.recheckedUntil("the value expired", func() bool {
		for _, env := range eventsOf(f.p, events.TypeDomainValidationFailed, a.ID) {
			if decode[events.DomainValidationFailed](t, env).Final {
				return true
			}
		}
		f.p.Advance(2 * domain.Day)
		return false
	})
	if in := f.domainOf(f.dcvStatus("cust-ex", a.ID), "www.ex.plain.test"); in.Status != domain.DCVExpired {
		t.Errorf("status: %+v", in)
	}
	r := f.customer("cust-ex", "PUT", path, map[string]any{"method": "email", "approver_email": "admin@ex.plain.test"})
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "2028-03-15") {
		t.Errorf("e-mail after the sunset: %d %s", r.Status, r.Body)
	}
	r = f.customer("cust-ex", "PUT", path, map[string]any{"method": "dns"})
	mustStatus(t, r, http.StatusOK)
	var st struct {
		Domains []domain.Instructions `json:"domains"`
	}
	r.JSON(t, &st)
	if st.Domains[0].Status != domain.DCVPending || !st.Domains[0].ExpiresAt.After(f.p.Clock.Now().Add(29*domain.Day)) {
		t.Errorf("a new value: %+v", st.Domains[0])
	}
	f.txt("_pki-validation.www.ex.plain.test", st.Domains[0].Value)
	f.recheckedUntil("validated with the new value", func() bool { return len(f.validatedDomains(a.ID)) == 1 })
}
