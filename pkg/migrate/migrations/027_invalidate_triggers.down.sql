DROP TRIGGER contracts_invalidate ON contracts;
DROP TRIGGER registry_config_invalidate ON registry_config;
DROP TRIGGER registry_schemas_invalidate ON registry_schemas;
DROP TRIGGER registry_subjects_invalidate ON registry_subjects;
DROP TRIGGER apps_invalidate ON apps;
DROP FUNCTION prost_invalidate();
DROP FUNCTION prost_invalidate_row(text, jsonb);
