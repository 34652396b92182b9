DROP TABLE event_data_keys;
