-- +goose Up
-- An applicant is the person behind a new application and its renewals
-- and reissues. The e-mail is not unique: two new applications with one
-- address are two applicants, told apart by password and code.
CREATE TABLE applicants (
    id                  uuid PRIMARY KEY,
    email               text        NOT NULL,
    password_hash       text        NOT NULL,
    -- argon2id of the latest certificate code; only the latest is accepted (PC-7, PC-10)
    code_hash           text,
    code_issued_at      timestamptz,
    language            text        NOT NULL,
    created_at          timestamptz NOT NULL
);
CREATE INDEX applicants_email ON applicants (email);

CREATE TABLE applications (
    id                      uuid PRIMARY KEY,
    applicant_id            uuid        NOT NULL REFERENCES applicants (id),
    product                 text        NOT NULL,
    kind                    text        NOT NULL,
    status                  text        NOT NULL,
    language                text        NOT NULL,
    coupon                  text,
    organization            jsonb       NOT NULL,
    applicant               jsonb       NOT NULL,
    previous_certificate_id uuid,
    reissue_reason          text,
    accepted_at             timestamptz NOT NULL,
    cancel_deadline         timestamptz NOT NULL,
    closed_at               timestamptz,
    certificate_id          uuid,
    rejection_reason        text
);
CREATE INDEX applications_applicant ON applications (applicant_id);
-- A coupon is in at most one live application: two concurrent submissions
-- of one coupon cannot both be accepted (PC-2).
CREATE UNIQUE INDEX applications_live_coupon ON applications (coupon)
    WHERE coupon IS NOT NULL AND status NOT IN ('cancelled', 'rejected');

CREATE TABLE timeline (
    seq            bigserial PRIMARY KEY,
    application_id uuid        NOT NULL REFERENCES applications (id),
    at             timestamptz NOT NULL,
    event          text        NOT NULL,
    event_id       uuid
);
CREATE INDEX timeline_application ON timeline (application_id, seq);

-- What intake knows of each certificate, from the issuer's events: enough
-- to decide what may be renewed or reissued and to prefill the forms.
CREATE TABLE certificates (
    id             uuid PRIMARY KEY,
    application_id uuid        NOT NULL REFERENCES applications (id),
    applicant_id   uuid        NOT NULL REFERENCES applicants (id),
    status         text        NOT NULL, -- ready | issued | revoked
    not_after      timestamptz,
    retrieved_at   timestamptz
);
CREATE INDEX certificates_applicant ON certificates (applicant_id);

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY,
    applicant_id uuid        NOT NULL REFERENCES applicants (id),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- Failed logins by e-mail and by client address, for throttling (SE-3).
CREATE TABLE login_failures (
    key text        NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);

CREATE TABLE maintenance_windows (
    id         uuid PRIMARY KEY,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE maintenance_windows;
DROP TABLE login_failures;
DROP TABLE sessions;
DROP TABLE certificates;
DROP TABLE timeline;
DROP TABLE applications;
DROP TABLE applicants;
