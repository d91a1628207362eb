-- +goose Up

-- OP-5: the SHA-256 of each issued certificate's SubjectPublicKeyInfo, so
-- that an operator can revoke every certificate of a compromised key.
-- Set at issuance; rows issued before this migration are filled in at the
-- issuer's start (Go parses the DER, SQL cannot).
ALTER TABLE certificates ADD COLUMN spki_sha256 bytea;
CREATE INDEX certificates_spki ON certificates (spki_sha256) WHERE spki_sha256 IS NOT NULL;
-- Selection by organization: its English name or its identifier.
CREATE INDEX certificates_organization_en ON certificates (organization_en) WHERE revoked_at IS NULL;
CREATE INDEX certificates_organization_identifier ON certificates (organization_identifier)
    WHERE organization_identifier IS NOT NULL AND revoked_at IS NULL;

-- OP-5: a mass revocation, revoked in batches by a timer; the CRL of each
-- issuer it touched is made once, after the last batch.
CREATE TABLE mass_revocations (
    id                 uuid        PRIMARY KEY,
    reason             text        NOT NULL,
    selector           jsonb       NOT NULL, -- {"serials": n} | {"organization": ..} | {"public_key_sha256": ..}
    requested_by       text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    total              int         NOT NULL,
    unmatched          int         NOT NULL DEFAULT 0, -- serials given that named no revocable certificate
    revoked            int         NOT NULL DEFAULT 0,
    notices_queued     int         NOT NULL DEFAULT 0,
    issuers            text[]      NOT NULL DEFAULT '{}',
    crl_regenerated_at timestamptz,
    completed_at       timestamptz
);

-- The certificates still to revoke; a batch deletes what it revoked.
CREATE TABLE mass_revocation_items (
    mass_revocation_id uuid NOT NULL REFERENCES mass_revocations (id),
    certificate_id     uuid NOT NULL REFERENCES certificates (id),
    PRIMARY KEY (mass_revocation_id, certificate_id)
);

-- Each subscriber (lower-cased e-mail) noticed once per mass revocation.
CREATE TABLE mass_revocation_notices (
    mass_revocation_id uuid NOT NULL REFERENCES mass_revocations (id),
    email              text NOT NULL,
    PRIMARY KEY (mass_revocation_id, email)
);

-- +goose Down
DROP TABLE mass_revocation_notices;
DROP TABLE mass_revocation_items;
DROP TABLE mass_revocations;
DROP INDEX certificates_organization_identifier;
DROP INDEX certificates_organization_en;
DROP INDEX certificates_spki;
ALTER TABLE certificates DROP COLUMN spki_sha256;
