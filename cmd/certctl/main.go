// Command certctl is the operators' command line (OP-2): it speaks the
// platform's ops API over HTTP with a bearer token (SE-5) — reviews,
// maintenance windows, coupons, bank statements, phone checks,
// revocations and mass revocations, dead letters, the audit log, ACME
// EAB keys and prices.
//
//	go install ./cmd/certctl
//	CERTCTL_SERVER=http://127.0.0.1:8080 CERTCTL_TOKEN=… certctl reviews list
//
// Exit codes: 0 ok, 1 API error (the problem detail is printed), 2 usage,
// 3 authentication or authorization (401/403, no token), 4 not found.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

const usage = `certctl — the certlife platform's ops CLI (OP-2)

Usage: certctl [--server URL] [--output table|json] COMMAND [ARGS]

Commands:
  whoami                                   the token's identity and roles
  reviews list [--status pending|approved|rejected] [--limit N]
  reviews approve REVIEW_ID
  reviews reject REVIEW_ID --reason TEXT
  maintenance list
  maintenance add --starts RFC3339 --ends RFC3339
  maintenance delete WINDOW_ID
  coupons import FILE                      CSV: number,product,expires_at ("-" = stdin)
  bank-statements import FILE              CSV bank statement ("-" = stdin)
  phone-checks record ID --result confirmed|failed [--note TEXT]
  revoke SERIAL --reason REASON
  mass-revoke --reason REASON (--serials-file FILE | --organization NAME | --public-key-sha256 HEX) [--wait [--wait-timeout 1h]]
  mass-revoke status ID
  dead-letters list
  dead-letters replay ID
  audit query [--service S] [--action A] [--actor A] [--subject S] [--since T] [--until T] [--after N] [--limit N]
  audit verify [--service S]
  eab-keys create --customer ID [--profile FILE]
  prices get
  prices put FILE                          JSON price list ("-" = stdin)

Reasons: superseded, keyCompromise, cessationOfOperation, affiliationChanged, privilegeWithdrawn.

Server: --server, else CERTCTL_SERVER, else the config file's "server", else ` + defaultServer + `.
Token:  CERTCTL_TOKEN, else the config file's "token". The config file is
        $CERTCTL_CONFIG or ~/.config/certctl/config.json ({"server": …, "token": …}),
        and must be mode 0600.
Exit codes: 0 ok, 1 API error (problem detail printed), 2 usage, 3 auth (401/403), 4 not found.
`

// globals are the flags every command accepts, before or after it.
type globals struct {
	server string
	output string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "the platform's base URL (CERTCTL_SERVER)")
	fs.StringVar(&g.output, "output", g.output, "table or json")
}

// env is what a command runs with.
type env struct {
	g      *globals
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{output: "table"}
	fs := flag.NewFlagSet("certctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		fmt.Fprintf(stderr, "certctl: %v\n\n%s", err, usage)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" {
		if len(rest) == 0 {
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	e := &env{g: g, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	err := dispatch(e, rest[0], rest[1:])
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintf(stderr, "certctl: %s\n", ee.msg)
		if ee.code == exitUsage {
			fmt.Fprint(stderr, "run certctl help for usage\n")
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "certctl: %v\n", err)
	return exitAPI
}

// usageErr is a usage error.
func usageErr(format string, args ...any) error { return fail(exitUsage, format, args...) }

// parse parses a command's flags wherever they stand among its
// positional arguments, and checks their number.
func (e *env) parse(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	fs.SetOutput(io.Discard)
	e.g.register(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageErr("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != len(positional) {
		if len(positional) == 0 {
			return nil, usageErr("%s takes no arguments", fs.Name())
		}
		return nil, usageErr("%s needs %s", fs.Name(), strings.Join(positional, " "))
	}
	if e.g.output != "table" && e.g.output != "json" {
		return nil, usageErr("--output must be table or json")
	}
	return pos, nil
}

// client builds the API client from the flags, the environment and the
// config file.
func (e *env) client() (*client, error) {
	cfg, err := loadConfig(configPath(e.getenv))
	if err != nil {
		return nil, err
	}
	server := e.g.server
	if server == "" {
		server = e.getenv("CERTCTL_SERVER")
	}
	if server == "" {
		server = cfg.Server
	}
	if server == "" {
		server = defaultServer
	}
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, usageErr("--server must be an http:// or https:// URL, not %q", server)
	}
	token := strings.TrimSpace(e.getenv("CERTCTL_TOKEN"))
	if token == "" {
		token = cfg.Token
	}
	if token == "" {
		return nil, fail(exitAuth, "no ops token: set CERTCTL_TOKEN or \"token\" in %s", configPath(e.getenv))
	}
	return &client{server: server, token: token, http: newHTTPClient(), stderr: e.stderr, json: e.g.output == "json"}, nil
}

// call runs one request and prints its answer.
func (e *env) call(req request, vw view) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var out any
	if err := c.do(req, &out); err != nil {
		return err
	}
	if out == nil {
		if e.g.output == "json" {
			fmt.Fprintln(e.stdout, "{}")
		} else {
			fmt.Fprintln(e.stdout, "ok")
		}
		return nil
	}
	return printOut(e.stdout, e.g.output, out, vw)
}

// readInput reads FILE, or stdin for "-".
func (e *env) readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(e.stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return b, nil
}
