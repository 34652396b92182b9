-- The schema registry (pkg/registry) and event contracts (pkg/contracts).
--
-- A subject is an event type. Each tenant's subjects have numbered versions
-- of a JSON Schema; registry_subjects holds the last version number ever
-- given, so a number is never reused, not even after a version is deleted
-- for good (an event naming it in dataschema can never silently point at a
-- different schema).
CREATE TABLE registry_subjects (
    tenant_id    uuid    NOT NULL,
    subject      text    NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
    last_version integer NOT NULL DEFAULT 0 CHECK (last_version >= 0),
    PRIMARY KEY (tenant_id, subject)
);

-- Every version of every subject: the schema text as registered, the
-- SHA-256 of its canonical form (a schema registered again is answered with
-- its existing version), and deleted_at once soft-deleted (a soft-deleted
-- version is no longer listed, checked against or used to validate).
CREATE TABLE registry_schemas (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    subject     text        NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    schema      text        NOT NULL,
    fingerprint bytea       NOT NULL CHECK (length(fingerprint) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz,
    UNIQUE (tenant_id, subject, version),
    FOREIGN KEY (tenant_id, subject) REFERENCES registry_subjects (tenant_id, subject)
);
CREATE INDEX registry_schemas_fingerprint ON registry_schemas (tenant_id, subject, fingerprint);
CREATE INDEX registry_schemas_live ON registry_schemas (tenant_id, subject, version) WHERE deleted_at IS NULL;

-- Compatibility settings: subject '' is the tenant's global row, any other
-- subject overrides it. NULL means "inherit" (from the global row, then from
-- the defaults BACKWARD / STRICT / PROST_UNREGISTERED_TYPES).
-- unregistered_types is tenant-wide only: what ingest does with an event
-- whose type has no schema.
CREATE TABLE registry_config (
    tenant_id          uuid        NOT NULL,
    subject            text        NOT NULL,
    compatibility      text        CHECK (compatibility IN ('BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                       'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE')),
    policy             text        CHECK (policy IN ('STRICT', 'LENIENT')),
    unregistered_types text        CHECK (unregistered_types IN ('reject', 'accept')),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject),
    CHECK (subject = '' OR unregistered_types IS NULL)
);

-- A tenant's event contracts, one per event type, as the document the
-- client sent (normalised). Contracts pass lint (gates A, B, C) before they
-- are stored.
CREATE TABLE contracts (
    tenant_id  uuid        NOT NULL,
    type       text        NOT NULL CHECK (char_length(type) BETWEEN 1 AND 255),
    level      text        NOT NULL CHECK (level IN ('light', 'standard', 'strong')),
    document   jsonb       NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, type)
);
