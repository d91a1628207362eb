-- +goose Up

-- Reissues inside a coverage longer than a certificate (IS-4): one per
-- certificate replaced, made on the issuer's CoverageReissueDue. With
-- reuse_key the application is made at once from the previous CSR;
-- otherwise it waits for the customer's new CSR until csr_received_at.
CREATE TABLE coverage_reissues (
    certificate_id       uuid PRIMARY KEY,            -- the certificate replaced
    application_id       uuid NOT NULL UNIQUE,        -- the reissue application (made when the CSR is there)
    previous_application uuid NOT NULL,               -- the application that made the certificate
    customer_id          uuid NOT NULL REFERENCES customers (id),
    order_id             uuid,                        -- the order the coverage was bought with
    reuse_key            boolean NOT NULL,
    deadline             timestamptz NOT NULL,        -- the replaced certificate's notAfter
    requested_at         timestamptz NOT NULL,
    csr_received_at      timestamptz
);

CREATE INDEX coverage_reissues_order ON coverage_reissues (order_id, requested_at);

-- +goose Down
DROP TABLE coverage_reissues;
