-- +goose Up
-- Failure paths of the platform tables (SE-8, SE-9, EV-2 … EV-4).

-- Outbox rows JetStream refused for good (over the max payload, rejected
-- by the stream): moved aside so the rows behind them flow, kept for
-- operators to see and replay. id is the row's outbox seq.
CREATE TABLE outbox_quarantine (
    id              bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    subject         text        NOT NULL,
    payload         bytea       NOT NULL,
    created_at      timestamptz NOT NULL, -- when the event entered the outbox
    error           text        NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);

-- Failures of a message that were the work's fault (not an outage),
-- counted by the consumer toward its max deliveries. A row lives only
-- while a message is failing: deleted when it succeeds or is dead-lettered.
CREATE TABLE consumer_failures (
    consumer    text        NOT NULL,
    stream_seq  bigint      NOT NULL,
    failures    int         NOT NULL,
    last_error  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream_seq)
);
CREATE INDEX consumer_failures_updated ON consumer_failures (updated_at);

-- Retention prunes the inbox by age; handled_at grows with insertion, so a
-- BRIN index finds old rows at almost no cost to the hot path.
CREATE INDEX inbox_handled_at ON inbox USING brin (handled_at);

-- Timers that failed too often are parked: kept, never fired again until
-- an operator retries them.
ALTER TABLE timers ADD COLUMN parked_at timestamptz;
DROP INDEX timers_due;
CREATE INDEX timers_due ON timers (due_at) WHERE parked_at IS NULL;
CREATE INDEX timers_parked ON timers (parked_at) WHERE parked_at IS NOT NULL;

-- +goose Down
DROP INDEX timers_parked;
DROP INDEX timers_due;
ALTER TABLE timers DROP COLUMN parked_at;
CREATE INDEX timers_due ON timers (due_at);
DROP INDEX inbox_handled_at;
DROP TABLE consumer_failures;
DROP TABLE outbox_quarantine;
