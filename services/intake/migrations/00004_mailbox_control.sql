-- +goose Up

-- Mailbox control (PC-16, S/MIME BR 3.2.2.2 and 4.2.1): the mailbox a
-- certificate code was sent to (so that signing in with the code within
-- 24 hours validates that mailbox, and no other), and the latest
-- validation, which a retrieval may reuse for 30 days. Codes issued
-- before this migration have no code_email and validate nothing: their
-- holders ask for a fresh code (POST /v1/certificate-codes).
ALTER TABLE applicants
    ADD COLUMN code_email              text,
    ADD COLUMN mailbox_validated_at    timestamptz,
    ADD COLUMN mailbox_validated_email text;

-- Fresh codes asked for, per e-mail as typed (known or not), counted
-- before any work: at most 3 an hour (PC-16). Pruned by retention.
CREATE TABLE code_requests (
    id    bigserial   PRIMARY KEY,
    email text        NOT NULL,
    at    timestamptz NOT NULL
);
CREATE INDEX code_requests_email ON code_requests (email, at);
CREATE INDEX code_requests_at ON code_requests (at);

-- +goose Down
DROP TABLE code_requests;
ALTER TABLE applicants
    DROP COLUMN code_email,
    DROP COLUMN mailbox_validated_at,
    DROP COLUMN mailbox_validated_email;
