DROP TABLE webhook_deliveries;
DROP TABLE decisions;
DROP TABLE rule_versions;
DROP TABLE rules;
