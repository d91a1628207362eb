package validation

import (
	"context"
	"crypto/x509/pkix"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/testenv"
	"github.com/certlife/platform/services/validation/internal/api"
	validationapp "github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

const registryCSV = "number,name_en,street,city,state,postal_code,country,phone\n" +
	"984940947,VeriSign Japan K.K.,2-8-1 Yaesu,Chuo-ku,Tokyo,104-0028,JP,+81 3-5000-1111\n" +
	"123456789,Example Inc.,1 Main St,Springfield,IL,62701,US,+1 217 555 0100\n" +
	"12345,Bad Number,1 St,City,,,JP,0300000000\n" +
	"555555555,No Country,1 St,City,,,,0300000000\n"

func admin(t *testing.T, p *testenv.Platform, method, path, contentType, body string) testenv.Response {
	t.Helper()
	return p.Do(method, path, body, "Authorization", "Bearer "+adminToken, "Content-Type", contentType)
}

func (e *dcvEnv) registryCount() int {
	var n int
	if err := e.pool().QueryRow(context.Background(), `SELECT count(*) FROM registry_organizations`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// SV-7, SV-9: operators (admin role) load the registry from CSV or JSON:
// good lines loaded, bad lines listed with their line and why; upsert
// replaces by number; a replacing load removes what is not in the file
// and refuses a file with a bad line, changing nothing. Reviewers cannot
// load it; bad input is a problem document, never a 500.
func TestRegistryLoad_SV7_SV9(t *testing.T) {
	e := startDCV(t, envOptions{})
	r := admin(t, e.p, "POST", "/ops/v1/registry", "text/csv", registryCSV)
	mustStatus(t, r, http.StatusOK)
	var res api.RegistryLoad
	r.JSON(t, &res)
	if res.Mode != "upsert" || res.Loaded != 2 || len(res.Rejected) != 2 || res.Rejected[0].Line != 4 || res.Rejected[1].Line != 5 ||
		!strings.Contains(res.Rejected[1].Error, "country") {
		t.Fatalf("csv load: %+v", res)
	}
	// JSON, upserting one and adding one.
	r = admin(t, e.p, "POST", "/ops/v1/registry?mode=upsert", "application/json",
		`[{"number":"123456789","name_en":"Example Incorporated","street":"1 Main St","city":"Springfield","state":"IL","postal_code":"62701","country":"US","phone":"+1 217 555 0100"},
		  {"number":"111222333","name_en":"Third K.K.","street":"1-1 Marunouchi","city":"Chiyoda-ku","state":"Tokyo","postal_code":"100-0005","country":"JP","phone":"03-0000-0000"},
		  {"number":"999","extra":true}]`)
	mustStatus(t, r, http.StatusOK)
	r.JSON(t, &res)
	if res.Loaded != 2 || len(res.Rejected) != 1 || res.Rejected[0].Line != 3 || e.registryCount() != 3 {
		t.Fatalf("json load: %+v, %d records", res, e.registryCount())
	}
	org, err := e.svc.orgs.Registry.Lookup(context.Background(), "123456789")
	if err != nil || org.NameEn != "Example Incorporated" {
		t.Errorf("upserted: %+v %v", org, err)
	}
	// A replacing load with a bad line changes nothing.
	r = admin(t, e.p, "POST", "/ops/v1/registry?mode=replace", "text/csv", registryCSV)
	mustStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.Body), "line 4") || e.registryCount() != 3 {
		t.Errorf("replace with bad lines: %s, %d records", r.Body, e.registryCount())
	}
	// A good replacing load removes the others.
	r = admin(t, e.p, "POST", "/ops/v1/registry?mode=replace", "text/csv",
		"number,name_en,street,city,state,postal_code,country,phone\n984940947,VeriSign Japan K.K.,2-8-1 Yaesu,Chuo-ku,Tokyo,104-0028,JP,+81 3-5000-1111\n")
	mustStatus(t, r, http.StatusOK)
	r.JSON(t, &res)
	if res.Loaded != 1 || res.Removed != 2 || e.registryCount() != 1 {
		t.Errorf("replace: %+v, %d records", res, e.registryCount())
	}
	// Roles and bad input.
	r = ops(t, e.p, "POST", "/ops/v1/registry", registryCSV, "Content-Type", "text/csv")
	mustStatus(t, r, http.StatusForbidden)
	r = e.p.Do("POST", "/ops/v1/registry", registryCSV, "Content-Type", "text/csv")
	mustStatus(t, r, http.StatusUnauthorized)
	for _, c := range []struct {
		path, ct, body string
		status         int
	}{
		{"/ops/v1/registry", "text/plain", registryCSV, http.StatusUnsupportedMediaType},
		{"/ops/v1/registry", "text/csv", "", http.StatusBadRequest},
		{"/ops/v1/registry", "text/csv", "number,name\n1,2\n", http.StatusUnprocessableEntity},
		{"/ops/v1/registry", "application/json", `{"number":"1"}`, http.StatusBadRequest},
		{"/ops/v1/registry", "application/json", `[`, http.StatusBadRequest},
		{"/ops/v1/registry?mode=merge", "text/csv", registryCSV, http.StatusUnprocessableEntity},
		{"/ops/v1/registry?mode=replace", "text/csv", "number,name_en,street,city,state,postal_code,country,phone\n", http.StatusUnprocessableEntity},
		{"/ops/v1/registry", "text/csv", strings.Repeat("x", api.MaxRegistryFile+1), http.StatusRequestEntityTooLarge},
	} {
		r := admin(t, e.p, "POST", c.path, c.ct, c.body)
		if r.Status != c.status || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s %s %.30q: %d %s, want %d", c.path, c.ct, c.body, r.Status, r.Body, c.status)
		}
	}
	if e.registryCount() != 1 {
		t.Errorf("bad input changed the registry: %d records", e.registryCount())
	}
}

// SV-7, VA-9: a CSR's organization and address must equal the
// registry's English record; a mismatch lists each field with both
// values; each match is recorded and listed by organization.
func TestVerifyOrganization_SV7_VA9(t *testing.T) {
	e := startDCV(t, envOptions{})
	mustStatus(t, admin(t, e.p, "POST", "/ops/v1/registry", "text/csv", registryCSV), http.StatusOK)
	verify := func(number string, n pkix.Name) validationapp.OrgResult {
		var res validationapp.OrgResult
		err := db.InTx(context.Background(), e.p.Unit("validation").Deps.Pool, func(tx pgx.Tx) error {
			var err error
			res, err = e.svc.orgs.VerifyOrganization(context.Background(), tx, validationapp.VerifyRequest{
				ApplicationID: "app-o", Number: number, Subject: domain.SubjectOf(n)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	good := pkix.Name{Organization: []string{"VeriSign Japan K.K."}, StreetAddress: []string{"2-8-1 Yaesu"}, Locality: []string{"Chuo-ku"},
		Province: []string{"Tokyo"}, PostalCode: []string{"104-0028"}, Country: []string{"JP"}}
	res := verify("98-494-0947", good)
	if !res.Found || !res.Matched || res.Organization.Phone != "+81 3-5000-1111" {
		t.Errorf("match: %+v", res)
	}
	bad := good
	bad.Organization, bad.Locality = []string{"VeriSign Japan KK"}, []string{"Chuo"}
	res = verify("984940947", bad)
	if !res.Found || res.Matched || len(res.Mismatches) != 2 ||
		res.Mismatches[0] != (domain.Mismatch{Field: "organization", Applied: "VeriSign Japan KK", Registry: "VeriSign Japan K.K."}) ||
		res.Mismatches[1] != (domain.Mismatch{Field: "locality", Applied: "Chuo", Registry: "Chuo-ku"}) {
		t.Errorf("mismatch: %+v", res)
	}
	if res := verify("000000001", good); res.Found || res.Matched {
		t.Errorf("unknown number: %+v", res)
	}
	page := e.attempts("organization=984940947")
	if len(page.Validations) != 2 || page.Validations[0].Result != "failed" ||
		!strings.Contains(page.Validations[0].Detail, `applied "VeriSign Japan KK", registry "VeriSign Japan K.K."`) ||
		page.Validations[1].Result != "passed" || page.Validations[0].Kind != "organization" {
		t.Errorf("recorded: %+v", page.Validations)
	}
}

// VA-9: GET /ops/v1/validations pages newest first; bad parameters are a
// 422 naming them; reviewers only.
func TestValidationsListing_VA9(t *testing.T) {
	e := startDCV(t, envOptions{})
	for i := 0; i < 3; i++ {
		in := e.mustStart("app-l"+itoa(i), "www.l.plain.test", domain.MethodDNS, "")
		e.check(in.ValidationID) // nothing published: one failed attempt each
	}
	seen := map[uuid.UUID]bool{}
	var prev *api.Attempt
	query := "domain=www.l.plain.test&limit=2"
	for page := 0; page < 3; page++ {
		p := e.attempts(query)
		for i := range p.Validations {
			a := p.Validations[i]
			if seen[a.ID] {
				t.Fatalf("attempt %s twice", a.ID)
			}
			seen[a.ID] = true
			if prev != nil && a.At.After(prev.At) {
				t.Errorf("not newest first: %s after %s", a.At, prev.At)
			}
			prev = &a
		}
		if p.Next == nil {
			break
		}
		query = "domain=www.l.plain.test&limit=2&before=" + p.Next.String()
	}
	if len(seen) != 3 {
		t.Errorf("paged through %d attempts, want 3", len(seen))
	}
	if all := e.attempts("limit=200"); len(all.Validations) != 3 {
		t.Errorf("all: %d", len(all.Validations))
	}
	for q, field := range map[string]string{
		"limit=0": "limit", "limit=x": "limit", "domain=-bad-": "domain", "before=nope": "before",
		"before=" + uuid.NewString(): "before", "organization=12": "organization", "sort=asc": "sort",
		"domain=www.l.plain.test&organization=984940947": "organization",
	} {
		r := ops(t, e.p, "GET", "/ops/v1/validations?"+q, nil)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), field) {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	mustStatus(t, e.p.Do("GET", "/ops/v1/validations", nil, "Authorization", "Bearer "+billingToken), http.StatusForbidden)
	mustStatus(t, e.p.Do("GET", "/ops/v1/validations", nil), http.StatusUnauthorized)
}
