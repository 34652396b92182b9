-- The idempotency record of the consumer runtime: one row per (consumer,
-- message id), inserted in the same transaction as the consumer's side
-- effects. A redelivered message whose row exists is acknowledged and skipped.
CREATE TABLE consumer_processed (
    consumer     text        NOT NULL,
    msg_id       text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, msg_id)
);
CREATE INDEX consumer_processed_at ON consumer_processed (processed_at);
