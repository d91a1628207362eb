-- +goose Up
-- The server order flow (SV-7 … SV-9, VA-5): what a server application's
-- review waits for beyond final acceptance and payment — every domain
-- validated, the organization matched with the registry, the phone check
-- confirmed or reused — and the payments of orders whose application is
-- not known yet.

-- A server application's review enters the queue only once its checks
-- passed (checks_at). An application whose organization does not match
-- the registry is rejected without waiting for its payment.
ALTER TABLE reviews ADD COLUMN checks_at timestamptz;
ALTER TABLE reviews DROP CONSTRAINT reviews_check;
ALTER TABLE reviews ADD CONSTRAINT reviews_queued
    CHECK (status IN ('waiting', 'rejected') OR (application IS NOT NULL AND paid_at IS NOT NULL AND pending_at IS NOT NULL));
ALTER TABLE reviews ADD CONSTRAINT reviews_rejected_known CHECK (status <> 'rejected' OR application IS NOT NULL);

-- One row per server application: the organization check and the phone
-- check's state.
CREATE TABLE server_checks (
    application_id   text        PRIMARY KEY,
    customer_id      text        NOT NULL,
    order_id         text        NOT NULL,
    duns             text        NOT NULL,
    correlation_id   text        NOT NULL DEFAULT '',
    -- pending (not in the registry yet: retried), verified, mismatch.
    org_status       text        NOT NULL CHECK (org_status IN ('pending', 'verified', 'mismatch')),
    org_verified_at  timestamptz,
    org_valid_until  timestamptz,
    -- The earlier application whose verified data is reused (VA-5).
    org_reused_from  text,
    -- The registry's record and the differences, as shown to operators.
    org_registry     jsonb,
    org_mismatches   jsonb,
    org_detail       text        NOT NULL DEFAULT '',
    -- not_needed (reused), pending, confirmed, failed.
    phone_status     text        NOT NULL CHECK (phone_status IN ('none', 'not_needed', 'pending', 'confirmed', 'failed')),
    phone_confirmed_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CHECK ((org_status = 'verified') = (org_verified_at IS NOT NULL))
);
CREATE INDEX server_checks_order ON server_checks (order_id);
CREATE INDEX server_checks_reuse ON server_checks (duns, phone_confirmed_at DESC) WHERE phone_status = 'confirmed';

-- Phone verification tasks (SV-9): a call to the registry's main number,
-- never one the applicant gave; an operator records the result.
CREATE TABLE phone_checks (
    id              uuid        PRIMARY KEY,
    application_id  text        NOT NULL UNIQUE REFERENCES server_checks (application_id),
    duns            text        NOT NULL,
    organization    text        NOT NULL,
    phone           text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
    note            text        NOT NULL DEFAULT '',
    decided_by      text,
    decided_at      timestamptz,
    created_at      timestamptz NOT NULL,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX phone_checks_pending ON phone_checks (created_at) WHERE status = 'pending';

-- Payments of server orders (PaymentConfirmed with order_id), which may
-- arrive before the order's application is known.
CREATE TABLE order_payments (
    order_id    text        PRIMARY KEY,
    method      text        NOT NULL,
    reference   text        NOT NULL,
    paid_at     timestamptz NOT NULL
);

-- +goose Down
DROP TABLE order_payments;
DROP TABLE phone_checks;
DROP TABLE server_checks;
ALTER TABLE reviews DROP CONSTRAINT reviews_rejected_known;
ALTER TABLE reviews DROP CONSTRAINT reviews_queued;
ALTER TABLE reviews ADD CONSTRAINT reviews_check
    CHECK (status = 'waiting' OR (application IS NOT NULL AND paid_at IS NOT NULL AND pending_at IS NOT NULL));
ALTER TABLE reviews DROP COLUMN checks_at;
