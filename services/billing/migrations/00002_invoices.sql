-- +goose Up
-- Billing's invoices and payments (BI-2, BI-3, BI-4, SV-3).

-- The price list (BI-4): what a product for a term costs before tax, in
-- integer minor units of an ISO 4217 currency. PUT /ops/v1/prices
-- replaces it whole.
CREATE TABLE prices (
    product      text        NOT NULL,
    term_months  int         NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    currency     text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    amount       bigint      NOT NULL CHECK (amount > 0),
    tax_rate     int         NOT NULL CHECK (tax_rate BETWEEN 0 AND 100),
    updated_at   timestamptz NOT NULL,
    updated_by   text        NOT NULL,
    PRIMARY KEY (product, term_months)
);

-- One sequence numbers invoices and their payment references.
CREATE SEQUENCE invoice_seq START 1;

-- One invoice per order. awaiting_price: the order came without a price
-- for its product and term (an operator's list; issued when the price
-- list has it); open -> paid -> refunded; void: the order was cancelled
-- before payment (OrderCancelled; a cancellation seen before the order
-- leaves a void row that the late OrderPlaced finds).
CREATE TABLE invoices (
    id                 uuid        PRIMARY KEY,
    order_id           text        NOT NULL UNIQUE,
    customer_id        text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('awaiting_price', 'open', 'paid', 'refunded', 'void')),
    product            text        NOT NULL,
    term_months        int         NOT NULL,
    -- The OrderPlaced payload, kept so a waiting invoice can be issued later.
    ordered            jsonb       NOT NULL,
    correlation_id     text        NOT NULL DEFAULT '',
    -- Set when issued.
    number             text        UNIQUE,
    payment_reference  text        UNIQUE,
    currency           text,
    total              bigint,
    issued             jsonb,      -- the InvoiceIssued payload
    issued_at          timestamptz,
    due_at             timestamptz,
    paid_at            timestamptz,
    paid_method        text,
    paid_reference     text,
    refunded_at        timestamptz,
    voided_at          timestamptz,
    created_at         timestamptz NOT NULL,
    CHECK (status IN ('awaiting_price', 'void') OR number IS NOT NULL)
);
CREATE INDEX invoices_customer ON invoices (customer_id);
CREATE INDEX invoices_awaiting ON invoices (created_at) WHERE status = 'awaiting_price';

-- Every webhook event seen, by the processor's event ID (BI-2): a repeated
-- ID is answered 200 and does nothing.
CREATE TABLE webhook_events (
    id           text        PRIMARY KEY,
    type         text        NOT NULL,
    invoice      text        NOT NULL,
    amount       bigint      NOT NULL,
    currency     text        NOT NULL,
    payment_id   text        NOT NULL DEFAULT '',
    outcome      text        NOT NULL,
    received_at  timestamptz NOT NULL
);

-- Uploaded statements (BI-3) and each line's identity and outcome. A line
-- hash seen before is a duplicate: the same statement uploaded twice, or
-- overlapping exports, apply nothing twice.
CREATE TABLE bank_statements (
    id           uuid        PRIMARY KEY,
    uploaded_by  text        NOT NULL,
    uploaded_at  timestamptz NOT NULL,
    encoding     text        NOT NULL,
    lines        int         NOT NULL
);
CREATE TABLE bank_statement_lines (
    hash          text        PRIMARY KEY,
    statement_id  uuid        NOT NULL REFERENCES bank_statements (id),
    line          int         NOT NULL,
    value_date    date        NOT NULL,
    payer_name    text        NOT NULL,
    amount        bigint      NOT NULL,
    reference     text        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('matched', 'unmatched', 'partial')),
    invoice_id    uuid
);
CREATE INDEX bank_statement_lines_statement ON bank_statement_lines (statement_id, line);

-- Payments that wait for an operator (BI-2, BI-3): never applied blindly.
CREATE TABLE payment_exceptions (
    id           uuid        PRIMARY KEY,
    source       text        NOT NULL CHECK (source IN ('card', 'bank_transfer')),
    kind         text        NOT NULL,
    invoice_id   uuid,
    invoice      text        NOT NULL DEFAULT '',  -- number or reference quoted
    amount       bigint      NOT NULL,
    currency     text        NOT NULL,
    payer_name   text        NOT NULL DEFAULT '',
    source_ref   text        NOT NULL,             -- webhook event ID or statement line hash
    detail       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    resolved_by  text,
    resolution   text,
    note         text
);
CREATE INDEX payment_exceptions_open ON payment_exceptions (created_at) WHERE resolved_at IS NULL;

-- +goose Down
DROP TABLE payment_exceptions;
DROP TABLE bank_statement_lines;
DROP TABLE bank_statements;
DROP TABLE webhook_events;
DROP TABLE invoices;
DROP SEQUENCE invoice_seq;
DROP TABLE prices;
