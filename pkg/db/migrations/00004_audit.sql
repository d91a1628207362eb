-- +goose Up
-- The append-only, hash-chained audit log of the service (OP-4). Each row
-- carries the hash of the previous one; pkg/audit writes it in the same
-- transaction as the action it records and verifies the chain.
CREATE TABLE audit_log (
    seq        bigint      PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text        NOT NULL,
    action     text        NOT NULL,
    subject    text        NOT NULL DEFAULT '',
    details    jsonb       NOT NULL DEFAULT '{}',
    prev_hash  bytea       NOT NULL,
    hash       bytea       NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_subject ON audit_log (subject, seq) WHERE subject <> '';
CREATE INDEX audit_log_at ON audit_log (at);

-- +goose Down
DROP TABLE audit_log;
