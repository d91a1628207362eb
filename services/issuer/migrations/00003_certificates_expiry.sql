-- +goose Up
-- Certificates expiring in 30/60/90 days (OP-3) are counted at scrape
-- time: a range scan over the valid certificates' not_after.
CREATE INDEX certificates_expiry ON certificates (not_after) WHERE status = 'issued' AND revoked_at IS NULL;

-- +goose Down
DROP INDEX certificates_expiry;
