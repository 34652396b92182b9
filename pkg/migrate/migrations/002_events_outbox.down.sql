DROP TABLE outbox;
DROP TABLE events;
DROP FUNCTION prost_refuse_change();
