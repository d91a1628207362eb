package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// One inner shape for every service (ENGINEERING.md "One shape for every
// service"; issue 6 item 9), so that knowing one is knowing all:
//
//	internal/api     HTTP only; the one place that knows problem documents
//	internal/app     use cases, each owning its transaction
//	internal/domain  types and rules, no I/O
//	internal/store   SQL
//
// layers are the four packages every service's internal/ is made of.
var layers = map[string]bool{"api": true, "app": true, "domain": true, "store": true}

// aliases are packages of a service that play a layer's role under
// another name still; that layer's rules apply to them.
var aliases = map[string]map[string]struct{ role, why string }{
	"issuer": {
		// Renaming these waits for the S/MIME work in progress in them
		// (issuance/retrieval.go, profile), so as not to move files under
		// another engineer's edits.
		"issuance": {"app", "the issuer's use cases (to be renamed app)"},
		"profile":  {"domain", "the issuer's rules: certificate profile, validity, CSR keys, revocation reasons (to be renamed domain)"},
	},
}

// extraPackages are the leaf packages a service may keep beside the four,
// each with why it is not one of them. A leaf imports none of the
// service's api, app or store, and no HTTP problem code.
var extraPackages = map[string]map[string]string{
	"issuer": {
		"ca":      "the CA proper: key files (0600), lint-before-sign, signing, the data key; its own custody boundary",
		"profile": "the X.509 certificate profile, validity and CSR key rules: a body of rules kept apart from the service's other rules",
		"ct":      "the Certificate Transparency client (IS-9): outbound I/O to CT logs through certificate-transparency-go, neither SQL nor served HTTP",
	},
	"notifier": {
		"templates": "the embedded mail templates per language and their rendering",
		"smtpsend":  "the SMTP client the use cases send through: outbound I/O that is neither SQL nor HTTP",
	},
	"intake": {
		"secret": "password and code hashing, codes and tokens: a crypto leaf without I/O",
		"acme":   "the ACME protocol (RFC 8555, RFC 9773): JWS parsing and verification, EAB, problem types, identifiers, key authorizations, CSR checks, ARI certIDs — a protocol leaf without I/O, served by internal/api and kept by internal/app",
	},
	"validation": {
		"dcv": "the network perspective: DNS lookups through the validating resolver, the HTTP file fetch, CAA tree climbing, and the NATS request/reply of the remote perspectives (validation-agent) — outbound I/O that is neither SQL nor HTTP serving, shared by the service and its agents",
	},
}

// forbidden lists, per role, import paths (or prefixes ending in "/") a
// package of that role must not import.
var forbidden = map[string][]string{
	"app":    {modPrefix + "pkg/httpx"},
	"domain": {modPrefix + "pkg/httpx", "net/http", "github.com/jackc/", "github.com/nats-io/", modPrefix + "pkg/bus", modPrefix + "pkg/db", modPrefix + "pkg/timer", modPrefix + "pkg/rpc"},
	"store":  {modPrefix + "pkg/httpx", "net/http", "github.com/nats-io/", modPrefix + "pkg/bus", modPrefix + "pkg/rpc"},
	"extra":  {modPrefix + "pkg/httpx"},
}

// inward lists, per role, the service's own layers it must not import:
// dependencies point from api to app to store and domain, never back.
var inward = map[string][]string{
	"app":    {"api"},
	"domain": {"api", "app", "store"},
	"store":  {"api", "app"},
	"extra":  {"api", "app", "store"},
}

// handlerTypes are the net/http types of a handler, which only internal/api
// may take, return or hold.
var handlerTypes = map[string]bool{"Request": true, "ResponseWriter": true, "Handler": true, "HandlerFunc": true}

type goPackage struct {
	path, dir string
	files     []string
	imports   []string
}

func internalPackages(t *testing.T, service string) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \",\"}}\t{{join .Imports \",\"}}",
		"./services/"+service+"/internal/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", service, err)
	}
	var pkgs []goPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("go list: %q", line)
		}
		p := goPackage{path: f[0], dir: f[1]}
		if f[2] != "" {
			p.files = strings.Split(f[2], ",")
		}
		if f[3] != "" {
			p.imports = strings.Split(f[3], ",")
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// role is what a package under internal/ is: a layer, an allowed extra,
// or "" when the shape has no place for it.
func role(service, top string) string {
	switch {
	case layers[top]:
		return top
	case aliases[service][top].role != "":
		return aliases[service][top].role
	case extraPackages[service][top] != "":
		return "extra"
	}
	return ""
}

// SPEC §2, issue 6 item 9: every service has the same inner shape. The
// test applies to all five; a service being reshaped fails it until it is
// done.
func TestServicesHaveOneShape_Architecture(t *testing.T) {
	for _, s := range services {
		t.Run(s, func(t *testing.T) {
			checkLayout(t, s)
			internal := modPrefix + "services/" + s + "/internal/"
			seen := map[string]bool{}
			for _, p := range internalPackages(t, s) {
				top, _, _ := strings.Cut(strings.TrimPrefix(p.path, internal), "/")
				r := role(s, top)
				if r == "" {
					t.Errorf("services/%s/internal/%s: the shape has api, app, domain and store (and listed extras), not %q", s, top, top)
					continue
				}
				seen[r] = true
				for _, imp := range p.imports {
					for _, bad := range forbidden[r] {
						if imp == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(imp, bad) {
							t.Errorf("%s (%s) imports %s", p.path, r, imp)
						}
					}
					if rest, ok := strings.CutPrefix(imp, internal); ok {
						dep, _, _ := strings.Cut(rest, "/")
						for _, layer := range inward[r] {
							if role(s, dep) == layer {
								t.Errorf("%s (%s) imports its service's %s: %s", p.path, r, layer, imp)
							}
						}
					}
				}
				if r != "api" {
					for _, f := range p.files {
						checkNoHandlerTypes(t, filepath.Join(p.dir, f))
					}
				}
			}
			for l := range layers {
				if !seen[l] {
					t.Errorf("services/%s has no internal/%s", s, l)
				}
			}
		})
	}
}

// checkNoHandlerTypes fails when a file outside internal/api declares a
// function, method, field or type that takes, returns or holds an HTTP
// request, response writer or handler: use cases get plain values.
func checkNoHandlerTypes(t *testing.T, path string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	httpName := ""
	for _, imp := range f.Imports {
		if imp.Path.Value == `"net/http"` {
			httpName = "http"
			if imp.Name != nil {
				httpName = imp.Name.Name
			}
		}
	}
	if httpName == "" {
		return
	}
	report := func(n ast.Node) {
		ast.Inspect(n, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == httpName && handlerTypes[sel.Sel.Name] {
					t.Errorf("%s: %s.%s outside internal/api", fset.Position(sel.Pos()), httpName, sel.Sel.Name)
				}
			}
			return true
		})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncType: // signatures of functions, methods, literals and interface methods
			report(n)
			return false
		case *ast.TypeSpec:
			report(n.Type)
			return false
		case *ast.ValueSpec:
			if n.Type != nil {
				report(n.Type)
			}
		}
		return true
	})
}

var oneLineMain = regexp.MustCompile(`(?m)^func main\(\) \{ app\.Main\(\w+\.Definition\) \}$`)

// checkLayout: what a reader finds in services/<name>/ — a README that
// says what the service owns, consumes, emits and serves, service.go, a
// one-line cmd/<name>/main.go, and its migrations.
func checkLayout(t *testing.T, s string) {
	t.Helper()
	root := filepath.Join("../../services", s)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Errorf("services/%s has no README.md", s)
	}
	for _, section := range []string{"Owns", "Consumes", "Emits", "Serves"} {
		if err == nil && !regexp.MustCompile(`(?m)^##+ `+section+`\b`).Match(readme) {
			t.Errorf("services/%s/README.md has no %q section", s, section)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "service.go")); err != nil {
		t.Errorf("services/%s has no service.go", s)
	}
	main, err := os.ReadFile(filepath.Join(root, "cmd", s, "main.go"))
	if err != nil || !oneLineMain.Match(main) {
		t.Errorf("services/%s/cmd/%s/main.go is not the one line func main() { app.Main(%s.Definition) }: %v", s, s, s, err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "migrations", "*.sql")); len(m) == 0 {
		t.Errorf("services/%s has no migrations", s)
	}
}
