-- +goose Up

-- Server (OV TLS) certificates (SPEC §4.2, IS-2 … IS-5, IS-9 … IS-11).
-- A server certificate row is made when its application is approved
-- (status pending) and issued by a timer: precertificate, CT logs, final
-- certificate. Its subject, names, CSR and coverage come from the
-- approved application (public data, no secret) in column server.
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('ready', 'pending', 'issued', 'failed'));
ALTER TABLE certificates
    -- The customer account that owns a server certificate (its chain is
    -- served to that account's sessions).
    ADD COLUMN customer_id        text,
    ADD COLUMN server             jsonb,
    ADD COLUMN issuance_attempts  int NOT NULL DEFAULT 0,
    ADD COLUMN issuance_failure   text,
    ADD CONSTRAINT certificates_server_part CHECK ((product = 'server') = (server IS NOT NULL));

-- IS-9: each precertificate, committed (like its serial, IS-2) before it
-- is submitted to any log, so a retry — or a restart in between —
-- submits the same one and keeps the SCTs already received.
CREATE TABLE precertificates (
    serial         text        PRIMARY KEY REFERENCES serials (serial),
    certificate_id uuid        NOT NULL REFERENCES certificates (id),
    der            bytea       NOT NULL,
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX precertificates_certificate ON precertificates (certificate_id, created_at DESC);

-- The SCTs received for a precertificate, TLS-encoded (RFC 6962 §3.2),
-- each verified against its log's key before it was kept.
CREATE TABLE scts (
    serial      text        NOT NULL REFERENCES precertificates (serial),
    log_id      bytea       NOT NULL,
    log_url     text        NOT NULL,
    sct         bytea       NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (serial, log_id)
);

-- Every failed issuance attempt, for operators (GET
-- /ops/v1/issuance-failures): why, at which stage, and whether another
-- attempt follows.
CREATE TABLE issuance_failures (
    id              bigserial   PRIMARY KEY,
    certificate_id  uuid        NOT NULL REFERENCES certificates (id),
    application_id  text        NOT NULL,
    at              timestamptz NOT NULL,
    stage           text        NOT NULL CHECK (stage IN ('csr', 'request', 'lint', 'ct', 'verify')),
    detail          text        NOT NULL,
    attempt         int         NOT NULL,
    final           boolean     NOT NULL,
    next_attempt_at timestamptz,
    serial          text,
    logs            jsonb       -- the CT logs that failed and why
);
CREATE INDEX issuance_failures_at ON issuance_failures (at DESC, id DESC);
CREATE INDEX issuance_failures_certificate ON issuance_failures (certificate_id, id DESC);

-- +goose Down
DROP TABLE issuance_failures;
DROP TABLE scts;
DROP TABLE precertificates;
ALTER TABLE certificates DROP CONSTRAINT certificates_server_part;
ALTER TABLE certificates DROP COLUMN issuance_failure, DROP COLUMN issuance_attempts,
    DROP COLUMN server, DROP COLUMN customer_id;
ALTER TABLE certificates DROP CONSTRAINT certificates_status_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_status_check
    CHECK (status IN ('ready', 'issued', 'failed'));
