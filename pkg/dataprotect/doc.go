// Package dataprotect encrypts the classified values of events per data
// subject, so that destroying a key erases a person's data from an
// append-only event store without changing a byte of it (crypto-shredding).
//
// # Keys
//
// A data key is a Tink AES-256-GCM keyset per (tenant, data subject,
// purpose, retention, period), stored in Postgres (privacy_keys) wrapped by
// the key encryption key ([KEK]) with associated data naming the tenant and
// the key id, so a wrapped key copied to another row does not open. The data
// subject is stored only as a pseudonym: HMAC-SHA256 of its id under the
// tenant's own pseudonymisation key (privacy_tenant_keys, also wrapped).
//
// A key encrypts new values for one period (a tenth of the retention, at
// least a second, at most Config.MaxPeriod) and is destroyed when the
// retention has passed after that period: a value is kept at least its
// retention and at most its retention plus one period. Retention forever
// has one key that only an erasure destroys.
//
// # Values
//
// [Keyring.Protect] replaces each value a [Policy] names with a token, a
// JSON string "prost:enc:v1:<key id>:<base64url ciphertext>" holding the
// value's JSON encrypted with the subject's key; the rest of the document is
// kept byte for byte. [Keyring.Reveal] turns tokens back into values for
// the owning tenant, or into {"erased":true} once the key is gone. Tokens
// may be copied (a rule's decision keeps the ciphertext of what it read):
// they stay bound to their key, not to their place.
//
// # Destruction
//
// [Keyring.EraseSubjectTx] (an erasure request) and [Keyring.ShredExpiredTx]
// (the retention job) delete key rows and write a tombstone per key
// (privacy_tombstones, append-only). A key row that reappears after a
// backup is restored is recognised by its tombstone and never used;
// [Keyring.ReconcileTx] deletes it again. Unwrapped keys are cached
// (Config.CacheTTL): a destruction applies at once in the process that
// made it and within the TTL in others.
package dataprotect
