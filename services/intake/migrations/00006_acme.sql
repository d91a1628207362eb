-- +goose Up

-- The ACME server (SPEC §4.10, AC-1 … AC-4): nonces, EAB keys, accounts,
-- authorizations with their challenges, orders and the certificates
-- delivered to them. ACME accounts and orders are intake's data (§2).

-- Replay nonces, single use, shared by every replica.
CREATE TABLE acme_nonces (
    nonce      text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX acme_nonces_expires ON acme_nonces (expires_at);

-- External account binding keys (AC-2): the MAC key only sealed
-- (AES-GCM under a key derived from CODE_HMAC_KEY_FILE), never in clear;
-- profile is the customer's organization and contact as the operator
-- vouched for them when issuing the key.
CREATE TABLE acme_eab_keys (
    kid         text        PRIMARY KEY,
    customer_id text        NOT NULL,
    sealed_key  bytea       NOT NULL,
    profile     jsonb       NOT NULL DEFAULT '{}',
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    account_id  uuid
);

CREATE TABLE acme_accounts (
    id          uuid        PRIMARY KEY,
    thumbprint  text        NOT NULL UNIQUE,
    jwk         jsonb       NOT NULL,
    contact     jsonb       NOT NULL DEFAULT '[]',
    status      text        NOT NULL,
    customer_id text        NOT NULL,
    eab_kid     text,
    created_at  timestamptz NOT NULL
);

CREATE TABLE acme_authzs (
    id         uuid        PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES acme_accounts (id),
    domain     text        NOT NULL,
    wildcard   boolean     NOT NULL,
    status     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    challenges jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX acme_authzs_reuse ON acme_authzs (account_id, domain, wildcard, status);

CREATE TABLE acme_orders (
    id             uuid        PRIMARY KEY,
    account_id     uuid        NOT NULL REFERENCES acme_accounts (id),
    status         text        NOT NULL,
    identifiers    jsonb       NOT NULL,
    authz_ids      uuid[]      NOT NULL,
    expires_at     timestamptz NOT NULL,
    replaces       text,
    error          jsonb,
    application_id uuid,
    certificate_id text,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX acme_orders_authz ON acme_orders USING gin (authz_ids);
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);
CREATE UNIQUE INDEX acme_orders_application ON acme_orders (application_id);

-- Certificates issued to ACME orders (from CertificateIssued), with
-- their RFC 9773 certID; replace_after moves the ARI window into the
-- past (an operator, a revocation, OP-5).
CREATE TABLE acme_certificates (
    id             text        PRIMARY KEY,
    order_id       uuid        NOT NULL UNIQUE REFERENCES acme_orders (id),
    account_id     uuid        NOT NULL,
    serial         text        NOT NULL UNIQUE,
    cert_id        text        NOT NULL UNIQUE,
    pem_chain      text        NOT NULL,
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text,
    replace_early  timestamptz,
    replace_reason text,
    replaced_by    uuid
);

-- +goose Down
DROP TABLE acme_certificates;
DROP TABLE acme_orders;
DROP TABLE acme_authzs;
DROP TABLE acme_accounts;
DROP TABLE acme_eab_keys;
DROP TABLE acme_nonces;
