DROP TABLE billing_invoice_lines;
DROP TABLE billing_invoices;
DROP TABLE billing_meter_events;
DROP TABLE billing_stripe_meters;
DROP TABLE billing_prices;
DROP TABLE billing_products;
DROP TABLE billing_customers;
DROP TABLE billing_stripe_connections;
