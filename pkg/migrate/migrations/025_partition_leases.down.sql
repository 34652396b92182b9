DROP TABLE partition_leases;
DROP TABLE lease_members;
