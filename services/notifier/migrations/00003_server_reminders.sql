-- +goose Up

-- Server certificates' renewal notices (SV-1, NO-3): 60 days before the
-- expiry of our own, 90 before that of a certificate bought elsewhere
-- (schedule 'server_imported', CertificateImported).
INSERT INTO reminder_offsets (product, days_before) VALUES ('server', 60), ('server_imported', 90);

-- What the server reminders and mails need of a certificate: its customer,
-- common name, whether it was bought elsewhere, a declined renewal (SV-2),
-- and the customer's password setup link (sealed to the notifier's key,
-- SE-1) when it rides with the first notice rather than a welcome mail.
ALTER TABLE certificates
    ADD COLUMN customer_id       text,
    ADD COLUMN common_name       text,
    ADD COLUMN imported          boolean NOT NULL DEFAULT false,
    ADD COLUMN declined_at       timestamptz,
    ADD COLUMN sealed_setup_link bytea;

-- Secrets a mail carries besides a certificate code, sealed to the
-- notifier's key until sent or given up (SE-1): the renewal notice's
-- one-click links (JSON) and a password setup link.
ALTER TABLE deliveries
    ADD COLUMN sealed_links bytea,
    ADD COLUMN sealed_setup bytea;

-- Orders as placed (OrderPlaced), for their mails: an order placed by a
-- server application already has its application, so its payment's mail
-- says the application proceeds rather than how to apply (SV-3).
CREATE TABLE orders (
    order_id        text        PRIMARY KEY,
    application_id  text,
    kind            text        NOT NULL,
    source          text        NOT NULL,
    placed_at       timestamptz NOT NULL
);

-- +goose Down
DROP TABLE orders;
ALTER TABLE deliveries DROP COLUMN sealed_setup, DROP COLUMN sealed_links;
ALTER TABLE certificates DROP COLUMN sealed_setup_link, DROP COLUMN declined_at, DROP COLUMN imported,
    DROP COLUMN common_name, DROP COLUMN customer_id;
DELETE FROM reminder_offsets WHERE product IN ('server', 'server_imported');
