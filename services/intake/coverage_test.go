package intake_test

import (
	"testing"
	"time"

	"github.com/certlife/platform/pkg/events"
	"github.com/certlife/platform/pkg/testenv"
)

// coverageDue publishes the issuer's CoverageReissueDue of a certificate
// made by app.
func (r *rig) coverageDue(app events.Application, certID string, notAfter time.Time, reuse bool) events.Envelope {
	return r.Publish(events.CoverageReissueDue{CertificateID: certID, ApplicationID: app.ID, CustomerID: app.Server.CustomerID,
		OrderID: app.Server.OrderID, CommonName: app.Server.CommonName, NotAfter: notAfter,
		CoverageEnd: app.Server.CoverageEnd, ReuseKey: reuse, DueAt: r.Clock.Now()}, certID)
}

// reissuesOf are the provisional reissue applications of a certificate.
func (r *rig) reissuesOf(t testing.TB, certID string) []events.Application {
	t.Helper()
	var out []events.Application
	for _, env := range r.Events(events.TypeApplicationProvisional) {
		p := decode[events.ApplicationProvisional](t, env)
		if p.Application.Kind == events.KindReissue && p.Application.PreviousCertificateID == certID {
			out = append(out, p.Application)
		}
	}
	return out
}

// IS-4 with reuse_key: the issuer's CoverageReissueDue makes one server
// reissue application with the previous CSR, order, names, DCV choice
// and coverage end, without a cancel window (straight to validation);
// a redelivery makes nothing more; the replacement is recorded on the order.
func TestCoverageReissueReusesKey_IS4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	b := serverBody(t, "cover@example.co.jp", exampleDN)
	b["reuse_key"] = true
	a := r.submit(t, b)
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	if !prov.Application.Server.ReuseKey {
		t.Fatal("reuse_key not carried by the application")
	}
	tok := r.customerLogin(t, "cover@example.co.jp", "a customer password")
	notAfter := r.Clock.Now().Add(199 * 24 * time.Hour).Truncate(time.Second)
	certID := r.issue(t, prov.Application, notAfter)
	r.waitOrder(t, tok, prov.Application.Server.OrderID, "issued", func(o orderView) bool { return o.Status == "issued" })
	r.Advance(169 * 24 * time.Hour)
	r.coverageDue(prov.Application, certID, notAfter, true)
	var re events.Application
	testenv.Eventually(t, 10*time.Second, "the reissue application", func() bool {
		list := r.reissuesOf(t, certID)
		if len(list) == 1 {
			re = list[0]
		}
		return len(list) == 1
	})
	prev, srv := prov.Application.Server, re.Server
	if re.Product != events.ProductServer || re.ApplicantID != prov.Application.ApplicantID || srv.CSR != prev.CSR ||
		srv.OrderID != prev.OrderID || !srv.CoverageEnd.Equal(prev.CoverageEnd) || len(srv.Domains) != 2 ||
		srv.DCV.Method != prev.DCV.Method || !srv.ReuseKey || srv.RenewalOf != "" {
		t.Fatalf("reissue application %+v", srv)
	}
	tok = r.customerLogin(t, "cover@example.co.jp", "a customer password")
	if o := r.order(t, tok, prev.OrderID); o.CoverageReissue == nil || o.CoverageReissue.Status != "applied" ||
		!o.CoverageReissue.ReuseKey || o.CoverageReissue.ApplicationID != re.ID {
		t.Fatalf("order's coverage reissue %+v", o.CoverageReissue)
	}
	closed := decode[events.CancelWindowClosed](t, r.WaitEvent(events.TypeCancelWindowClosed, re.ID, 10*time.Second))
	if closed.Application.Kind != events.KindReissue {
		t.Fatalf("closed %+v", closed.Application)
	}
	if n := len(r.Events(events.TypeCoverageCSRRequested)); n != 0 {
		t.Fatal("a CSR asked for although the key is reused")
	}
	// Redelivered under another event ID: nothing more.
	r.coverageDue(prov.Application, certID, notAfter, true)
	r.Settle("intake-applications", 10*time.Second)
	if n := len(r.reissuesOf(t, certID)); n != 1 {
		t.Fatalf("%d reissue applications", n)
	}
	// The replacement is the order's certificate now.
	next := r.issue(t, re, r.Clock.Now().Add(99*24*time.Hour))
	r.waitOrder(t, tok, prev.OrderID, "replacement", func(o orderView) bool { return o.CertificateID == next })
}

// IS-4 without reuse_key: CoverageReissueDue asks the customer for a new
// CSR (CoverageCSRRequested, deadline the certificate's notAfter) and
// makes no application; the customer's CSR at POST
// /v1/certificates/{id}/reissues (customer session) makes it, checked as
// at application (SV-6, same common name); a second one is a 409.
func TestCoverageReissueAsksForCSR_IS4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	a := r.submit(t, serverBody(t, "newkey@example.co.jp", exampleDN))
	prov := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, a.ID, 10*time.Second))
	notAfter := r.Clock.Now().Add(199 * 24 * time.Hour).Truncate(time.Second)
	certID := r.issue(t, prov.Application, notAfter)
	tok := r.customerLogin(t, "newkey@example.co.jp", "a customer password")
	r.waitOrder(t, tok, prov.Application.Server.OrderID, "issued", func(o orderView) bool { return o.Status == "issued" })
	path := "/v1/certificates/" + certID + "/reissues"
	// Nothing waits for a CSR yet.
	problemOf(t, r.Do("POST", path, map[string]any{"csr": csrPEM(t, exampleDN, nil)}, bearer(tok)...), 404)

	r.Advance(169 * 24 * time.Hour)
	r.coverageDue(prov.Application, certID, notAfter, false)
	req := decode[events.CoverageCSRRequested](t, r.WaitEvent(events.TypeCoverageCSRRequested, "", 10*time.Second))
	if req.CertificateID != certID || !req.Deadline.Equal(notAfter) || req.Recipient.Email != "newkey@example.co.jp" ||
		req.Recipient.Language != "ja" || req.CommonName != exampleDN.CN || !req.CoverageEnd.Equal(prov.Application.Server.CoverageEnd) {
		t.Fatalf("CSR request %+v", req)
	}
	if n := len(r.reissuesOf(t, certID)); n != 0 {
		t.Fatal("an application before the CSR")
	}
	tok = r.customerLogin(t, "newkey@example.co.jp", "a customer password")
	// The order shows the CSR it waits for (SV-12).
	if o := r.order(t, tok, prov.Application.Server.OrderID); o.CoverageReissue == nil ||
		o.CoverageReissue.Status != "awaiting_csr" || o.CoverageReissue.CertificateID != certID ||
		o.CoverageReissue.ApplicationID != req.ApplicationID || !o.CoverageReissue.CSRDue.Equal(notAfter) || o.CoverageReissue.ReuseKey {
		t.Fatalf("order's coverage reissue %+v", o.CoverageReissue)
	}
	other := exampleDN
	other.CN = "other.example.co.jp"
	withOU := exampleDN
	withOU.OU = "IT"
	for name, tc := range map[string]struct {
		body   any
		status int
	}{
		"no csr":        {map[string]any{}, 422},
		"not a csr":     {map[string]any{"csr": "hello"}, 422},
		"other CN":      {map[string]any{"csr": csrPEM(t, other, nil)}, 422},
		"OU (SV-6)":     {map[string]any{"csr": csrPEM(t, withOU, nil)}, 422},
		"not an object": {[]int{1}, 400},
	} {
		resp := r.Do("POST", path, tc.body, bearer(tok)...)
		if resp.Status != tc.status {
			t.Fatalf("%s: %d %s", name, resp.Status, resp.Body)
		}
	}
	// Another customer's certificate is not found.
	b := serverBody(t, "someone@example.co.jp", exampleDN)
	r.submit(t, b)
	tok2 := r.customerLogin(t, "someone@example.co.jp", "a customer password")
	problemOf(t, r.Do("POST", path, map[string]any{"csr": csrPEM(t, exampleDN, nil)}, bearer(tok2)...), 404)
	if n := len(r.reissuesOf(t, certID)); n != 0 {
		t.Fatal("bad input made an application")
	}

	csr := csrPEM(t, exampleDN, nil)
	resp := r.Do("POST", path, map[string]any{"csr": csr}, bearer(tok)...)
	if resp.Status != 202 {
		t.Fatalf("CSR: %d %s", resp.Status, resp.Body)
	}
	var acc accepted
	resp.JSON(t, &acc)
	if acc.ID != req.ApplicationID {
		t.Fatalf("application %s, the request named %s", acc.ID, req.ApplicationID)
	}
	re := decode[events.ApplicationProvisional](t, r.WaitEvent(events.TypeApplicationProvisional, acc.ID, 10*time.Second)).Application
	if re.Kind != events.KindReissue || re.PreviousCertificateID != certID || re.Server.CSR == prov.Application.Server.CSR ||
		re.Server.OrderID != prov.Application.Server.OrderID || !re.Server.CoverageEnd.Equal(prov.Application.Server.CoverageEnd) {
		t.Fatalf("reissue %+v", re.Server)
	}
	r.WaitEvent(events.TypeCancelWindowClosed, acc.ID, 10*time.Second)
	problemOf(t, r.Do("POST", path, map[string]any{"csr": csrPEM(t, exampleDN, nil)}, bearer(tok)...), 409)
	if o := r.order(t, tok, prov.Application.Server.OrderID); o.CoverageReissue == nil ||
		o.CoverageReissue.Status != "applied" || o.CoverageReissue.CSRReceivedAt == nil {
		t.Fatalf("order's coverage reissue after the CSR %+v", o.CoverageReissue)
	}
}

// problemOf checks an RFC 9457 answer's status.
func problemOf(t testing.TB, resp testenv.Response, status int) {
	t.Helper()
	if resp.Status != status || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("want a %d problem: %d %s %s", status, resp.Status, resp.Header.Get("Content-Type"), resp.Body)
	}
}
