-- +goose Up

-- The durable mail queue and delivery log (NO-1, NO-4): one row per
-- message, unique by its stable Message-ID. An event handler inserts the
-- row and a send timer in one transaction; the timer sends it.
CREATE TABLE deliveries (
    id              bigserial   PRIMARY KEY,
    message_id      text        NOT NULL UNIQUE,
    reason          text        NOT NULL,
    recipient       text        NOT NULL,
    language        text        NOT NULL,
    subject_id      text        NOT NULL,
    caused_by       uuid        NOT NULL, -- the event that caused the message
    correlation_id  text        NOT NULL,
    data            jsonb       NOT NULL, -- template inputs (never a secret)
    -- The certificate code sealed to the notifier's key (SE-1); opened only
    -- at send time and wiped once the message is sent or given up.
    sealed_code     bytea,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        int         NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    failed_at       timestamptz
);
CREATE INDEX deliveries_recipient ON deliveries (recipient, id DESC);
CREATE INDEX deliveries_reason ON deliveries (reason, id DESC);

-- Reminder offsets per product (NO-3). Server (60) and transferred-in
-- server (90) rows are added when their renewal flow exists.
CREATE TABLE reminder_offsets (
    product     text NOT NULL,
    days_before int  NOT NULL CHECK (days_before > 0),
    PRIMARY KEY (product, days_before)
);
INSERT INTO reminder_offsets (product, days_before) VALUES ('client', 30), ('client', 10);

-- What the notifier knows of each certificate, from events that may come
-- in any order: a revocation or a retrieved renewal may be seen before the
-- issuance, so every fact is nullable.
CREATE TABLE certificates (
    certificate_id  text        PRIMARY KEY,
    applicant_id    text,
    product         text,
    email           text,
    language        text,
    not_after       timestamptz,
    correlation_id  text,
    revoked_at      timestamptz,
    renewed_by      text,       -- the renewal certificate retrieved
    updated_at      timestamptz NOT NULL
);

-- Every reminder that fired, sent or suppressed, and why (PC-10).
CREATE TABLE reminders (
    certificate_id  text        NOT NULL,
    days_before     int         NOT NULL,
    due_at          timestamptz NOT NULL,
    fired_at        timestamptz NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('sent', 'suppressed')),
    why             text,
    PRIMARY KEY (certificate_id, days_before)
);

-- +goose Down
DROP TABLE reminders;
DROP TABLE certificates;
DROP TABLE reminder_offsets;
DROP TABLE deliveries;
