-- +goose Up
-- The delivery log is pruned by the time a message was finished (sent or
-- given up); pending messages are never pruned, so they are not indexed.
CREATE INDEX deliveries_finished ON deliveries (coalesce(sent_at, failed_at)) WHERE status <> 'pending';

-- +goose Down
DROP INDEX deliveries_finished;
