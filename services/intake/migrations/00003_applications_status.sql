-- +goose Up
-- The application funnel (OP-3) counts applications per status at scrape
-- time; each count is an index-only scan bounded by a LIMIT.
CREATE INDEX applications_status ON applications (status);

-- +goose Down
DROP INDEX applications_status;
