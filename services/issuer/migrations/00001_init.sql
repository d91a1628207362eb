-- +goose Up

-- One row per client certificate, from approval (status ready) through
-- retrieval (issued) to revocation. Subject data is kept to what the
-- certificate names; the rest of the application stays with intake.
CREATE TABLE certificates (
    id                      uuid        PRIMARY KEY,
    -- IS-5: one application yields at most one certificate.
    application_id          text        NOT NULL UNIQUE,
    applicant_id            text        NOT NULL,
    product                 text        NOT NULL,
    kind                    text        NOT NULL CHECK (kind IN ('new', 'renewal', 'reissue')),
    previous_certificate_id uuid        REFERENCES certificates (id),
    reissue_reason          text,
    correlation_id          text        NOT NULL,
    name_en                 text        NOT NULL,
    organization_en         text        NOT NULL,
    email                   text        NOT NULL,
    language                text        NOT NULL DEFAULT '',
    status                  text        NOT NULL CHECK (status IN ('ready', 'issued', 'failed')),
    created_at              timestamptz NOT NULL,

    -- Retrieval (PC-13): the applicant's one request and its progress.
    retrieval_mode          text        CHECK (retrieval_mode IN ('pkcs12', 'csr')),
    retrieval_status        text        CHECK (retrieval_status IN ('pending', 'ready', 'delivered', 'failed')),
    retrieval_requested_at  timestamptz,
    retrieval_failure       text,
    delivered_at            timestamptz,

    -- Issuance. The serial is recorded in serials before signing (IS-2).
    serial                  text        UNIQUE,
    issuer                  text,
    not_before              timestamptz,
    not_after               timestamptz,
    der                     bytea,
    issued_at               timestamptz,

    -- Revocation (IS-6); crl_number is the first CRL that listed it (IS-7).
    revoked_at              timestamptz,
    revocation_reason       text,
    revoked_by              text,
    crl_number              bigint,

    CHECK ((status = 'issued') = (der IS NOT NULL)),
    CHECK (revoked_at IS NULL OR status = 'issued')
);
CREATE INDEX certificates_applicant ON certificates (applicant_id);
CREATE INDEX certificates_previous ON certificates (previous_certificate_id);
CREATE INDEX certificates_revoked ON certificates (not_after) WHERE revoked_at IS NOT NULL;

-- IS-2: every serial ever drawn, committed before the signature is made,
-- so a serial is never used twice even across a crash mid-issuance.
CREATE TABLE serials (
    serial         text        PRIMARY KEY,
    certificate_id uuid        NOT NULL REFERENCES certificates (id),
    recorded_at    timestamptz NOT NULL,
    CHECK (serial ~ '^[0-9a-f]+$' AND serial <> '0')
);
ALTER TABLE certificates ADD FOREIGN KEY (serial) REFERENCES serials (serial);

-- PKCS#12 files waiting for their one download (PC-14): already
-- password-encrypted, and sealed again with the CA directory's data key.
CREATE TABLE pkcs12_files (
    certificate_id uuid        PRIMARY KEY REFERENCES certificates (id),
    sealed         bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);

-- CRLs (IS-7): the number only grows; the latest is served.
CREATE TABLE crl_numbers (
    issuer      text   PRIMARY KEY,
    last_number bigint NOT NULL
);
CREATE TABLE crls (
    issuer      text        NOT NULL,
    number      bigint      NOT NULL,
    this_update timestamptz NOT NULL,
    next_update timestamptz NOT NULL,
    entries     int         NOT NULL,
    der         bytea       NOT NULL,
    PRIMARY KEY (issuer, number)
);

-- +goose Down
DROP TABLE crls;
DROP TABLE crl_numbers;
DROP TABLE pkcs12_files;
ALTER TABLE certificates DROP CONSTRAINT IF EXISTS certificates_serial_fkey;
DROP TABLE serials;
DROP TABLE certificates;
