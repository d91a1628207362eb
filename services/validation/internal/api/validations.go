package api

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/pkg/httpx"
	"github.com/certlife/platform/pkg/opsauth"
	"github.com/certlife/platform/services/validation/internal/app"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// Validations serves the validation record (VA-9) and the registry load
// (SV-7).
type Validations struct {
	DCV  *app.DCV
	Orgs *app.Orgs
	Log  *slog.Logger
}

// ReviewerRoutes mounts GET /ops/v1/validations; the caller applies the
// reviewer role.
func (a *Validations) ReviewerRoutes(r chi.Router) {
	r.Get("/ops/v1/validations", a.list)
}

// AdminRoutes mounts POST /ops/v1/registry; the caller applies the admin
// role (the registry is the reference the reviewers check against, so
// they do not edit it).
func (a *Validations) AdminRoutes(r chi.Router) {
	r.Post("/ops/v1/registry", a.loadRegistry)
}

// Attempt is one validation attempt as operators see it (VA-9).
type Attempt struct {
	ID            uuid.UUID     `json:"id"`
	At            time.Time     `json:"at"`
	Kind          string        `json:"kind"`
	Subject       string        `json:"subject"`
	ApplicationID string        `json:"application_id,omitempty"`
	ValidationID  *uuid.UUID    `json:"validation_id,omitempty"`
	Method        string        `json:"method"`
	BRSection     string        `json:"br_section,omitempty"`
	BRVersion     string        `json:"br_version,omitempty"`
	ValueSHA256   string        `json:"value_sha256,omitempty"`
	Result        string        `json:"result"`
	Detail        string        `json:"detail,omitempty"`
	Actor         string        `json:"actor"`
	Perspectives  []Perspective `json:"perspectives"`
}

// Perspective is one perspective's observation.
type Perspective struct {
	Name         string   `json:"name"`
	Region       string   `json:"region,omitempty"`
	Primary      bool     `json:"primary"`
	Outcome      string   `json:"outcome"`
	Corroborates *bool    `json:"corroborates,omitempty"`
	DNSSEC       string   `json:"dnssec,omitempty"`
	Seen         []string `json:"seen,omitempty"`
	Detail       string   `json:"detail,omitempty"`
}

// AttemptPage is one page of the list.
type AttemptPage struct {
	Validations []Attempt `json:"validations"`
	// Next is the value of `before` for the next page; absent on the last.
	Next *uuid.UUID `json:"next,omitempty"`
}

const (
	defaultAttempts = 50
	maxAttempts     = 200
)

// list handles GET /ops/v1/validations?domain=|organization=&limit=&before=:
// the attempts about a domain (or an organization's registry number, or
// all), newest first.
func (a *Validations) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var bad []errs.Field
	for k := range q {
		switch k {
		case "domain", "organization", "limit", "before":
		default:
			bad = append(bad, errs.Field{Name: k, Message: "unknown parameter"})
		}
	}
	subject := ""
	if d := q.Get("domain"); d != "" {
		n, err := domain.NormalizeDomain(d)
		if err != nil {
			bad = append(bad, errs.Field{Name: "domain", Message: err.Error()})
		}
		subject = n
	}
	if o := q.Get("organization"); o != "" {
		if subject != "" {
			bad = append(bad, errs.Field{Name: "organization", Message: "give domain or organization, not both"})
		}
		n, err := domain.NormalizeRegistryNumber(o)
		if err != nil {
			bad = append(bad, errs.Field{Name: "organization", Message: err.Error()})
		}
		subject = n
	}
	limit := defaultAttempts
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAttempts {
			bad = append(bad, errs.Field{Name: "limit", Message: "must be a number from 1 to " + strconv.Itoa(maxAttempts)})
		}
		limit = n
	}
	var before uuid.UUID
	if s := q.Get("before"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			bad = append(bad, errs.Field{Name: "before", Message: "must be the next value of the previous page"})
		}
		before = id
	}
	if len(bad) > 0 {
		httpx.WriteError(w, r, a.Log, errs.Invalid(bad...))
		return
	}
	page, err := a.DCV.Attempts(r.Context(), subject, before, limit)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out := AttemptPage{Validations: make([]Attempt, 0, len(page.Attempts)), Next: page.Next}
	for _, at := range page.Attempts {
		v := Attempt{ID: at.ID, At: at.At, Kind: at.Kind, Subject: at.Subject, ApplicationID: at.ApplicationID,
			ValidationID: at.ValidationID, Method: at.Method, BRSection: at.BRSection, BRVersion: at.BRVersion,
			ValueSHA256: at.ValueSHA256, Result: at.Result, Detail: at.Detail, Actor: at.Actor,
			Perspectives: make([]Perspective, 0, len(at.Perspectives))}
		for _, o := range at.Perspectives {
			v.Perspectives = append(v.Perspectives, Perspective{Name: o.Perspective, Region: o.Region, Primary: o.Primary,
				Outcome: o.Outcome, Corroborates: o.Corroborates, DNSSEC: o.DNSSEC, Seen: o.Seen, Detail: o.Detail})
		}
		out.Validations = append(out.Validations, v)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// MaxRegistryFile bounds a registry file.
const MaxRegistryFile = 5 << 20

// RegistryLoad is the answer to a registry load.
type RegistryLoad struct {
	Mode     string      `json:"mode"`
	Loaded   int         `json:"loaded"`
	Removed  int         `json:"removed"`
	Rejected []Rejection `json:"rejected"`
}

// Rejection is a line of the file that was not loaded, and why.
type Rejection struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// loadRegistry handles POST /ops/v1/registry?mode=upsert|replace with a
// text/csv file (header number,name_en,street,city,state,postal_code,
// country,phone) or a JSON array of objects with those fields (SV-7,
// SV-9). Good lines are loaded in one transaction; bad ones are listed
// with their line (CSV) or position (JSON). upsert (the default) adds and
// replaces by number; replace also removes the organizations not in the
// file, and refuses a file with any bad line (422, nothing changed).
func (a *Validations) loadRegistry(w http.ResponseWriter, r *http.Request) {
	format := ""
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil {
		switch mt {
		case "text/csv":
			format = app.FormatCSV
		case "application/json":
			format = app.FormatJSON
		}
	}
	if format == "" {
		httpx.WriteError(w, r, a.Log, errs.Unsupported("send text/csv (header "+headerLine()+") or application/json (an array of objects with those fields)"))
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = app.ModeUpsert
	}
	if mode != app.ModeUpsert && mode != app.ModeReplace {
		httpx.WriteError(w, r, a.Log, errs.InvalidField("mode", "must be upsert or replace"))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRegistryFile))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpx.WriteError(w, r, a.Log, errs.TooLarge(MaxRegistryFile))
			return
		}
		httpx.WriteError(w, r, a.Log, errs.Malformed("the body could not be read"))
		return
	}
	if len(raw) == 0 {
		httpx.WriteError(w, r, a.Log, errs.Malformed("the body is empty"))
		return
	}
	res, err := a.Orgs.LoadRegistry(r.Context(), opsauth.Actor(r.Context()), format, mode, raw)
	if err != nil {
		httpx.WriteError(w, r, a.Log, err)
		return
	}
	out := RegistryLoad{Mode: res.Mode, Loaded: res.Loaded, Removed: res.Removed, Rejected: make([]Rejection, 0, len(res.Rejected))}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, Rejection(rj))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func headerLine() string {
	s := ""
	for i, h := range domain.RegistryHeader {
		if i > 0 {
			s += ","
		}
		s += h
	}
	return s
}
