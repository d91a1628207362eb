-- +goose Up

-- PC-17 / SBR 7.1.4.2.2 d: the organization's registration reference
-- (e.g. NTRJP-<corporate number>), from the approved application, for
-- subject:organizationIdentifier. Null for applications approved before
-- intake collected it.
ALTER TABLE certificates ADD COLUMN organization_identifier text;

-- +goose Down
ALTER TABLE certificates DROP COLUMN organization_identifier;
