-- Which data keys (pkg/dataprotect) encrypted values of each event, written
-- with the event in the same statement: a data subject's events are found
-- through their keys (export) without scanning the tenant's events. The key
-- ids are random and appear in the events themselves; no subject is named.
CREATE TABLE event_data_keys (
    tenant_id uuid   NOT NULL,
    key_id    uuid   NOT NULL,
    event_seq bigint NOT NULL,
    PRIMARY KEY (tenant_id, key_id, event_seq)
);
