-- +goose Up

-- NO-2: the name mail about the certificate addresses the applicant by
-- (the applicant's name in the application's language), carried in the
-- recipient of CertificateIssued and CertificateRevoked. Null for
-- certificates recorded before: their mails fall back to a generic
-- greeting.
ALTER TABLE certificates ADD COLUMN recipient_name text;

-- +goose Down
ALTER TABLE certificates DROP COLUMN recipient_name;
