-- +goose Up
-- A server order's payment can be refunded (PaymentRefunded, BI-2). The
-- latest fact wins: the order is paid while its latest payment is later
-- than its latest refund. Either may arrive first, so a row may hold a
-- refund and no payment yet.
ALTER TABLE order_payments
    ALTER COLUMN method DROP NOT NULL,
    ALTER COLUMN reference DROP NOT NULL,
    ALTER COLUMN paid_at DROP NOT NULL,
    ADD COLUMN refunded_at timestamptz,
    ADD CONSTRAINT order_payments_fact CHECK (paid_at IS NOT NULL OR refunded_at IS NOT NULL);

-- When the payment a review relied on was refunded: the review waits for
-- payment again (out of the queue), and operators are told why.
ALTER TABLE reviews ADD COLUMN refunded_at timestamptz;

-- +goose Down
ALTER TABLE reviews DROP COLUMN refunded_at;
DELETE FROM order_payments WHERE paid_at IS NULL;
ALTER TABLE order_payments
    DROP CONSTRAINT order_payments_fact,
    DROP COLUMN refunded_at,
    ALTER COLUMN method SET NOT NULL,
    ALTER COLUMN reference SET NOT NULL,
    ALTER COLUMN paid_at SET NOT NULL;
