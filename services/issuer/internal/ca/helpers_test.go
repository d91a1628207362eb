package ca_test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func parsePEMKey(raw []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, errors.New("no PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// criticalSAN is a subjectAltName extension with one rfc822Name, marked
// critical (Go marks it critical only for an empty subject).
func criticalSAN(t *testing.T, email string) pkix.Extension {
	t.Helper()
	val, err := asn1.Marshal([]asn1.RawValue{{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(email)}})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Critical: true, Value: val}
}

// The zlint command (zmap/zlint/v3/cmd/zlint at the module's version),
// built once per test binary. Under CI=true a failed build fails the
// test; elsewhere the test skips the check, saying why.
var zlintBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// zlintCommand runs the real zlint command on certificates and fails the
// test on any warning, error or fatal result the accepted list does not
// accept (dev scope included: these hierarchies use loopback URLs).
func zlintCommand(t *testing.T, ders ...[]byte) {
	t.Helper()
	for _, f := range zlintFindings(t, ders...) {
		t.Errorf("zlint command: %s", f)
	}
}

// zlintFindings runs the command and returns what the list does not accept.
func zlintFindings(t *testing.T, ders ...[]byte) []string {
	t.Helper()
	zlintBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "zlint-ca-")
		if err != nil {
			zlintBuild.err = err
			return
		}
		zlintBuild.dir, zlintBuild.path = dir, filepath.Join(dir, "zlint")
		out, err := exec.Command("go", "build", "-o", zlintBuild.path, "github.com/zmap/zlint/v3/cmd/zlint").CombinedOutput()
		if err != nil {
			zlintBuild.err = fmt.Errorf("%v: %s", err, out)
		}
	})
	if zlintBuild.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot build the zlint command: %v", zlintBuild.err)
		}
		t.Skipf("zlint command not run: %v", zlintBuild.err)
	}
	dir := t.TempDir()
	var files []string
	for i, der := range ders {
		f := filepath.Join(dir, fmt.Sprintf("%d.pem", i))
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	out, err := exec.Command(zlintBuild.path, files...).Output()
	if err != nil {
		t.Fatalf("zlint: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(files) {
		t.Fatalf("zlint answered for %d of %d certificates", len(lines), len(files))
	}
	acc := accepted(t)
	var findings []string
	for i, line := range lines {
		var results map[string]struct {
			Result  string `json:"result"`
			Details string `json:"details"`
		}
		if err := json.Unmarshal([]byte(line), &results); err != nil || len(results) < 100 {
			t.Fatalf("zlint output %d: %v (%d results)", i, err, len(results))
		}
		for name, r := range results {
			if (r.Result == "warn" || r.Result == "error" || r.Result == "fatal") && !acc.Accepts(name, true) {
				findings = append(findings, fmt.Sprintf("certificate %d: %s %s: %s", i, name, r.Result, r.Details))
			}
		}
	}
	return findings
}

// TestMain removes the zlint command built for this run.
func TestMain(m *testing.M) {
	code := m.Run()
	if zlintBuild.dir != "" {
		_ = os.RemoveAll(zlintBuild.dir)
	}
	os.Exit(code)
}
