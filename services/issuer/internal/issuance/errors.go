package issuance

import "github.com/certlife/platform/pkg/errs"

// The issuer's refusals are pkg/errs errors; the HTTP edge turns them into
// problems (httpx.WriteError).

func notFound() error { return errs.NotFound("no such certificate") }

func invalid(field, detail string) error { return errs.InvalidField(field, detail) }

func conflict(slug, detail string) error { return errs.Conflict(slug, detail) }

func absent(detail string) error { return errs.NotFound(detail) }

func gone(slug, detail string) error { return errs.Gone(slug, detail) }

// CodeRequired: a certificate step needs a session opened with the
// certificate code (PC-7, SPEC §5).
func CodeRequired() error {
	return &errs.Error{Kind: errs.KindForbidden, Slug: "certificate-code-required",
		Detail: "certificate steps need a session opened with the certificate code (POST /v1/sessions with certificate_code)"}
}
