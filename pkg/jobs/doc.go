// Package jobs is PROST's Postgres-backed job engine: durable background work
// that many worker processes share through one jobs table (migration
// 005_jobs).
//
// # Enqueueing
//
// Insert writes a job with the caller's transaction (or pool), so a job is
// enqueued exactly when the work that asked for it commits. A job has a kind
// (which Handler runs it), JSON args, an optional tenant, a priority (lower
// runs first), a maximum number of attempts (default 25) and a scheduled_at
// before which it is not run (default: now).
//
// # States
//
//	available   waiting, runnable now
//	scheduled   waiting for scheduled_at (inserted for later, or snoozed)
//	retryable   waiting for scheduled_at after a failed attempt
//	running     claimed: locked_at and locked_by name the lock holder
//	completed   the handler returned nil                       (final)
//	discarded   failed with no attempts left                   (final)
//	cancelled   the handler returned Cancel(err)                (final)
//
// Final states carry finished_at. The schema enforces the lock and finish
// columns against the state with CHECK constraints. Client.Retry puts a
// discarded or cancelled job back to available.
//
// # Claiming
//
// A Client claims up to its number of free worker slots in ONE statement: a
// CTE selects waiting jobs (available, scheduled or retryable) of the kinds
// registered on that client whose scheduled_at has passed, ordered by
// priority, scheduled_at, id, with FOR UPDATE SKIP LOCKED; the UPDATE sets
// state running, locked_at = now(), locked_by = the client's WorkerID,
// attempt = attempt + 1 and attempted_at = now(). SKIP LOCKED makes
// concurrent claimers (in this process or any other) pass over each other's
// rows, and a row that another claimer already flipped to running fails the
// re-checked WHERE clause, so a job is held by at most one worker at a time.
// There is no separate scheduler moving scheduled jobs to available: the claim
// itself treats every waiting state alike once scheduled_at has passed.
//
// Claims happen when worker slots free up after a full batch, every
// PollInterval, and at once after Client.Wake (Client.Insert wakes the client
// when the kind is registered on it). Polling is the only cross-process
// trigger; LISTEN/NOTIFY would only ever be a hint on top of it.
//
// # Completion, retries and fencing
//
// Successful runs are completed in batches: a single completer goroutine per
// client marks every run that finished while the previous batch was being
// written with one UPDATE over an id array (group commit: no added latency
// when idle, large batches under load).
//
// A handler error (or panic, which is recovered, or the JobTimeout expiring)
// fails the attempt: while attempt < max_attempts the job becomes retryable
// at now() + Config.Backoff(attempt) — by default attempt^4 seconds with ±10%
// jitter, so 25 attempts span about three weeks — and otherwise it is
// discarded and Config.OnDiscard is called. Each failure is appended to the
// job's errors array ({attempt, at, error, worker}) and kept in last_error.
// Cancel(err) finishes the job as cancelled without retrying; Snooze(d) puts
// it back for d without counting the attempt.
//
// Every write that ends a run is fenced on (id, attempt, locked_by, state =
// running): a worker whose lock was taken from it (see Rescue) cannot
// complete or fail the job that someone else now runs; its write changes
// nothing and is logged. attempt is a sound fence because a rescued job keeps
// its attempt and the next claim raises it, and a snooze only gives back the
// attempt of the run that snoozed.
//
// Delivery is at least once: a job whose handler succeeded is re-run if the
// process dies before the completion is written. Handlers that must not
// repeat their effects write them together with CompleteTx in one
// transaction.
//
// # Uniqueness
//
// InsertParams.UniqueKey makes a job unique per (tenant, kind, unique_key)
// among unfinished jobs (available, scheduled, running, retryable). The rule
// is a partial unique index (NULLS NOT DISTINCT, so a NULL tenant is one
// scope), not advisory locks: it holds for every writer and every
// transaction. Inserting a duplicate returns the existing job with
// inserted = false; once that job finishes the key is free again.
//
// # Rescue
//
// A worker that dies (crash, SIGKILL, lost network) leaves its jobs running.
// Every Client runs a rescuer every RescueInterval: one idempotent statement
// (FOR UPDATE SKIP LOCKED, so rescuers in many processes do not contend)
// moves running jobs of its kinds whose locked_at is older than StaleAfter
// back to retryable, runnable at once — or to discarded, calling OnDiscard,
// when no attempts are left — and records the stale lock as the attempt's
// error. StaleAfter must exceed JobTimeout, so a live worker's run has always
// ended (its context expired) before its lock can be called stale; every
// client that registers a kind must use the same JobTimeout and StaleAfter
// for it. Rescue is limited to the client's registered kinds for that reason.
//
// # Design notes
//
// Compared with River (the model for this package): one jobs table with no
// queues (kinds select the work), text states checked by a constraint rather
// than an enum, a uniqueness rule that is always "unfinished states" rather
// than a per-job bitmask, rescue straight back to retryable with no extra
// backoff (StaleAfter already delayed it), and no leader election: every
// client rescues, which is safe because the rescue statement is idempotent
// and skips rows another rescuer holds.
package jobs
