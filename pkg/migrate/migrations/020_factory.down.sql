DROP TABLE IF EXISTS factory_deployments;
DROP TABLE IF EXISTS factory_keys;
DROP TABLE IF EXISTS factory_approvals;
DROP TABLE IF EXISTS factory_artifacts;
DROP TABLE IF EXISTS factory_blobs;
DROP TABLE IF EXISTS factory_logs;
DROP TABLE IF EXISTS factory_attempts;
DROP TABLE IF EXISTS factory_findings;
DROP TABLE IF EXISTS factory_gates;
DROP TABLE IF EXISTS factory_stages;
DROP TABLE IF EXISTS factory_runs;
-- The saga's own state (DBOS) lives in its schema; a rollback of the factory
-- removes it too.
DROP SCHEMA IF EXISTS factory_dbos CASCADE;
