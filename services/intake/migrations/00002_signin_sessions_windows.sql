-- +goose Up
-- SE-7: certificate codes are stored as HMAC-SHA256 under a key kept out
-- of the database. code_hash (argon2id) stays for codes issued before;
-- it is replaced by code_mac at the next sign-in or the next new code.
ALTER TABLE applicants ADD COLUMN code_mac bytea;

-- Sessions are now signed tokens (pkg/session) that every service
-- verifies without asking intake; a row per session keeps them listable
-- and revocable here. Opaque tokens of the old table stop working: a
-- session lived 30 minutes, the applicant signs in again.
DROP TABLE sessions;
CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    applicant_id  uuid        NOT NULL REFERENCES applicants (id),
    code_verified boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- SE-3: an attempt reserves its row before any password work (pending),
-- and becomes a failure or is deleted on success. login_emails is the
-- per-e-mail row whose lock serializes reservations and holds the lockout.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    id      bigserial PRIMARY KEY,
    email   text        NOT NULL,
    addr    text        NOT NULL,
    at      timestamptz NOT NULL,
    pending boolean     NOT NULL
);
CREATE INDEX login_failures_email ON login_failures (email, at);
CREATE INDEX login_failures_addr ON login_failures (addr, at);
CREATE INDEX login_failures_at ON login_failures (at);

CREATE TABLE login_emails (
    email        text PRIMARY KEY,
    locked_until timestamptz
);

-- PC-8, PC-11: the renewal and reissue windows as the issuer announces
-- them in CertificateIssued (it owns the rule).
ALTER TABLE certificates
    ADD COLUMN renewal_from  timestamptz,
    ADD COLUMN renewal_until timestamptz,
    ADD COLUMN reissue_until timestamptz;
-- Certificates recorded before the events carried windows: the windows
-- the issuer's rule gave then, frozen here once as history. The live rule
-- is the issuer's (services/issuer/internal/domain).
UPDATE certificates SET
    renewal_from  = not_after - interval '30 days',
    renewal_until = not_after + interval '365 days',
    reissue_until = not_after - interval '30 days'
WHERE not_after IS NOT NULL;

-- +goose Down
ALTER TABLE certificates DROP COLUMN renewal_from, DROP COLUMN renewal_until, DROP COLUMN reissue_until;
DROP TABLE login_emails;
DROP TABLE login_failures;
CREATE TABLE login_failures (
    key text        NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
DROP TABLE sessions;
CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    applicant_id uuid        NOT NULL REFERENCES applicants (id),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
ALTER TABLE applicants DROP COLUMN code_mac;
