DROP TABLE subscription_attempts;
DROP TABLE subscription_deliveries;
DROP TABLE subscription_credentials;
DROP TABLE subscriptions;
DROP TABLE nats_account_jwts;
DROP TABLE nats_revocations;
