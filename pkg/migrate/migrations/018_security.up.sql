-- Security and fairness (issue 10).
--
-- An outbox row the bus refuses for good (too large for the stream, an
-- invalid subject) is dead-lettered by the relay and marked refused, so the
-- rows after it are published. A refused row is no longer pending.
ALTER TABLE outbox ADD COLUMN refused_at timestamptz;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND refused_at IS NULL;

-- A rule whose evaluation overran the time budget of an event is recorded in
-- a decision of status 'overrun'; after repeated overruns in a row the rule
-- is disabled with a reason.
ALTER TABLE rules ADD COLUMN overruns integer NOT NULL DEFAULT 0,
                  ADD COLUMN disabled_reason text;
ALTER TABLE decisions ADD COLUMN status text NOT NULL DEFAULT 'fired' CHECK (status IN ('fired', 'overrun'));
