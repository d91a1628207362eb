-- +goose Up
-- Domain control validation (SV-8, VA-1 … VA-6), the record of every
-- validation attempt (VA-9), and the business registry operators load
-- (SV-7, SV-9).

-- One validation per domain of an application. The random value of the
-- DNS and HTTP methods is published by the customer and kept; the
-- e-mail method's value is a secret and only its SHA-256 is kept (SE-1).
CREATE TABLE domain_validations (
    id              uuid        PRIMARY KEY,
    application_id  text        NOT NULL,
    customer_id     text        NOT NULL,
    account_uri     text        NOT NULL DEFAULT '',
    domain          text        NOT NULL,
    method          text        NOT NULL CHECK (method IN ('dns', 'http', 'email', 'dns-01', 'http-01')),
    approver_email  text,
    value           text,
    value_sha256    text        NOT NULL,
    file_name       text,
    language        text        NOT NULL DEFAULT '',
    correlation_id  text        NOT NULL DEFAULT '',
    status          text        NOT NULL CHECK (status IN ('pending', 'validated')),
    created_at      timestamptz NOT NULL,
    -- When the random value stops being usable (VA-1: 30 days).
    expires_at      timestamptz NOT NULL,
    validated_at    timestamptz,
    -- The earlier validation of the same customer and domain this one
    -- relies on (VA-5).
    reused_from     uuid        REFERENCES domain_validations (id),
    -- Why the last check did not validate (VA-6).
    last_failure    jsonb,
    updated_at      timestamptz NOT NULL,
    UNIQUE (application_id, domain),
    CHECK ((status = 'validated') = (validated_at IS NOT NULL)),
    CHECK (method <> 'email' OR value IS NULL),
    CHECK (method = 'email' OR value IS NOT NULL OR reused_from IS NOT NULL),
    CHECK ((method = 'email') = (approver_email IS NOT NULL))
);
CREATE INDEX domain_validations_application ON domain_validations (application_id);
CREATE INDEX domain_validations_reuse ON domain_validations (customer_id, domain, validated_at DESC) WHERE status = 'validated';
CREATE INDEX domain_validations_email ON domain_validations (value_sha256) WHERE method = 'email' AND status = 'pending';

-- Every validation attempt: domain control, CAA, organization (VA-9, TLS
-- BR SC-099): what, the method (BR section and version), the hash of the
-- random value — never the value —, each perspective's observation, the
-- result and the time. Append-only; each row is also in the audit log.
CREATE TABLE validation_attempts (
    id              uuid        PRIMARY KEY,
    at              timestamptz NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('domain', 'caa', 'organization')),
    subject         text        NOT NULL,
    application_id  text,
    validation_id   uuid,
    method          text        NOT NULL,
    br_section      text,
    br_version      text,
    value_sha256    text,
    result          text        NOT NULL CHECK (result IN ('passed', 'failed')),
    detail          text        NOT NULL DEFAULT '',
    perspectives    jsonb       NOT NULL DEFAULT '[]',
    actor           text        NOT NULL
);
CREATE INDEX validation_attempts_subject ON validation_attempts (subject, at DESC, id DESC);
CREATE INDEX validation_attempts_at ON validation_attempts (at DESC, id DESC);

-- +goose StatementBegin
CREATE FUNCTION validation_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'validation_attempts is append-only (VA-9)';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER validation_attempts_append_only BEFORE UPDATE OR DELETE ON validation_attempts
    FOR EACH ROW EXECUTE FUNCTION validation_attempts_append_only();

-- The independent business registry's English records, loaded by
-- operators from files (POST /ops/v1/registry).
CREATE TABLE registry_organizations (
    number       text        PRIMARY KEY,
    name_en      text        NOT NULL,
    street       text        NOT NULL,
    city         text        NOT NULL,
    state        text        NOT NULL DEFAULT '',
    postal_code  text        NOT NULL DEFAULT '',
    country      text        NOT NULL,
    phone        text        NOT NULL,
    loaded_at    timestamptz NOT NULL,
    loaded_by    text        NOT NULL
);

-- +goose Down
DROP TABLE registry_organizations;
DROP TRIGGER validation_attempts_append_only ON validation_attempts;
DROP FUNCTION validation_attempts_append_only();
DROP TABLE validation_attempts;
DROP TABLE domain_validations;
