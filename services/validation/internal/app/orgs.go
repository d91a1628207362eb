package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certlife/platform/pkg/audit"
	"github.com/certlife/platform/pkg/clock"
	"github.com/certlife/platform/pkg/db"
	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/validation/internal/domain"
	"github.com/certlife/platform/services/validation/internal/store"
)

// Registry is an independent business registry (SV-7): the English
// record of an organization by its DUNS-like number. A lookup of an
// unknown number is a not-found error. The file-backed registry
// operators load is store.Registry; another (an online registry's API)
// can take its place.
type Registry interface {
	Lookup(ctx context.Context, number string) (domain.Organization, error)
}

// Orgs is organization validation: loading the file-backed registry and
// matching a CSR's subject with it (SV-7, SV-9's data).
type Orgs struct {
	Pool     *pgxpool.Pool
	Clock    clock.Clock
	Log      *slog.Logger
	Registry Registry
	Metrics  *DCVMetrics
}

// Registry file formats and load modes.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"

	// ModeUpsert adds the file's organizations and replaces those of the
	// same number; the others stay.
	ModeUpsert = "upsert"
	// ModeReplace makes the registry exactly the file: organizations not
	// in it are removed. A file with any bad line changes nothing.
	ModeReplace = "replace"
)

// LoadResult is the outcome of a registry load.
type LoadResult struct {
	Mode     string
	Loaded   int
	Removed  int
	Rejected []domain.Rejection
}

// LoadRegistry loads a registry file (POST /ops/v1/registry) in one
// transaction, audited. Bad lines are listed and not loaded; in replace
// mode any bad line refuses the whole file (422) so that a broken file
// never empties the registry.
func (o *Orgs) LoadRegistry(ctx context.Context, actor, format, mode string, raw []byte) (LoadResult, error) {
	var (
		lines []domain.RegistryLine
		bad   []domain.Rejection
		err   error
	)
	switch format {
	case FormatCSV:
		lines, bad, err = domain.ParseRegistryCSV(raw)
	case FormatJSON:
		lines, bad, err = domain.ParseRegistryJSON(raw)
	default:
		return LoadResult{}, errs.Unsupported("send text/csv or application/json")
	}
	if err != nil {
		return LoadResult{}, err
	}
	if mode != ModeUpsert && mode != ModeReplace {
		return LoadResult{}, errs.InvalidField("mode", "must be upsert or replace")
	}
	res := LoadResult{Mode: mode, Rejected: bad}
	if res.Rejected == nil {
		res.Rejected = []domain.Rejection{}
	}
	if mode == ModeReplace && len(bad) > 0 {
		fields := make([]errs.Field, 0, len(bad))
		for _, b := range bad {
			fields = append(fields, errs.Field{Name: fmt.Sprintf("line %d", b.Line), Message: b.Error})
		}
		e := errs.Invalid(fields...)
		e.Detail = "a replacing load must have no bad line: nothing was changed"
		return LoadResult{}, e
	}
	if len(lines) == 0 && mode == ModeReplace {
		return LoadResult{}, errs.InvalidField("file", "has no organization: a replacing load would empty the registry")
	}
	orgs := make([]domain.Organization, 0, len(lines))
	numbers := make([]string, 0, len(lines))
	for _, l := range lines {
		orgs = append(orgs, l.Org)
		numbers = append(numbers, l.Org.Number)
	}
	now := o.Clock.Now()
	err = db.InTx(ctx, o.Pool, func(tx pgx.Tx) error {
		if err := store.UpsertOrganizations(ctx, tx, orgs, now, actor); err != nil {
			return err
		}
		if mode == ModeReplace {
			var err error
			if res.Removed, err = store.RemoveOrganizationsExcept(ctx, tx, numbers); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, now, actor, "validation.registry.loaded", "", map[string]any{
			"format": format, "mode": mode, "loaded": len(orgs), "removed": res.Removed, "rejected": len(bad),
		})
	})
	if err != nil {
		return LoadResult{}, err
	}
	res.Loaded = len(orgs)
	return res, nil
}

// VerifyRequest asks whether a CSR's subject is the registry's record of
// an organization.
type VerifyRequest struct {
	ApplicationID string
	Number        string
	Subject       domain.Subject
	Actor         string
}

// OrgResult is the outcome of matching an organization (SV-7).
type OrgResult struct {
	// Found: the number is in the registry.
	Found bool
	// Matched: the subject equals the registry's English record.
	Matched bool
	// Organization is the registry's record (its Phone is the only number
	// phone verification may call, SV-9).
	Organization domain.Organization
	// Mismatches lists each differing field with both values.
	Mismatches []domain.Mismatch
	AttemptID  string
}

// VerifyOrganization matches a CSR's subject with the registry's record
// of the number (SV-7) and records the attempt in tx (VA-9): the
// organization name, locality, state and country must equal it exactly,
// and the street and postal code when the CSR has them.
func (o *Orgs) VerifyOrganization(ctx context.Context, tx pgx.Tx, r VerifyRequest) (OrgResult, error) {
	number, err := domain.NormalizeRegistryNumber(r.Number)
	if err != nil {
		return OrgResult{}, errs.InvalidField("duns", err.Error())
	}
	now := o.Clock.Now()
	a := domain.NewAttempt(domain.AttemptOrganization, number, "registry", now)
	a.ApplicationID, a.Actor = r.ApplicationID, r.Actor
	var res OrgResult
	org, err := o.Registry.Lookup(ctx, number)
	seen := domain.Observation{Perspective: "registry", Primary: true}
	switch {
	case errs.Is(err, errs.KindNotFound):
		seen.Outcome, seen.Detail = domain.OutcomeNotFound, "the number is not in the registry"
		a.Result, a.Detail = domain.ResultFailed, fmt.Sprintf("organization %s is not in the registry", number)
	case err != nil:
		return OrgResult{}, err
	default:
		res.Found, res.Organization = true, org
		res.Mismatches = domain.MatchOrganization(r.Subject, org)
		res.Matched = len(res.Mismatches) == 0
		seen.Seen = []string{fmt.Sprintf("%s, %s, %s, %s %s, %s", org.NameEn, org.Street, org.City, org.State, org.PostalCode, org.Country)}
		if res.Matched {
			seen.Outcome, a.Result = domain.OutcomeFound, domain.ResultPassed
		} else {
			seen.Outcome, a.Result = domain.OutcomeNotFound, domain.ResultFailed
			var diffs []string
			for _, m := range res.Mismatches {
				diffs = append(diffs, fmt.Sprintf("%s: applied %q, registry %q", m.Field, m.Applied, m.Registry))
			}
			a.Detail = "the CSR's subject differs from the registry: " + strings.Join(diffs, "; ")
		}
	}
	a.Perspectives = append(a.Perspectives, seen)
	if err := recordAttempt(ctx, tx, a, o.Metrics); err != nil {
		return OrgResult{}, err
	}
	res.AttemptID = a.ID.String()
	if res.Mismatches == nil {
		res.Mismatches = []domain.Mismatch{}
	}
	return res, nil
}
