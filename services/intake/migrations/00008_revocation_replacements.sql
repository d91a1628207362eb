-- +goose Up

-- OP-5: a server certificate a mass revocation took, whose paid coverage
-- goes on, is replaced for free through the reissue of IS-4 (always with
-- a new key): the mass revocation and its reason say why.
ALTER TABLE coverage_reissues
    ADD COLUMN mass_revocation_id text,
    ADD COLUMN revocation_reason  text;

-- +goose Down
ALTER TABLE coverage_reissues DROP COLUMN revocation_reason, DROP COLUMN mass_revocation_id;
