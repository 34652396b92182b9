DROP INDEX IF EXISTS outbox_refused;
DROP TABLE IF EXISTS bus_rebuilds;
DROP TABLE IF EXISTS bus_streams;
