package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var services = []string{"intake", "validation", "billing", "issuer", "notifier"}

const modPrefix = "github.com/certlife/platform/"

func deps(t *testing.T, pattern string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", pattern)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pattern, err)
	}
	return strings.Fields(string(out))
}

// SPEC §2: no service imports another service's packages.
func TestServicesImportNoOtherService_Architecture(t *testing.T) {
	for _, s := range services {
		for _, d := range deps(t, "./services/"+s+"/...") {
			for _, other := range services {
				if other != s && strings.HasPrefix(d, modPrefix+"services/"+other) {
					t.Errorf("services/%s depends on %s", s, d)
				}
			}
		}
	}
}

// SPEC §2: pkg/ knows no service, and pkg/events depends on nothing of ours.
func TestPkgKnowsNoService_Architecture(t *testing.T) {
	for _, d := range deps(t, "./pkg/...") {
		if strings.HasPrefix(d, modPrefix+"services/") || strings.HasPrefix(d, modPrefix+"cmd/") {
			t.Errorf("pkg depends on %s", d)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./pkg/events")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, modPrefix) && d != modPrefix+"pkg/events" {
			t.Errorf("pkg/events depends on %s", d)
		}
	}
}

// SPEC §2: no service touches another service's schema. Every pool's
// search_path is its own schema; this catches a schema-qualified name of
// another service in any SQL a service carries.
func TestServicesTouchNoOtherSchema_Architecture(t *testing.T) {
	for _, s := range services {
		var others []string
		for _, o := range services {
			if o != s {
				others = append(others, o)
			}
		}
		re := regexp.MustCompile(`(?i)\b(FROM|JOIN|INTO|UPDATE|TABLE|REFERENCES)\s+"?(` + strings.Join(others, "|") + `)"?\.`)
		root := filepath.Join("../../services", s)
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".sql")) {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if m := re.Find(b); m != nil {
				t.Errorf("%s reaches another service's schema: %q", path, m)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
