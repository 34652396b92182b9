DROP TABLE billing_usage;
DROP TABLE billing_meters;
