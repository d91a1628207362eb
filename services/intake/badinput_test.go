package intake_test

import (
	"strings"
	"testing"

	"github.com/certlife/platform/pkg/testenv"
)

func del(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path[:len(path)-1] {
		cur = cur[p].(map[string]any)
	}
	delete(cur, path[len(path)-1])
	return m
}

func set(m map[string]any, v any, path ...string) map[string]any {
	cur := m
	for _, p := range path[:len(path)-1] {
		cur = cur[p].(map[string]any)
	}
	cur[path[len(path)-1]] = v
	return m
}

// PC-1: every missing or malformed field is a 422 naming that field, one
// error per field; SE-4: nothing is stored and nothing published.
func TestNewApplicationFieldValidation_PC1(t *testing.T) {
	r := newRig(t, testenv.Options{})
	cases := []struct {
		name string
		body map[string]any
		want string // fields, comma-joined, in order
	}{
		{"missing coupon", del(body("a@example.co.jp"), "coupon"), "coupon"},
		{"malformed coupon", set(body("a@example.co.jp"), "1234-5678", "coupon"), "coupon"},
		{"short password", set(body("a@example.co.jp"), "short", "password"), "password"},
		{"bad language", set(body("a@example.co.jp"), "fr", "language"), "language"},
		{"bad product", set(body("a@example.co.jp"), "gold", "product"), "product"},
		{"missing organization", del(body("a@example.co.jp"), "organization"), "organization"},
		{"bad company code", set(body("a@example.co.jp"), "12AB", "organization", "company_code"), "organization.company_code"},
		{"missing org name_ja", del(body("a@example.co.jp"), "organization", "name_ja"), "organization.name_ja"},
		{"non-latin org name_en", set(body("a@example.co.jp"), "日本", "organization", "name_en"), "organization.name_en"},
		{"missing org identifier", del(body("a@example.co.jp"), "organization", "identifier"), "organization.identifier"},
		{"org identifier check digit off", set(body("a@example.co.jp"), "NTRJP-4010001012346", "organization", "identifier"), "organization.identifier"},
		{"org identifier LEI checksum off", set(body("a@example.co.jp"), "LEIXG-5493001KJTIIGC8Y1R13", "organization", "identifier"), "organization.identifier"},
		{"org identifier of another country", set(body("a@example.co.jp"), "VATDE-123456789", "organization", "identifier"), "organization.identifier"},
		{"missing applicant name_ja", del(body("a@example.co.jp"), "applicant", "name_ja"), "applicant.name_ja"},
		{"non-latin name_en", set(body("a@example.co.jp"), "辺利", "applicant", "name_en"), "applicant.name_en"},
		{"bad email", set(body("a@example.co.jp"), "not-an-address", "applicant", "email"), "applicant.email"},
		{"bad phone", set(body("a@example.co.jp"), "03-5000-1111", "applicant", "phone"), "applicant.phone"},
		{"6-digit postal code", set(body("a@example.co.jp"), "104002", "applicant", "address", "postal_code"), "applicant.address.postal_code"},
		{"hyphenated postal code", set(body("a@example.co.jp"), "104-0028", "applicant", "address", "postal_code"), "applicant.address.postal_code"},
		{"unknown prefecture", set(body("a@example.co.jp"), "東京", "applicant", "address", "prefecture"), "applicant.address.prefecture"},
		{"missing city", del(body("a@example.co.jp"), "applicant", "address", "city"), "applicant.address.city"},
		{"missing street", del(body("a@example.co.jp"), "applicant", "address", "street"), "applicant.address.street"},
		{"missing address", del(body("a@example.co.jp"), "applicant", "address"), "applicant.address"},
		{"two bad fields", set(set(body("a@example.co.jp"), "x", "applicant", "phone"), "1", "applicant", "address", "postal_code"),
			"applicant.phone,applicant.address.postal_code"},
		{"wrong type", set(body("a@example.co.jp"), 12345, "coupon"), "coupon"},
		{"unknown field", set(body("a@example.co.jp"), "x", "nickname"), "nickname"},
		{"unknown nested field", set(body("a@example.co.jp"), "x", "applicant", "fax"), "fax"},
	}
	for _, c := range cases {
		resp := r.Do("POST", "/v1/applications", c.body)
		p := asProblem(t, resp)
		if resp.Status != 422 || p.fields() != c.want {
			t.Errorf("%s: %d fields %q, want 422 %q (%s)", c.name, resp.Status, p.fields(), c.want, resp.Body)
		}
	}
	// The building, titles and department are optional.
	b := body("a@example.co.jp")
	for _, f := range []string{"title_ja", "department_ja", "title_en"} {
		del(b, "applicant", f)
	}
	del(b, "applicant", "address", "building")
	r.submit(t, b)
	if n := r.count(t, "applications"); n != 1 {
		t.Fatalf("%d applications stored, want only the valid one", n)
	}
}

// SE-4: malformed JSON, an empty body, a wrong media type, trailing data
// and an oversized body are 4xx problems; nothing is stored or published.
func TestMalformedBodies_SE4(t *testing.T) {
	r := newRig(t, testenv.Options{})
	huge := `{"product":"client","coupon":"` + strings.Repeat("1", 70<<10) + `"}`
	cases := []struct {
		name   string
		body   string
		ct     string
		status int
	}{
		{"malformed", `{"product": "client",`, "application/json", 400},
		{"not an object", `[1,2]`, "application/json", 400},
		{"empty", ``, "application/json", 400},
		{"trailing data", `{} {}`, "application/json", 400},
		{"form encoded", `product=client`, "application/x-www-form-urlencoded", 415},
		{"oversized", huge, "application/json", 413},
	}
	for _, c := range cases {
		resp := r.Do("POST", "/v1/applications", []byte(c.body), "Content-Type", c.ct)
		asProblem(t, resp)
		if resp.Status != c.status {
			t.Errorf("%s: %d, want %d (%s)", c.name, resp.Status, c.status, resp.Body)
		}
	}
	for _, path := range []string{"/v1/sessions", "/v1/applications/not-a-uuid/cancellation"} {
		resp := r.Do("POST", path, []byte(`{"email": `))
		if resp.Status < 400 || resp.Status >= 500 {
			t.Errorf("%s: %d", path, resp.Status)
		}
		asProblem(t, resp)
	}
	if resp := r.Do("POST", "/v1/sessions", map[string]any{"email": "a@b.c", "certificate_code": ""}); resp.Status != 422 ||
		asProblem(t, resp).fields() != "password,certificate_code" {
		t.Errorf("session missing fields: %d %s", resp.Status, resp.Body)
	}
	if resp := r.Do("GET", "/v1/nowhere", nil); resp.Status != 404 {
		t.Errorf("unknown route: %d", resp.Status)
	}
	if n := r.count(t, "applications") + r.count(t, "outbox"); n != 0 {
		t.Fatalf("bad input stored %d rows", n)
	}
}
