package openapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func parse(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(Document(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return doc
}

// operation is one method of one path, with its path item.
type operation struct {
	path, method string
	item, op     map[string]any
}

func operations(t *testing.T, doc map[string]any) []operation {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("the document has no paths")
	}
	var out []operation
	for p, raw := range paths {
		item, ok := raw.(map[string]any)
		if !ok {
			t.Fatalf("path %s is not an object", p)
		}
		for _, m := range methods {
			if op, ok := item[m].(map[string]any); ok {
				out = append(out, operation{path: p, method: m, item: item, op: op})
			}
		}
	}
	return out
}

// resolve follows a local JSON pointer ("#/components/schemas/X").
func resolve(doc map[string]any, ref string) (any, bool) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	var cur any = doc
	if frag == "" {
		return cur, true
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, false
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// deref resolves v when it is a {"$ref": …} object.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		target, ok := resolve(doc, ref)
		if !ok {
			t.Fatalf("unresolved $ref %s", ref)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

// The document is OpenAPI 3.1 and says what it is (SPEC §5, SE-4).
func TestOpenAPIDocumentIs31_SE4(t *testing.T) {
	doc := parse(t)
	v, _ := doc["openapi"].(string)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Fatalf("info needs title and version: %v", info)
	}
	if len(operations(t, doc)) == 0 {
		t.Fatal("no operations")
	}
}

func TestOpenAPIOperationIDsUnique(t *testing.T) {
	doc := parse(t)
	seen := map[string]string{}
	for _, o := range operations(t, doc) {
		where := strings.ToUpper(o.method) + " " + o.path
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", where)
			continue
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("operationId %q used by %s and %s", id, prev, where)
		}
		seen[id] = where
		if rs, _ := o.op["responses"].(map[string]any); len(rs) == 0 {
			t.Errorf("%s documents no response", where)
		}
	}
}

func TestOpenAPIRefsResolve(t *testing.T) {
	doc := parse(t)
	n := 0
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				if _, ok := resolve(doc, ref); !ok {
					t.Errorf("%s: $ref %q does not resolve", at, ref)
				}
			}
			for k, c := range v {
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(at+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", doc)
	if n == 0 {
		t.Fatal("no $ref found: the walk is broken")
	}
}

// Every {param} of a path template is declared as a path parameter, and
// no path parameter is declared that the template lacks.
func TestOpenAPIPathParamsDeclared(t *testing.T) {
	doc := parse(t)
	tmpl := regexp.MustCompile(`\{([^}]+)\}`)
	for _, o := range operations(t, doc) {
		where := strings.ToUpper(o.method) + " " + o.path
		declared := map[string]bool{}
		for _, list := range []any{o.item["parameters"], o.op["parameters"]} {
			ps, _ := list.([]any)
			for _, p := range ps {
				pm := deref(t, doc, p)
				if pm["in"] == "path" {
					name, _ := pm["name"].(string)
					declared[name] = true
					if pm["required"] != true {
						t.Errorf("%s: path parameter %s must be required", where, name)
					}
				}
			}
		}
		var want []string
		for _, m := range tmpl.FindAllStringSubmatch(o.path, -1) {
			want = append(want, m[1])
			if !declared[m[1]] {
				t.Errorf("%s: {%s} is not declared", where, m[1])
			}
		}
		for name := range declared {
			if !slices.Contains(want, name) {
				t.Errorf("%s: path parameter %s is not in the template", where, name)
			}
		}
	}
}

// Errors are RFC 9457 problems with the shared Problem schema (SE-4),
// /readyz's 503 included.
func TestOpenAPIErrorsAreProblems_SE4(t *testing.T) {
	doc := parse(t)
	problem := "#/components/schemas/Problem"
	ps := deref(t, doc, map[string]any{"$ref": problem})
	props, _ := ps["properties"].(map[string]any)
	for _, f := range []string{"type", "title", "status", "detail", "instance", "errors"} {
		if props[f] == nil {
			t.Errorf("Problem lacks %s", f)
		}
	}
	fe := deref(t, doc, map[string]any{"$ref": "#/components/schemas/FieldError"})
	feProps, _ := fe["properties"].(map[string]any)
	if feProps["field"] == nil || feProps["message"] == nil {
		t.Errorf("FieldError must have field and message: %v", fe)
	}
	for _, o := range operations(t, doc) {
		where := strings.ToUpper(o.method) + " " + o.path
		rs, _ := o.op["responses"].(map[string]any)
		for code, r := range rs {
			if code < "400" {
				continue
			}
			rm := deref(t, doc, r)
			content, _ := rm["content"].(map[string]any)
			pj, _ := content["application/problem+json"].(map[string]any)
			schema, _ := pj["schema"].(map[string]any)
			if len(content) != 1 || schema["$ref"] != problem {
				t.Errorf("%s %s: want application/problem+json with the Problem schema, got %v", where, code, content)
			}
		}
	}
}

// Security requirements name known schemes; every ops route names the one
// role it needs (SE-5), or none when any valid token will do (whoami);
// nothing else uses the ops scheme.
func TestOpenAPISecurity_SE5(t *testing.T) {
	doc := parse(t)
	comps, _ := doc["components"].(map[string]any)
	schemes, _ := comps["securitySchemes"].(map[string]any)
	for _, name := range []string{"applicantBearer", "applicantBasic", "opsBearer"} {
		if schemes[name] == nil {
			t.Errorf("securitySchemes lacks %s", name)
		}
	}
	for _, o := range operations(t, doc) {
		where := strings.ToUpper(o.method) + " " + o.path
		reqs, ok := o.op["security"].([]any)
		if !ok {
			t.Errorf("%s: no security (use [] for a public route)", where)
			continue
		}
		var opsRoles []any
		for _, req := range reqs {
			for name, scopes := range req.(map[string]any) {
				if schemes[name] == nil {
					t.Errorf("%s: unknown security scheme %s", where, name)
				}
				if name == "opsBearer" {
					opsRoles, _ = scopes.([]any)
				}
			}
		}
		isOps := strings.HasPrefix(o.path, "/ops/")
		switch {
		case isOps && (len(reqs) != 1 || len(opsRoles) > 1 || opsRoles == nil):
			t.Errorf("%s: an ops route needs exactly opsBearer with one role (or [] for any), got %v", where, reqs)
		case isOps && len(opsRoles) == 1 && !slices.Contains([]any{"reviewer", "billing", "admin"}, opsRoles[0]):
			t.Errorf("%s: unknown role %v", where, opsRoles[0])
		case !isOps && opsRoles != nil:
			t.Errorf("%s: opsBearer outside /ops/", where)
		}
	}
}

func TestOpenAPIHandlerServesDocument(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body.Bytes(), Document()) {
		t.Fatal("the handler does not serve the document")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/openapi.json", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: status %d, want 304", res2.StatusCode)
	}
}
