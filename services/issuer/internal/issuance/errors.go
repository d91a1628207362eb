package issuance

import "github.com/certlife/platform/pkg/errs"

// The issuer's refusals are pkg/errs errors; the HTTP edge turns them into
// problems (httpx.WriteError).

func notFound() error { return errs.NotFound("no such certificate") }

func invalid(field, detail string) error { return errs.InvalidField(field, detail) }

func conflict(slug, detail string) error { return errs.Conflict(slug, detail) }

func absent(detail string) error { return errs.NotFound(detail) }

func gone(slug, detail string) error { return errs.Gone(slug, detail) }
