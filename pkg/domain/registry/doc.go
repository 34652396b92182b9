// Package registry is PROST's schema registry: each tenant's subjects (event
// types) with numbered versions of a JSON Schema (draft 2020-12 or
// draft-07), checked for compatibility before they are stored, plus the
// platform's own schemas, read-only for every tenant.
//
// # Pieces
//
//   - [Registry] stores versions in Postgres (registry_subjects,
//     registry_schemas, registry_config; migration 009), checks new versions
//     with pkg/schemacompat under the subject's mode and policy (defaults
//     BACKWARD and STRICT, set per tenant and per subject), and compiles
//     schemas with santhosh-tekuri/jsonschema v6 (decision 0008).
//   - [Handlers] serve the tenant API under /v1/registry, shaped like
//     Confluent Schema Registry's REST API.
//   - [Ingest] checks the events of an ingest request: data against the
//     version its dataschema names or the latest version of its type, the
//     tenant's policy for unregistered types, and the rules of the tenant's
//     contract for the type (pkg/domain/contracts): the partition key path and the
//     card-number check of payment contracts.
//
// # Naming a version
//
// A version is named by the URN urn:prost:schema:<subject>:<version> or by
// its URL in the API, <base>/v1/registry/subjects/<subject>/versions/<version>
// ([ParseRef]). Both work in an event's dataschema and in a schema's $ref.
//
// # What is loaded
//
// Compiling a schema resolves $ref and $schema through a loader that answers
// only with schemas registered in this registry (the tenant's own, then the
// platform's) and fails on anything else, so a tenant's schema never makes
// PROST read a file or reach the network. Compiled schemas are kept in a
// bounded LRU cache per (tenant, subject, version); what a process knows of
// a subject's versions and a tenant's settings is trusted for
// [Config].StateTTL, and changes made through the same process apply at once.
package registry
