package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI end to end, against the all-in-one, is tested in
// cmd/certplatform (TestCertctlAgainstAllInOne_OP2_OP5_SE5). These are its
// parts without a server.

// OP-2: a config file that others can read is refused (exit 3); 0600 is read.
func TestConfigFileMode_OP2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"server": "http://h:1", "token": " tok "}`), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path)
	if ee, ok := err.(*exitError); !ok || ee.code != exitAuth || !strings.Contains(ee.msg, "chmod 600") {
		t.Fatalf("0640: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(path)
	if err != nil || c.Token != "tok" || c.Server != "http://h:1" {
		t.Fatalf("0600: %+v %v", c, err)
	}
	if c, err := loadConfig(filepath.Join(t.TempDir(), "none.json")); err != nil || c.Token != "" {
		t.Fatalf("missing file: %+v %v", c, err)
	}
	env := map[string]string{"XDG_CONFIG_HOME": "/x"}
	if p := configPath(func(k string) string { return env[k] }); p != "/x/certctl/config.json" {
		t.Fatalf("path %s", p)
	}
}

// Flags may follow positional arguments; the count is checked (exit 2).
func TestParseInterspersed_OP2(t *testing.T) {
	e := &env{g: &globals{output: "table"}}
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "")
	pos, err := e.parse(fs, []string{"0abc", "--reason", "superseded", "--output", "json"}, "SERIAL")
	if err != nil || len(pos) != 1 || pos[0] != "0abc" || *reason != "superseded" || e.g.output != "json" {
		t.Fatalf("%v %v %q %q", pos, err, *reason, e.g.output)
	}
	_, err = e.parse(flag.NewFlagSet("revoke", flag.ContinueOnError), []string{"a", "b"}, "SERIAL")
	if ee, ok := err.(*exitError); !ok || ee.code != exitUsage {
		t.Fatalf("two serials: %v", err)
	}
	if code := run([]string{"--output", "yaml", "whoami"}, func(string) string { return "" }, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("--output yaml: exit %d", code)
	}
}

func TestTableOutput_OP2(t *testing.T) {
	var v any
	_ = json.Unmarshal([]byte(`{"reviews": [{"id": "r1", "status": "pending", "n": 3, "application": {"x": 1}}]}`), &v)
	var b bytes.Buffer
	if err := printOut(&b, "table", v, view{list: "reviews"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "pending") || strings.Contains(b.String(), "application") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	_ = json.Unmarshal([]byte(`{"ok": true, "n": 2}`), &v)
	if err := printOut(&b, "table", v, view{}); err != nil || !strings.Contains(b.String(), "ok  true") {
		t.Fatalf("object:\n%s", b.String())
	}
}
