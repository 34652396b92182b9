DROP TABLE privacy_tombstones;
DROP TABLE privacy_keys;
DROP TABLE privacy_tenant_keys;
