package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/certlife/platform/pkg/errs"
	"github.com/certlife/platform/services/validation/internal/domain"
)

// UpsertOrganizations writes the registry records, replacing those of the
// same number.
func UpsertOrganizations(ctx context.Context, tx pgx.Tx, orgs []domain.Organization, now time.Time, actor string) error {
	batch := &pgx.Batch{}
	for _, o := range orgs {
		batch.Queue(`INSERT INTO registry_organizations (number, name_en, street, city, state, postal_code, country, phone, loaded_at, loaded_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (number) DO UPDATE SET name_en = EXCLUDED.name_en, street = EXCLUDED.street, city = EXCLUDED.city,
				state = EXCLUDED.state, postal_code = EXCLUDED.postal_code, country = EXCLUDED.country, phone = EXCLUDED.phone,
				loaded_at = EXCLUDED.loaded_at, loaded_by = EXCLUDED.loaded_by`,
			o.Number, o.NameEn, o.Street, o.City, o.State, o.PostalCode, o.Country, o.Phone, now, actor)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("load registry: %w", err)
	}
	return nil
}

// RemoveOrganizationsExcept deletes every record whose number is not in
// keep (a replacing load) and returns how many.
func RemoveOrganizationsExcept(ctx context.Context, tx pgx.Tx, keep []string) (int, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM registry_organizations WHERE NOT (number = ANY($1))`, keep)
	if err != nil {
		return 0, fmt.Errorf("replace registry: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Registry is the file-backed business registry: the records operators
// loaded, read from this service's schema.
type Registry struct{ Q Querier }

// Lookup returns the registry's record of a number; a not-found error if
// there is none.
func (r Registry) Lookup(ctx context.Context, number string) (domain.Organization, error) {
	var o domain.Organization
	err := r.Q.QueryRow(ctx, `SELECT number, name_en, street, city, state, postal_code, country, phone
		FROM registry_organizations WHERE number = $1`, number).
		Scan(&o.Number, &o.NameEn, &o.Street, &o.City, &o.State, &o.PostalCode, &o.Country, &o.Phone)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, errs.NotFound("no organization " + number + " in the registry")
	}
	return o, err
}
