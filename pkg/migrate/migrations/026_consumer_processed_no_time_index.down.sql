CREATE INDEX consumer_processed_at ON consumer_processed (processed_at);
