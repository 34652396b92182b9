DROP INDEX IF EXISTS audit_log_event;
DROP TABLE IF EXISTS console_sessions;
