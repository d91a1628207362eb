package intake_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/testenv"
)

const (
	searchReviewer = "search-reviewer-token-0123456789"
	searchBilling  = "search-billing-token-0123456789a"
)

type opsPage struct {
	Applications []struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		Organization struct {
			CompanyCode string `json:"company_code"`
		} `json:"organization"`
		Applicant struct {
			Email string `json:"email"`
		} `json:"applicant"`
		AcceptedAt time.Time `json:"accepted_at"`
	} `json:"applications"`
	Next string `json:"next"`
}

// OP-1, SE-5: operators (reviewer or admin) find applications by a part
// of the e-mail, status or ID, page through them newest first, and read
// one with its timeline; nothing secret is in the answer, bad parameters
// are 422 field errors, and a billing token is refused.
func TestOpsApplicationSearchAndTimeline_OP1_SE5(t *testing.T) {
	r := newRig(t, testenv.Options{Config: func(c *app.Config) {
		c.OpsTokens = testenv.OpsToken + ":admin," + searchReviewer + ":reviewer," + searchBilling + ":billing"
	}})
	first := r.submit(t, body("Search.A@example.co.jp"))
	second := r.submit(t, body("search.a@example.co.jp"))
	other := r.submit(t, body("other@example.jp"))
	if c := r.Do("POST", "/v1/applications/"+first.ID+"/cancellation", nil, basic("Search.A@example.co.jp", "an application password")...); c.Status != 200 {
		t.Fatalf("cancel: %d %s", c.Status, c.Body)
	}
	as := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	search := func(query string) opsPage {
		t.Helper()
		resp := r.Do("GET", "/ops/v1/applications?"+query, nil, as(searchReviewer)...)
		if resp.Status != 200 {
			t.Fatalf("search %s: %d %s", query, resp.Status, resp.Body)
		}
		for _, secret := range []string{"password", "coupon", "code"} {
			if strings.Contains(strings.ToLower(string(resp.Body)), `"`+secret) {
				t.Fatalf("search answer holds %q: %s", secret, resp.Body)
			}
		}
		var p opsPage
		resp.JSON(t, &p)
		return p
	}
	ids := func(p opsPage) string {
		var out []string
		for _, a := range p.Applications {
			out = append(out, a.ID)
		}
		return strings.Join(out, ",")
	}

	if got := ids(search("email=" + url.QueryEscape("SEARCH.A@"))); got != second.ID+","+first.ID {
		t.Fatalf("by e-mail part, any case: %s, want %s,%s (newest first)", got, second.ID, first.ID)
	}
	if got := ids(search("status=cancelled")); got != first.ID {
		t.Fatalf("cancelled: %s, want %s", got, first.ID)
	}
	p := search("id=" + other.ID)
	if ids(p) != other.ID || p.Applications[0].Applicant.Email != "other@example.jp" ||
		p.Applications[0].Organization.CompanyCode != "984940947" || p.Applications[0].Status != "provisional" {
		t.Fatalf("by id: %+v", p)
	}
	// Paging: one at a time, newest first, until no next.
	var paged []string
	q := "limit=1"
	for i := 0; i < 5; i++ {
		p := search(q)
		paged = append(paged, ids(p))
		if p.Next == "" {
			break
		}
		q = "limit=1&before=" + p.Next
	}
	if strings.Join(paged, ",") != other.ID+","+second.ID+","+first.ID+"," {
		t.Fatalf("pages %v", paged)
	}

	// One application with its timeline.
	resp := r.Do("GET", "/ops/v1/applications/"+first.ID, nil, as(searchReviewer)...)
	var d struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Timeline []struct {
			Event string `json:"event"`
		} `json:"timeline"`
	}
	resp.JSON(t, &d)
	if resp.Status != 200 || d.Status != "cancelled" || len(d.Timeline) != 2 ||
		d.Timeline[0].Event != "ApplicationProvisional" || d.Timeline[1].Event != "ApplicationCancelled" {
		t.Fatalf("detail: %d %s", resp.Status, resp.Body)
	}
	for _, path := range []string{"/ops/v1/applications/0190a5e4-0000-7000-8000-000000000000", "/ops/v1/applications/nope"} {
		if resp := r.Do("GET", path, nil, as(searchReviewer)...); resp.Status != 404 {
			t.Errorf("%s: %d", path, resp.Status)
		}
	}

	// Bad parameters name their field; nothing else is answered.
	resp = r.Do("GET", "/ops/v1/applications?status=bogus&id=x&before=y&limit=0&colour=red", nil, as(searchReviewer)...)
	if pr := asProblem(t, resp); resp.Status != 422 || len(pr.Errors) != 5 {
		t.Fatalf("bad parameters: %d %s", resp.Status, resp.Body)
	}

	// Roles (SE-5): admin passes, billing is refused, no token is 401.
	if resp := r.Ops("GET", "/ops/v1/applications", nil); resp.Status != 200 {
		t.Errorf("admin: %d", resp.Status)
	}
	for _, path := range []string{"/ops/v1/applications", "/ops/v1/applications/" + first.ID} {
		if resp := r.Do("GET", path, nil, as(searchBilling)...); resp.Status != 403 {
			t.Errorf("billing %s: %d", path, resp.Status)
		}
		if resp := r.Do("GET", path, nil); resp.Status != 401 {
			t.Errorf("no token %s: %d", path, resp.Status)
		}
	}
}
