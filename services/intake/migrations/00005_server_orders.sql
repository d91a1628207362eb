-- +goose Up

-- Server certificates (SPEC §4.2, §5 "Server orders"): customers, the
-- server certificates intake knows (ours, from CertificateIssued, and
-- those bought elsewhere, imported by an operator), orders and the steps
-- a customer sees on them (SV-12).

-- A server customer: an account of e-mail + password (argon2id). The
-- password is NULL for a customer an operator imported, until it is set
-- with a one-time setup link.
CREATE TABLE customers (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    name          text        NOT NULL,
    language      text        NOT NULL,
    password_hash text,
    created_at    timestamptz NOT NULL
);

-- One-time password-setup links: only the SHA-256 of the token is kept.
CREATE TABLE customer_setup_tokens (
    token_hash  bytea PRIMARY KEY,
    customer_id uuid        NOT NULL REFERENCES customers (id),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX customer_setup_tokens_customer ON customer_setup_tokens (customer_id);

-- Server certificates intake knows, with the subject fields SV-5 compares
-- and the coverage SV-11 carries over.
CREATE TABLE server_certificates (
    id              uuid PRIMARY KEY,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    imported        boolean     NOT NULL,
    application_id  uuid,
    order_id        uuid,
    common_name     text        NOT NULL,
    organization    text        NOT NULL,
    locality        text        NOT NULL,
    state           text        NOT NULL,
    country         text        NOT NULL,
    dns_names       jsonb       NOT NULL,
    serial          text        NOT NULL,
    issuer_dn       text        NOT NULL,
    not_before      timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,
    coverage_end    timestamptz NOT NULL,
    registry_org    jsonb       NOT NULL,
    renew_intent_at timestamptz,
    declined_at     timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX server_certificates_customer ON server_certificates (customer_id);
CREATE UNIQUE INDEX server_certificates_serial ON server_certificates (issuer_dn, serial);

-- An order is what is paid for. Status is computed from these facts.
CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    kind            text        NOT NULL,
    source          text        NOT NULL,
    term_months     int         NOT NULL,
    renewal_of      uuid,
    -- the expiry the notice was for: one renewal order per certificate and cycle
    cycle           timestamptz,
    application_id  uuid,
    certificate_id  uuid,
    invoice_id      text,
    invoice_number  text,
    decision        text        NOT NULL,
    carry_over_days int         NOT NULL DEFAULT 0,
    coverage_end    timestamptz,
    paid_at         timestamptz,
    refunded_at     timestamptz,
    cancelled_at    timestamptz,
    created_at      timestamptz NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, created_at);
CREATE UNIQUE INDEX orders_notice_cycle ON orders (renewal_of, cycle) WHERE source = 'notice';

-- What the other services reported of an order's steps (SV-12); steps
-- without a row are pending. key is the domain of a domain validation.
CREATE TABLE order_steps (
    order_id uuid        NOT NULL REFERENCES orders (id),
    name     text        NOT NULL,
    key      text        NOT NULL DEFAULT '',
    status   text        NOT NULL,
    at       timestamptz NOT NULL,
    detail   text        NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, name, key)
);

-- A server application belongs to a customer: applicant_id holds the
-- customer's ID for product server (no applicants row), and the server
-- part of the application is kept as the events carry it.
ALTER TABLE applications DROP CONSTRAINT applications_applicant_id_fkey;
ALTER TABLE applications ADD COLUMN server jsonb;
-- Customer sessions live beside applicant sessions.
ALTER TABLE sessions DROP CONSTRAINT sessions_applicant_id_fkey;
ALTER TABLE sessions ADD COLUMN customer boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE sessions DROP COLUMN customer;
ALTER TABLE applications DROP COLUMN server;
DROP TABLE order_steps;
DROP TABLE orders;
DROP TABLE server_certificates;
DROP TABLE customer_setup_tokens;
DROP TABLE customers;
