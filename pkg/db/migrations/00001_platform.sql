-- +goose Up
-- Tables every service keeps in its own schema: the transactional outbox,
-- the inbox of handled events, and durable timers.
CREATE TABLE outbox (
    seq         bigserial PRIMARY KEY,
    event_id    uuid        NOT NULL UNIQUE,
    subject     text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE timers (
    kind        text        NOT NULL,
    key         text        NOT NULL,
    due_at      timestamptz NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    attempts    int         NOT NULL DEFAULT 0,
    last_error  text,
    PRIMARY KEY (kind, key)
);
CREATE INDEX timers_due ON timers (due_at);

-- +goose Down
DROP TABLE timers;
DROP TABLE inbox;
DROP TABLE outbox;
