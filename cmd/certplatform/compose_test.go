package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/certlife/platform/pkg/app"
	"github.com/certlife/platform/pkg/seal"
	"github.com/certlife/platform/pkg/session"
)

// composeRequires is what each service binary refuses to start without
// (outside the all-in-one, SE-10; each service's startup tests prove the
// refusal): variables that must be set, and those naming a file or
// directory that must be mounted into the container.
var composeRequires = map[string]struct{ vars, paths []string }{
	"intake":     {vars: []string{"NOTIFIER_PUBLIC_KEY"}, paths: []string{"SESSION_PRIVATE_KEY_FILE", "CODE_HMAC_KEY_FILE"}},
	"validation": {},
	"billing":    {vars: []string{"WEBHOOK_SECRET", "SESSION_PUBLIC_KEY", "INVOICE_REGISTRATION_NUMBER"}},
	"issuer":     {vars: []string{"SESSION_PUBLIC_KEY", "PUBLIC_URL"}, paths: []string{"CA_DIR"}},
	"notifier":   {vars: []string{"SMTP_ADDR"}, paths: []string{"NOTIFIER_PRIVATE_KEY_FILE"}},
}

// configNames are the environment names app.Config reads (SPEC §7.1).
func configNames() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeOf(app.Config{})
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("env"), ","); name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

func loadCompose(t *testing.T, env []string) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(repo, "deploy", "compose"))
	if err != nil {
		t.Fatal(err)
	}
	// compose-go is the loader `docker compose config` uses: schema
	// validation, interpolation (a missing ${X:?} fails), merge keys.
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(env), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

var composeEnv = []string{
	"POSTGRES_PASSWORD=pw", "OPS_TOKENS=0123456789abcdef0123:admin", "WEBHOOK_SECRET=whsec-0123456789",
	"NOTIFIER_PUBLIC_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "SESSION_PUBLIC_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"GRAFANA_ADMIN_PASSWORD=pw", "INVOICE_REGISTRATION_NUMBER=T7000012050002",
}

// SPEC §7: deploy/compose runs the five services as containers of one
// image with everything each binary requires (SE-10), a 3-node NATS
// JetStream cluster with 3 stream replicas, Postgres, Prometheus scraping
// every service with the rules, Grafana with the provisioned dashboards,
// and a mail catcher the notifier sends to.
func TestComposeDeployment_SPEC7(t *testing.T) {
	// Without its secrets the file does not load: ${X:?} names the variable.
	dir, _ := filepath.Abs(filepath.Join(repo, "deploy", "compose"))
	opts, _ := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithDiscardEnvFile)
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") && !strings.Contains(err.Error(), "OPS_TOKENS") {
		t.Fatalf("loaded without secrets: %v", err)
	}

	p := loadCompose(t, composeEnv)
	known := configNames()
	for _, need := range []string{"postgres", "nats-1", "nats-2", "nats-3", "prometheus", "grafana", "mailpit"} {
		if _, ok := p.Services[need]; !ok {
			t.Errorf("no %s service", need)
		}
	}
	published := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if other, dup := published[port.Published]; dup {
				t.Errorf("%s and %s both publish %s", name, other, port.Published)
			}
			published[port.Published] = name
		}
	}

	// NATS: three clustered JetStream nodes, each routing to the others.
	var natsURLs []string
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		cmd := strings.Join(p.Services[n].Command, " ")
		if !strings.Contains(cmd, "--jetstream") || !strings.Contains(cmd, "--name "+n) || !strings.Contains(cmd, "--cluster_name certlife") {
			t.Errorf("%s: %s", n, cmd)
		}
		for _, other := range []string{"nats-1", "nats-2", "nats-3"} {
			if other != n && !strings.Contains(cmd, "nats://"+other+":6222") {
				t.Errorf("%s does not route to %s", n, other)
			}
		}
		natsURLs = append(natsURLs, "nats://"+n+":4222")
	}

	for name, req := range composeRequires {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("no %s service", name)
			continue
		}
		if s.Image != "certlife:dev" || s.Build == nil || s.Build.Dockerfile != "deploy/compose/Dockerfile" ||
			len(s.Command) != 1 || s.Command[0] != "/usr/local/bin/"+name {
			t.Errorf("%s: image %q build %+v command %v", name, s.Image, s.Build, s.Command)
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			if !known[k] {
				t.Errorf("%s: %s is not a configuration name (app.Config)", name, k)
			}
			if v == nil || *v == "" {
				t.Errorf("%s: %s is empty", name, k)
				continue
			}
			env[k] = *v
		}
		if !strings.Contains(env["DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("%s: DATABASE_URL %q", name, env["DATABASE_URL"])
		}
		if env["NATS_URL"] != strings.Join(natsURLs, ",") || env["NATS_REPLICAS"] != "3" {
			t.Errorf("%s: NATS_URL %q NATS_REPLICAS %q", name, env["NATS_URL"], env["NATS_REPLICAS"])
		}
		if env["HTTP_ADDR"] != "0.0.0.0:8080" || env["OPS_TOKENS"] == "" {
			t.Errorf("%s: HTTP_ADDR %q, OPS_TOKENS set %v", name, env["HTTP_ADDR"], env["OPS_TOKENS"] != "")
		}
		for _, v := range req.vars {
			if env[v] == "" {
				t.Errorf("%s requires %s", name, v)
			}
		}
		for _, v := range req.paths {
			path := env[v]
			mounted := false
			for _, vol := range s.Volumes {
				if vol.Type == types.VolumeTypeBind && vol.Target == path {
					mounted = true
					if !strings.HasPrefix(vol.Source, filepath.Join(dir, "secrets")) {
						t.Errorf("%s: %s comes from %s, not deploy/compose/secrets", name, v, vol.Source)
					}
				}
			}
			if path == "" || !mounted {
				t.Errorf("%s requires %s, mounted (got %q)", name, v, path)
			}
		}
		if _, ok := s.DependsOn["postgres"]; !ok {
			t.Errorf("%s does not wait for postgres", name)
		}
	}
	if smtp := p.Services["notifier"].Environment["SMTP_ADDR"]; smtp == nil || *smtp != "mailpit:1025" {
		t.Errorf("notifier SMTP_ADDR %v, want the mail catcher", smtp)
	}

	// Prometheus: the repository's config and rules, scraping every service
	// on its HTTP_ADDR port.
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(repo, "deploy", "prometheus", "prometheus.yml"), &promCfg)
	var targets []string
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for name := range composeRequires {
		if !slices.Contains(targets, name+":8080") {
			t.Errorf("prometheus does not scrape %s:8080 (%v)", name, targets)
		}
	}
	if !mounts(p.Services["prometheus"], filepath.Join(repo, "deploy", "prometheus"), "/etc/prometheus") {
		t.Error("prometheus does not mount deploy/prometheus at /etc/prometheus")
	}
	// Grafana: provisioning and the dashboards where the provider reads them.
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(repo, "deploy", "grafana", "provisioning", "dashboards", "certlife.yml"), &prov)
	g := p.Services["grafana"]
	if !mounts(g, filepath.Join(repo, "deploy", "grafana", "provisioning"), "/etc/grafana/provisioning") ||
		len(prov.Providers) != 1 || !mounts(g, filepath.Join(repo, "deploy", "grafana", "dashboards"), prov.Providers[0].Options.Path) {
		t.Error("grafana does not mount the provisioning and the dashboards where the provider reads them")
	}

	// `docker compose config` validates offline where the plugin exists.
	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "compose", "version").Run() == nil {
		cmd := exec.Command(docker, "compose", "-f", filepath.Join(dir, "docker-compose.yml"), "config", "-q")
		cmd.Env = append(os.Environ(), composeEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker compose config: %v\n%s", err, out)
		}
	} else {
		t.Log("docker compose plugin not installed: validated with compose-go, the library `docker compose config` uses")
	}
}

func mounts(s types.ServiceConfig, source, target string) bool {
	abs, _ := filepath.Abs(source)
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == abs && v.Target == target {
			return true
		}
	}
	return false
}

// SE-2, SPEC §7: deploy/compose/secrets.sh makes key files the services
// load (0600), public keys in .env that match them, copies the CA files,
// and the compose file loads with that .env.
func TestComposeSecretsScript_SE2(t *testing.T) {
	requireTool(t, "openssl", "openssl")
	out, ca := t.TempDir(), t.TempDir()
	for _, f := range []string{"root.pem", "ica1.pem", "ica1.key", "data.key"} {
		if err := os.WriteFile(filepath.Join(ca, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", filepath.Join(repo, "deploy", "compose", "secrets.sh"), out)
	cmd.Env = append(os.Environ(), "CA_SOURCE="+ca)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh: %v\n%s", err, b)
	}
	env := map[string]string{}
	var envList []string
	f, err := os.Open(filepath.Join(out, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
			envList = append(envList, sc.Text())
		}
	}
	s := filepath.Join(out, "secrets")
	nk, err := seal.LoadOrCreate(filepath.Join(s, "notifier.key"), false)
	if err != nil || nk.Public().String() != env["NOTIFIER_PUBLIC_KEY"] {
		t.Fatalf("notifier key: %v; public %q, .env %q", err, nk.Public(), env["NOTIFIER_PUBLIC_KEY"])
	}
	sk, err := session.LoadOrCreateKey(filepath.Join(s, "session.key"), false)
	if err != nil || session.EncodePublicKey(sk.Public().(ed25519.PublicKey)) != env["SESSION_PUBLIC_KEY"] {
		t.Fatalf("session key: %v; .env %q", err, env["SESSION_PUBLIC_KEY"])
	}
	// The sealed round trip works with the generated pair.
	box, err := seal.Seal(nk.Public(), []byte("code"))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := nk.Open(box); err != nil || string(plain) != "code" {
		t.Fatalf("open: %q %v", plain, err)
	}
	for _, f := range []string{"code-hmac.key", "ca/root.pem", "ca/ica1.pem", "ca/ica1.key", "ca/data.key"} {
		fi, err := os.Stat(filepath.Join(s, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", f, err, fi)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(s, "code-hmac.key")); len(strings.TrimSpace(string(b))) < 32 {
		t.Errorf("code HMAC key of %d bytes", len(b))
	}
	for _, k := range []string{"POSTGRES_PASSWORD", "OPS_TOKENS", "WEBHOOK_SECRET", "GRAFANA_ADMIN_PASSWORD"} {
		if len(env[k]) < 16 {
			t.Errorf(".env %s = %q", k, env[k])
		}
	}
	loadCompose(t, envList)
}
