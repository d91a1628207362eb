package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// dispatch runs one command.
func dispatch(e *env, cmd string, args []string) error {
	sub := func() (string, []string) {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return "", args
		}
		return args[0], args[1:]
	}
	switch cmd {
	case "whoami":
		return e.whoami(args)
	case "reviews":
		s, rest := sub()
		switch s {
		case "list":
			return e.reviewsList(rest)
		case "approve":
			return e.reviewsApprove(rest)
		case "reject":
			return e.reviewsReject(rest)
		}
		return usageErr("reviews: list, approve or reject")
	case "maintenance":
		s, rest := sub()
		switch s {
		case "list":
			return e.maintenanceList(rest)
		case "add":
			return e.maintenanceAdd(rest)
		case "delete":
			return e.maintenanceDelete(rest)
		}
		return usageErr("maintenance: list, add or delete")
	case "coupons":
		if s, rest := sub(); s == "import" {
			return e.csvImport("coupons import", "/ops/v1/coupons", rest, "")
		}
		return usageErr("coupons: import FILE")
	case "bank-statements":
		if s, rest := sub(); s == "import" {
			return e.csvImport("bank-statements import", "/ops/v1/bank-statements", rest,
				"this server has no bank statement import yet (404 for POST /ops/v1/bank-statements)")
		}
		return usageErr("bank-statements: import FILE")
	case "phone-checks":
		s, rest := sub()
		switch s {
		case "list":
			return e.phoneChecksList(rest)
		case "record":
			return e.phoneChecksRecord(rest)
		}
		return usageErr("phone-checks: list or record ID --result confirmed|failed [--note TEXT]")
	case "revoke":
		return e.revoke(args)
	case "mass-revoke":
		if s, rest := sub(); s == "status" {
			return e.massStatus(rest)
		}
		return e.massRevoke(args)
	case "dead-letters":
		s, rest := sub()
		switch s {
		case "list":
			return e.deadLettersList(rest)
		case "replay":
			return e.deadLettersReplay(rest)
		}
		return usageErr("dead-letters: list or replay ID")
	case "audit":
		s, rest := sub()
		switch s {
		case "query", "list":
			return e.auditQuery(rest)
		case "verify":
			return e.auditVerify(rest)
		}
		return usageErr("audit: query or verify")
	case "eab-keys":
		if s, rest := sub(); s == "create" {
			return e.eabCreate(rest)
		}
		return usageErr("eab-keys: create --customer ID [--profile FILE]")
	case "prices":
		s, rest := sub()
		switch s {
		case "get":
			return e.pricesGet(rest)
		case "put":
			return e.pricesPut(rest)
		}
		return usageErr("prices: get or put FILE")
	}
	return usageErr("unknown command %q", cmd)
}

func (e *env) whoami(args []string) error {
	if _, err := e.parse(flag.NewFlagSet("whoami", flag.ContinueOnError), args); err != nil {
		return err
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/whoami"}, view{})
}

func (e *env) reviewsList(args []string) error {
	fs := flag.NewFlagSet("reviews list", flag.ContinueOnError)
	status := fs.String("status", "pending", "pending, approved or rejected")
	limit := fs.Int("limit", 0, "at most this many")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	q := url.Values{"status": {*status}}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/reviews", query: q},
		view{list: "reviews", cols: []string{"id", "application_id", "status", "product", "kind", "created_at"}})
}

func (e *env) reviewsApprove(args []string) error {
	pos, err := e.parse(flag.NewFlagSet("reviews approve", flag.ContinueOnError), args, "REVIEW_ID")
	if err != nil {
		return err
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/reviews/" + url.PathEscape(pos[0]) + "/approve"}, reviewView)
}

var reviewView = view{cols: []string{"id", "application_id", "status", "product", "kind", "decided_at", "decided_by"}}

func (e *env) reviewsReject(args []string) error {
	fs := flag.NewFlagSet("reviews reject", flag.ContinueOnError)
	reason := fs.String("reason", "", "why (e-mailed to the applicant); required")
	pos, err := e.parse(fs, args, "REVIEW_ID")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageErr("reviews reject needs --reason")
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/reviews/" + url.PathEscape(pos[0]) + "/reject",
		body: map[string]string{"reason": *reason}}, reviewView)
}

func (e *env) maintenanceList(args []string) error {
	if _, err := e.parse(flag.NewFlagSet("maintenance list", flag.ContinueOnError), args); err != nil {
		return err
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/maintenance-windows"},
		view{list: "windows", cols: []string{"id", "starts_at", "ends_at", "created_by"}})
}

func (e *env) maintenanceAdd(args []string) error {
	fs := flag.NewFlagSet("maintenance add", flag.ContinueOnError)
	starts := fs.String("starts", "", "start, RFC 3339 (e.g. 2031-01-01T00:00:00+09:00)")
	ends := fs.String("ends", "", "end, RFC 3339")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	for name, v := range map[string]string{"--starts": *starts, "--ends": *ends} {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return usageErr("maintenance add: %s must be an RFC 3339 time, got %q", name, v)
		}
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/maintenance-windows",
		body: map[string]string{"starts_at": *starts, "ends_at": *ends}}, view{})
}

func (e *env) maintenanceDelete(args []string) error {
	pos, err := e.parse(flag.NewFlagSet("maintenance delete", flag.ContinueOnError), args, "WINDOW_ID")
	if err != nil {
		return err
	}
	return e.call(request{method: http.MethodDelete, path: "/ops/v1/maintenance-windows/" + url.PathEscape(pos[0])}, view{})
}

func (e *env) csvImport(name, path string, args []string, notFound string) error {
	pos, err := e.parse(flag.NewFlagSet(name, flag.ContinueOnError), args, "FILE")
	if err != nil {
		return err
	}
	raw, err := e.readInput(pos[0])
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out any
	if err := c.do(request{method: http.MethodPost, path: path, raw: raw, contentType: "text/csv", notFound: notFound}, &out); err != nil {
		return err
	}
	if err := printOut(e.stdout, e.g.output, out, view{}); err != nil {
		return err
	}
	// Rejected lines are listed, and make the exit code 1: a script sees
	// that not everything went in.
	if m, ok := out.(map[string]any); ok {
		if rej, ok := m["rejected"].([]any); ok && len(rej) > 0 {
			if e.g.output == "table" {
				fmt.Fprintln(e.stdout, "\nrejected lines:")
				_ = printOut(e.stdout, "table", rej, view{cols: []string{"line", "error"}})
			}
			return fail(exitAPI, "%d line(s) rejected", len(rej))
		}
	}
	return nil
}

func (e *env) phoneChecksList(args []string) error {
	fs := flag.NewFlagSet("phone-checks list", flag.ContinueOnError)
	status := fs.String("status", "", "pending, confirmed or failed")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *status != "" {
		q.Set("status", *status)
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/phone-checks", query: q,
		notFound: "this server has no phone checks yet (404 for GET /ops/v1/phone-checks)"}, view{list: "phone_checks"})
}

func (e *env) phoneChecksRecord(args []string) error {
	fs := flag.NewFlagSet("phone-checks record", flag.ContinueOnError)
	result := fs.String("result", "", "confirmed or failed")
	note := fs.String("note", "", "what was said, by whom")
	pos, err := e.parse(fs, args, "ID")
	if err != nil {
		return err
	}
	if *result != "confirmed" && *result != "failed" {
		return usageErr("phone-checks record: --result must be confirmed or failed")
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/phone-checks/" + url.PathEscape(pos[0]),
		body: map[string]string{"result": *result, "note": *note}}, view{})
}

func (e *env) revoke(args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "RFC 5280 reason name; required")
	pos, err := e.parse(fs, args, "SERIAL")
	if err != nil {
		return err
	}
	if *reason == "" {
		return usageErr("revoke needs --reason")
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/revocations",
		body: map[string]string{"serial": pos[0], "reason": *reason}}, view{})
}

var massView = view{cols: []string{"id", "reason", "selector", "total", "unmatched", "revoked", "notices_queued",
	"issuers", "crl_regenerated_at", "done"}}

func (e *env) massRevoke(args []string) error {
	fs := flag.NewFlagSet("mass-revoke", flag.ContinueOnError)
	reason := fs.String("reason", "", "RFC 5280 reason name; required")
	serialsFile := fs.String("serials-file", "", "file of serials, one a line (\"-\" = stdin)")
	org := fs.String("organization", "", "organization name or identifier as on the certificates")
	key := fs.String("public-key-sha256", "", "SHA-256 of the public key's SPKI, hex")
	wait := fs.Bool("wait", false, "wait until done, then show the result")
	waitFor := fs.Duration("wait-timeout", time.Hour, "with --wait: give up (exit 1) after this long")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	if *reason == "" {
		return usageErr("mass-revoke needs --reason")
	}
	body := map[string]any{"reason": *reason}
	given := 0
	if *serialsFile != "" {
		given++
		raw, err := e.readInput(*serialsFile)
		if err != nil {
			return err
		}
		var serials []string
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				serials = append(serials, line)
			}
		}
		if len(serials) == 0 {
			return usageErr("mass-revoke: %s names no serial", *serialsFile)
		}
		body["serials"] = serials
	}
	if *org != "" {
		given++
		body["organization"] = *org
	}
	if *key != "" {
		given++
		body["public_key_sha256"] = *key
	}
	if given != 1 {
		return usageErr("mass-revoke needs exactly one of --serials-file, --organization, --public-key-sha256")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out map[string]any
	if err := c.do(request{method: http.MethodPost, path: "/ops/v1/mass-revocations", body: body}, &out); err != nil {
		return err
	}
	if *wait {
		id, _ := out["id"].(string)
		deadline := time.Now().Add(*waitFor)
		for done, _ := out["done"].(bool); !done; done, _ = out["done"].(bool) {
			if time.Now().After(deadline) {
				_ = printOut(e.stdout, e.g.output, out, massView)
				return fail(exitAPI, "mass revocation %s not done after %s (certctl mass-revoke status %s)", id, *waitFor, id)
			}
			time.Sleep(time.Second)
			out = nil
			if err := c.do(request{method: http.MethodGet, path: "/ops/v1/mass-revocations/" + url.PathEscape(id)}, &out); err != nil {
				return err
			}
		}
	}
	return printOut(e.stdout, e.g.output, out, massView)
}

func (e *env) massStatus(args []string) error {
	pos, err := e.parse(flag.NewFlagSet("mass-revoke status", flag.ContinueOnError), args, "ID")
	if err != nil {
		return err
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/mass-revocations/" + url.PathEscape(pos[0])}, massView)
}

func (e *env) deadLettersList(args []string) error {
	if _, err := e.parse(flag.NewFlagSet("dead-letters list", flag.ContinueOnError), args); err != nil {
		return err
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/dead-letters"},
		view{list: "dead_letters", cols: []string{"id", "at", "consumer", "subject", "deliveries", "error"}})
}

func (e *env) deadLettersReplay(args []string) error {
	pos, err := e.parse(flag.NewFlagSet("dead-letters replay", flag.ContinueOnError), args, "ID")
	if err != nil {
		return err
	}
	return e.call(request{method: http.MethodPost, path: "/ops/v1/dead-letters/" + url.PathEscape(pos[0]) + "/replay"}, view{})
}

func (e *env) auditQuery(args []string) error {
	fs := flag.NewFlagSet("audit query", flag.ContinueOnError)
	q := url.Values{}
	names := []string{"service", "action", "actor", "subject", "since", "until", "after", "limit"}
	vals := map[string]*string{}
	for _, n := range names {
		vals[n] = fs.String(n, "", n+" filter (see GET /ops/v1/audit)")
	}
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	for _, n := range names {
		if v := *vals[n]; v != "" {
			q.Set(n, v)
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out map[string]any
	if err := c.do(request{method: http.MethodGet, path: "/ops/v1/audit", query: q}, &out); err != nil {
		return err
	}
	if e.g.output == "json" {
		return printOut(e.stdout, "json", out, view{})
	}
	// One table across the services' chains.
	var rows []any
	services, _ := out["services"].([]any)
	for _, s := range services {
		sm, _ := s.(map[string]any)
		if msg, _ := sm["error"].(string); msg != "" {
			fmt.Fprintf(e.stderr, "certctl: audit of %v: %s\n", sm["service"], msg)
		}
		entries, _ := sm["entries"].([]any)
		for _, en := range entries {
			m, _ := en.(map[string]any)
			m["service"] = sm["service"]
			rows = append(rows, m)
		}
	}
	if rows == nil {
		rows = []any{}
	}
	return printOut(e.stdout, "table", rows, view{cols: []string{"service", "seq", "at", "actor", "action", "subject", "details"}})
}

// auditVerify exits 1 when a chain is broken or a service did not answer.
func (e *env) auditVerify(args []string) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	service := fs.String("service", "", "one service's chain only")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	q := url.Values{}
	if *service != "" {
		q.Set("service", *service)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var out map[string]any
	if err := c.do(request{method: http.MethodGet, path: "/ops/v1/audit/verify", query: q}, &out); err != nil {
		return err
	}
	if err := printOut(e.stdout, e.g.output, out, view{list: "services",
		cols: []string{"service", "ok", "entries", "head_seq", "head_hash", "broken_seq", "problem", "error"}}); err != nil {
		return err
	}
	if ok, _ := out["ok"].(bool); !ok {
		return fail(exitAPI, "the audit log does not verify")
	}
	return nil
}

func (e *env) eabCreate(args []string) error {
	fs := flag.NewFlagSet("eab-keys create", flag.ContinueOnError)
	customer := fs.String("customer", "", "the customer the key is for; required")
	profile := fs.String("profile", "", "JSON file (or - for stdin) with the customer's verified organization {duns, name_en, address}, contact {name, email}, term_months, coverage_end (AC-2)")
	if _, err := e.parse(fs, args); err != nil {
		return err
	}
	if *customer == "" {
		return usageErr("eab-keys create needs --customer")
	}
	body := map[string]any{}
	if *profile != "" {
		raw, err := e.readInput(*profile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return usageErr("eab-keys create: %s is not a JSON object", *profile)
		}
	}
	body["customer"] = *customer
	return e.call(request{method: http.MethodPost, path: "/ops/v1/acme/eab-keys", body: body,
		notFound: "this server has no ACME external account binding keys yet (404 for POST /ops/v1/acme/eab-keys)"}, view{})
}

func (e *env) pricesGet(args []string) error {
	if _, err := e.parse(flag.NewFlagSet("prices get", flag.ContinueOnError), args); err != nil {
		return err
	}
	return e.call(request{method: http.MethodGet, path: "/ops/v1/prices",
		notFound: "this server has no price list yet (404 for GET /ops/v1/prices)"}, view{list: "prices"})
}

func (e *env) pricesPut(args []string) error {
	pos, err := e.parse(flag.NewFlagSet("prices put", flag.ContinueOnError), args, "FILE")
	if err != nil {
		return err
	}
	raw, err := e.readInput(pos[0])
	if err != nil {
		return err
	}
	if !json.Valid(raw) {
		return usageErr("prices put: %s is not JSON", pos[0])
	}
	return e.call(request{method: http.MethodPut, path: "/ops/v1/prices", raw: raw, contentType: "application/json",
		notFound: "this server has no price list yet (404 for PUT /ops/v1/prices)"}, view{list: "prices"})
}
