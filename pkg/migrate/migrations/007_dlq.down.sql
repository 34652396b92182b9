DROP TABLE dlq_actions;
DROP TABLE dlq_entries;
DROP TABLE consumer_failures;
