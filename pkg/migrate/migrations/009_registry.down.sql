DROP TABLE contracts;
DROP TABLE registry_config;
DROP TABLE registry_schemas;
DROP TABLE registry_subjects;
