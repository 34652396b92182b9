DROP TABLE consumer_processed;
