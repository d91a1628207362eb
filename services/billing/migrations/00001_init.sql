-- +goose Up
-- Billing's coupons (PC-2, BI-1). Invoices, payments and bank transfers
-- come later in their own migrations.

-- One row per CSV import: who imported what, and when (BI-1, OP-2).
CREATE TABLE coupon_batches (
    id           uuid        PRIMARY KEY,
    imported_by  text        NOT NULL,
    imported_at  timestamptz NOT NULL,
    lines        int         NOT NULL,
    imported     int         NOT NULL DEFAULT 0,
    rejected     int         NOT NULL DEFAULT 0
);

-- A coupon and who holds it. status moves available -> reserved ->
-- consumed, or reserved -> available on release; consumed is final. Every
-- transition is a conditional UPDATE on this row, which is what makes a
-- coupon single-use when two applications race for it.
CREATE TABLE coupons (
    number          text        PRIMARY KEY CHECK (number ~ '^[0-9]{8}-[0-9]{8}$'),
    product         text        NOT NULL CHECK (product IN ('client', 'server')),
    -- Exclusive bound: the coupon is usable while now < expires_at.
    expires_at      timestamptz NOT NULL,
    batch_id        uuid        NOT NULL REFERENCES coupon_batches (id),
    imported_at     timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'available'
                                CHECK (status IN ('available', 'reserved', 'consumed')),
    -- The application holding the coupon (reserved or consumed).
    application_id  text,
    reserved_at     timestamptz,
    consumed_at     timestamptz,
    CHECK ((status = 'available') = (application_id IS NULL))
);
CREATE INDEX coupons_batch ON coupons (batch_id);

-- Per-application reservation record. Its states are monotonic:
-- reserved -> consumed | released; consumed, released and rejected are
-- terminal. It lets the consumer accept ApplicationProvisional,
-- ApplicationCancelled and CancelWindowClosed in any order.
CREATE TABLE coupon_reservations (
    application_id  text        PRIMARY KEY,
    coupon          text,
    state           text        NOT NULL CHECK (state IN ('reserved', 'consumed', 'released', 'rejected')),
    reason          text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- Backstop: a coupon is held (reserved or consumed) by one application at most.
CREATE UNIQUE INDEX coupon_reservations_one_holder ON coupon_reservations (coupon)
    WHERE state IN ('reserved', 'consumed');

-- +goose Down
DROP TABLE coupon_reservations;
DROP TABLE coupons;
DROP TABLE coupon_batches;
