// Shapes of PROST's API answers the console reads (docs/api.md).

export interface CloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time?: string;
  subject?: string;
  datacontenttype?: string;
  tenantid?: string;
  data?: unknown;
  data_base64?: string;
  [ext: string]: unknown;
}

export interface EventLookup {
  event: CloudEvent;
  recorded_at: string;
  published: boolean;
}

export interface AuditEntry {
  tenant_id: string;
  seq: number;
  event_id: string;
  event_source: string;
  event_type: string;
  actor_id: string;
  action: string;
  recorded_at: string;
  prev_hash: string;
  hash: string;
}

/** One App's chain as a verification found it (pkg/domain/audit VerifyResult). */
export interface VerifyChain {
  tenant_id: string;
  entries: number;
  break?: { seq: number; reason: string };
  /** Stored events expected in the log that were checked, and those without their entry. */
  events?: number;
  missing?: number;
  first_missing?: { event_id: string; event_source: string; event_type: string; recorded_at: string; note?: string };
}

export interface VerifyResult {
  ok: boolean;
  chains: VerifyChain[];
}

export interface DecisionAction {
  pointer: string;
  type: string;
  status: string;
  url?: string;
  event?: { id: string; source: string; type: string };
  webhook_id?: string;
  job_id?: number;
  run_at?: string;
  error?: string;
  delivery?: { status: string; http_status?: number; attempts?: number; at?: string; error?: string };
}

export interface Decision {
  decision_id: string;
  rule_id: string;
  rule_version: number;
  event_id: string;
  event_source: string;
  event_type: string;
  inputs: Record<string, unknown>;
  actions: DecisionAction[];
  decided_at: string;
}

export interface Rule {
  id: string;
  name: string;
  version: number;
  status: string;
  filters?: unknown[];
  condition?: string;
  actions: unknown[];
  webhook?: { status: string; disabled_reason?: string };
  created_at: string;
  updated_at: string;
  webhook_secret?: string;
}

export interface RuleVersion {
  rule_id: string;
  version: number;
  document: { name: string; filters?: unknown[]; condition?: string; actions: unknown[] };
  created_at: string;
}

export interface DeadLetter {
  id: number;
  consumer: string;
  tenant_id?: string;
  event_id: string;
  event_source: string;
  event_type: string;
  msg_id: string;
  subject: string;
  stream: string;
  stream_seq: number;
  delivery_count: number;
  reason: string;
  last_error: string;
  first_failure_at: string;
  last_failure_at: string;
  event?: CloudEvent;
  state: string;
  replay_count: number;
  replayed_at?: string;
  replayed_by?: string;
  created_at: string;
}

export interface ReplayResult {
  dry_run: boolean;
  ids: number[];
  count: number;
}

export interface SchemaVersion {
  subject: string;
  version: number;
  id: number;
  schemaType: string;
  schema: string;
  dataschema: string;
  platform?: boolean;
  created_at: string;
}

export interface Difference {
  type: string;
  pointer: string;
  compatible: boolean;
  message: string;
  version?: number;
}

export interface CompatResult {
  is_compatible: boolean;
  messages?: string[];
  differences?: Difference[];
}

export interface App {
  app_id: string;
  name: string;
  api_key: string;
  status: string;
  created_at: string;
  updated_at: string;
  secret_rotated_at: string;
}

export interface Credentials {
  app_id: string;
  api_key: string;
  api_secret: string;
}

/** A background job as GET /admin/v1/jobs answers it. */
export interface Job {
  id: number;
  tenant_id?: string | null;
  kind: string;
  state: string;
  attempt: number;
  max_attempts: number;
  scheduled_at: string;
  created_at: string;
  attempted_at?: string | null;
  finished_at?: string | null;
  last_error?: string;
  args?: unknown;
}
