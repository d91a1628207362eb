-- +goose Up
-- Idempotency-Key records (SE-6), one table per service schema: the first
-- response to a POST under a key, replayed to its retries. scope is
-- SHA-256 of (caller, method, path, key), so neither the key nor the
-- caller is stored; fingerprint is HMAC-SHA256 of the request under the
-- key, so a body holding a secret (a PKCS#12 password) cannot be guessed
-- from it. status IS NULL while the first request runs (owner, lease_until).
CREATE TABLE idempotency_keys (
    scope        bytea       PRIMARY KEY,
    method       text        NOT NULL,
    path         text        NOT NULL,
    fingerprint  bytea       NOT NULL,
    owner        uuid,
    lease_until  timestamptz,
    status       int,
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
