-- +goose Up
-- Validation's review queue (PC-6, OP-1). Domain, organization and phone
-- checks come later in their own migrations.

-- One review per application. It is created by whichever of final
-- acceptance (CancelWindowClosed) and payment (PaymentConfirmed) arrives
-- first, and becomes pending — visible to operators — once both have.
CREATE TABLE reviews (
    id                 uuid        PRIMARY KEY,
    application_id     text        NOT NULL UNIQUE,
    correlation_id     text        NOT NULL DEFAULT '',
    -- The application as finally accepted: the evidence reviewed.
    application        jsonb,
    company_code       text,
    final_at           timestamptz,
    paid_at            timestamptz,
    payment_method     text,
    payment_reference  text,
    status             text        NOT NULL CHECK (status IN ('waiting', 'pending', 'approved', 'rejected')),
    pending_at         timestamptz,
    decided_by         text,
    decided_at         timestamptz,
    reject_reason      text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK (status = 'waiting' OR (application IS NOT NULL AND paid_at IS NOT NULL AND pending_at IS NOT NULL)),
    CHECK ((status IN ('approved', 'rejected')) = (decided_at IS NOT NULL AND decided_by IS NOT NULL)),
    CHECK ((status = 'rejected') = (reject_reason IS NOT NULL))
);
CREATE INDEX reviews_queue ON reviews (status, pending_at);

-- What this service has seen approved, per organization: evidence for the
-- next review of the same organization (OP-1).
CREATE TABLE organization_history (
    review_id          uuid        PRIMARY KEY REFERENCES reviews (id),
    company_code       text        NOT NULL,
    application_id     text        NOT NULL,
    product            text        NOT NULL,
    kind               text        NOT NULL,
    applicant_name_en  text        NOT NULL,
    applicant_email    text        NOT NULL,
    previous_certificate_id text,
    approved_by        text        NOT NULL,
    approved_at        timestamptz NOT NULL
);
CREATE INDEX organization_history_company ON organization_history (company_code, approved_at DESC);

-- +goose Down
DROP TABLE organization_history;
DROP TABLE reviews;
