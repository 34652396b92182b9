// The factory's shapes (docs/factory.md) and the wizard's model: the answers a
// person gives, turned into the Pack0 the console submits. Pure functions, so
// that they are tested without a browser (factory.test.ts).

export type RunStatus = "queued" | "running" | "awaiting_approval" | "succeeded" | "failed" | "rejected" | "cancelled";
export type StageName = "pack0" | "codegen" | "testgen" | "tests" | "gates" | "approval" | "manifest" | "deploy";
export type RunState = "NORMAL" | "PRESSAO";

export const stages: { name: StageName; label: string; what: string }[] = [
  { name: "pack0", label: "Requirements", what: "The Pack0 against its schema and rules" },
  { name: "codegen", label: "Code", what: "The module's code is generated" },
  { name: "testgen", label: "Tests written", what: "Its tests are generated" },
  { name: "tests", label: "Tests", what: "The tests run, healed up to 5 times" },
  { name: "gates", label: "Gates", what: "Lint, secrets, security, vulnerabilities, contracts, performance" },
  { name: "approval", label: "Approval", what: "A person approves, or it is automatic" },
  { name: "manifest", label: "Manifest", what: "The build's provenance is signed" },
  { name: "deploy", label: "Deploy", what: "The module starts and answers its health check" },
];

export interface StageRecord {
  stage: StageName;
  status: "running" | "succeeded" | "failed" | "skipped";
  executions: number;
  reused?: boolean;
  /** what the stage recorded; the approval stage: {decision, actor, automatic}. */
  detail?: Record<string, unknown>;
  error?: string;
  started_at: string;
  finished_at?: string;
}

export interface GateRecord {
  gate: string;
  status: "running" | "passed" | "failed" | "skipped";
  blocking: boolean;
  tool?: string;
  executions: number;
  summary?: string;
  findings: number;
  started_at: string;
  finished_at?: string;
}

export interface Deployment {
  id: number;
  module: string;
  target: "local" | "compose";
  run_id: string;
  status: "active" | "superseded" | "failed" | "rolled_back";
  binary_sha256?: string;
  address?: string;
  migrations: number;
  detail?: string;
  created_at: string;
  updated_at: string;
}

export interface Run {
  id: string;
  module: string;
  state: RunState;
  status: RunStatus;
  stage?: StageName;
  auto_deploy: boolean;
  deploy_target: "local" | "compose";
  dry_run: boolean;
  mvp: boolean;
  requested_by?: string;
  error?: string;
  created_at: string;
  updated_at: string;
  finished_at?: string;
  pack0?: Pack0;
  stages?: StageRecord[];
  gates?: GateRecord[];
  deployment?: Deployment;
}

export interface Finding {
  gate: string;
  rule: string;
  file?: string;
  line?: number;
  severity?: string;
  message: string;
  blocking: boolean;
}

export interface LogLine {
  id: number;
  stage?: string;
  line: string;
  at: string;
}

export interface Artifact {
  name: string;
  sha256: string;
  media_type: string;
  stage: string;
  size: number;
  created_at: string;
}

export interface VerifyReport {
  run_id: string;
  ok: boolean;
  keyid?: string;
  manifest_sha256?: string;
  checks: { name: string; ok: boolean; detail?: string }[];
  failures?: string[];
}

export interface Pack0Problem {
  pointer: string;
  rule: string;
  message: string;
}

export interface CheckResult {
  ok: boolean;
  state: RunState;
  problems: Pack0Problem[];
  routes: string[];
  events: string[];
}

/** final reports whether a run with this status has ended. */
export function final(s: RunStatus): boolean {
  return s === "succeeded" || s === "failed" || s === "rejected" || s === "cancelled";
}

// ---- The Pack0 (schemas/factory.pack0/v1.json) ----

export interface Pack0Field {
  name: string;
  type: FieldType;
  required?: boolean;
  max_length?: number;
  minimum?: number;
  maximum?: number;
  values?: string[];
  classification?: Classification;
  purpose?: string;
  retention?: string;
  description?: string;
}

export interface Pack0Entity {
  name: string;
  plural?: string;
  description?: string;
  key: string;
  fields: Pack0Field[];
  events?: EventName[];
}

export interface Pack0 {
  pack0: "1";
  module: string;
  description: string;
  owner?: string;
  entities: Pack0Entity[];
  roles?: { name: string; description?: string; permissions: string[] }[];
  integrations?: { name: string; kind: IntegrationKind; direction: Direction; description?: string }[];
  budgets?: { route: string; p95_ms: number }[];
  retention?: { entity: string; period: string; action?: "delete" | "anonymize"; basis?: string }[];
  threats?: { id: string; title: string; category: string; mitigation: string; entities?: string[] }[];
}

export const fieldTypes = ["string", "text", "integer", "number", "boolean", "uuid", "email", "time", "enum"] as const;
export type FieldType = (typeof fieldTypes)[number];
export const fieldTypeLabels: Record<FieldType, string> = {
  string: "Short text",
  text: "Long text",
  integer: "Whole number",
  number: "Decimal number",
  boolean: "Yes / no",
  uuid: "Reference (UUID)",
  email: "E-mail address",
  time: "Date and time",
  enum: "One of a list",
};
export type Classification = "none" | "personal" | "sensitive";
export type EventName = "created" | "updated" | "deleted";
export const eventNames: EventName[] = ["created", "updated", "deleted"];
export const operations = ["create", "read", "update", "delete"] as const;
export type Operation = (typeof operations)[number];
export const integrationKinds = ["http", "webhook", "event", "database", "file"] as const;
export type IntegrationKind = (typeof integrationKinds)[number];
export const directions = ["inbound", "outbound", "both"] as const;
export type Direction = (typeof directions)[number];

// ---- The wizard's answers ----

export interface FieldDraft {
  name: string;
  type: FieldType;
  required: boolean;
  maxLength: string;
  minimum: string;
  maximum: string;
  values: string;
  classification: Classification;
  purpose: string;
  retention: string;
}

export interface EntityDraft {
  name: string;
  plural: string;
  description: string;
  fields: FieldDraft[];
  events: EventName[];
}

export interface RoleDraft {
  name: string;
  description: string;
  /** "<entity>:<operation>" */
  permissions: string[];
}

export interface IntegrationDraft {
  name: string;
  kind: IntegrationKind;
  direction: Direction;
  description: string;
}

export interface RetentionDraft {
  period: string;
  action: "delete" | "anonymize";
  basis: string;
}

export interface Answers {
  module: string;
  description: string;
  owner: string;
  entities: EntityDraft[];
  useRoles: boolean;
  roles: RoleDraft[];
  multiTenant: boolean;
  integrations: IntegrationDraft[];
  state: RunState;
  autoDeploy: boolean;
  target: "local" | "compose";
  /** p95 budget in ms per route ("POST /v1/items"); a route without one has no budget. */
  budgets: Record<string, string>;
  /** retention row per entity name. */
  retention: Record<string, RetentionDraft>;
}

export function newField(): FieldDraft {
  return { name: "", type: "string", required: false, maxLength: "", minimum: "", maximum: "", values: "", classification: "none", purpose: "", retention: "" };
}

export function newEntity(): EntityDraft {
  return { name: "", plural: "", description: "", fields: [newField()], events: [...eventNames] };
}

export function emptyAnswers(): Answers {
  return {
    module: "", description: "", owner: "", entities: [newEntity()], useRoles: false, roles: [], multiTenant: true, integrations: [],
    state: "NORMAL", autoDeploy: false, target: "local", budgets: {}, retention: {},
  };
}

/** exampleAnswers is the inventory module of examples/pack0/inventory.yaml, as answers. */
export function exampleAnswers(): Answers {
  const f = (name: string, type: FieldType, more: Partial<FieldDraft> = {}): FieldDraft => ({ ...newField(), name, type, ...more });
  return {
    module: "inventory",
    description: "Stock of items and the suppliers that restock them, per tenant.",
    owner: "operations",
    entities: [
      {
        name: "item", plural: "", description: "Something kept in stock.", events: ["created", "updated", "deleted"],
        fields: [
          f("sku", "string", { required: true, maxLength: "32" }),
          f("name", "string", { required: true, maxLength: "200" }),
          f("quantity", "integer", { required: true, minimum: "0", maximum: "1000000" }),
          f("unit_price", "number", { minimum: "0" }),
          f("status", "enum", { values: "active, discontinued" }),
        ],
      },
      {
        name: "supplier", plural: "", description: "Who restocks items.", events: ["created", "deleted"],
        fields: [
          f("name", "string", { required: true, maxLength: "200" }),
          f("contact_email", "email", { required: true, classification: "personal", purpose: "Contact the supplier's representative about restocking orders.", retention: "2y" }),
          f("active", "boolean"),
        ],
      },
    ],
    useRoles: true,
    roles: [
      { name: "manager", description: "", permissions: ["item:create", "item:read", "item:update", "item:delete", "supplier:create", "supplier:read", "supplier:update", "supplier:delete"] },
      { name: "clerk", description: "", permissions: ["item:read", "item:update", "supplier:read"] },
    ],
    multiTenant: true,
    integrations: [{ name: "erp", kind: "event", direction: "outbound", description: "The ERP subscribes to inventory.item.* through PROST." }],
    state: "NORMAL",
    autoDeploy: false,
    target: "local",
    budgets: { "POST /v1/items": "500", "GET /v1/items": "500", "GET /v1/items/{id}": "500" },
    retention: {
      item: { period: "5y", action: "delete", basis: "Stock records kept for tax audits." },
      supplier: { period: "2y", action: "anonymize", basis: "Legitimate interest (LGPD art. 7, IX) while the supplier is active." },
    },
  };
}

export function pluralOf(e: { name: string; plural: string }): string {
  return e.plural.trim() || `${e.name.trim()}s`;
}

/** routesOf lists the routes the generated module serves per entity, as budgets name them. */
export function routesOf(entities: { name: string; plural: string }[]): string[] {
  return entities.flatMap((e) => {
    const base = `/v1/${pluralOf(e)}`;
    return [`POST ${base}`, `GET ${base}`, `GET ${base}/{id}`, `PUT ${base}/{id}`, `DELETE ${base}/{id}`];
  });
}

/** defaultBudgets: create, list and read of each entity within 500 ms at the 95th percentile. */
export function defaultBudgets(entities: { name: string; plural: string }[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entities) {
    if (!e.name.trim()) continue;
    const base = `/v1/${pluralOf(e)}`;
    out[`POST ${base}`] = "500";
    out[`GET ${base}`] = "500";
    out[`GET ${base}/{id}`] = "500";
  }
  return out;
}

export function personal(f: { classification: Classification }): boolean {
  return f.classification === "personal" || f.classification === "sensitive";
}

export function hasPersonal(e: EntityDraft): boolean {
  return e.fields.some(personal);
}

/** The key every entity gets: a uuid the module assigns. */
export const keyField = "id";

/** eventTypesOf lists <module>.<entity>.<event> for every event the module emits. */
export function eventTypesOf(a: Answers): string[] {
  return a.entities.flatMap((e) => e.events.map((ev) => `${a.module}.${e.name}.${ev}`));
}

function num(s: string): number | undefined {
  const t = s.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function list(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
}

/** threatsOf derives the threats the module must resist from the answers. */
export function threatsOf(a: Answers): NonNullable<Pack0["threats"]> {
  const names = a.entities.map((e) => e.name);
  const out: NonNullable<Pack0["threats"]> = [];
  if (a.multiTenant) {
    out.push({
      id: "T1", title: "One tenant reads another tenant's records.", category: "information-disclosure",
      mitigation: "Every query filters on the tenant in X-Tenant-ID; another tenant's ids answer 404.", entities: names,
    });
  }
  out.push({
    id: "T2", title: "Oversized or malformed input exhausts the service.", category: "denial-of-service",
    mitigation: "Bodies are limited to 64 KiB, every field is validated, the server has read and write timeouts.",
  });
  const withPersonal = a.entities.filter(hasPersonal).map((e) => e.name);
  if (withPersonal.length) {
    out.push({
      id: "T3", title: "Personal data leaks through the module's events.", category: "information-disclosure",
      mitigation: "Events that carry personal fields have strong contracts classifying them, with their purpose and retention.", entities: withPersonal,
    });
  }
  if (a.useRoles && a.roles.length) {
    out.push({
      id: "T4", title: "A caller does what its role does not allow.", category: "elevation-of-privilege",
      mitigation: "Every request names its role in X-Role; the module checks the role's permissions before it acts.", entities: names,
    });
  }
  return out;
}

/** Where a part of the Pack0 is answered in the wizard: its step and the id of its control. */
export interface Place {
  step: StepName;
  id: string;
}

export type StepName = "describe" | "entities" | "access" | "tenancy" | "quality" | "retention" | "summary";

export interface Built {
  pack0: Pack0;
  /** JSON pointer prefix -> where the wizard asks for it. */
  places: Record<string, Place>;
}

/** buildPack0 turns the answers into the Pack0 the console submits, and
 * remembers where each part was asked so that a problem the API names by
 * pointer can be shown at its control. */
export function buildPack0(a: Answers): Built {
  const places: Record<string, Place> = {
    "/module": { step: "describe", id: "wz-module" },
    "/description": { step: "describe", id: "wz-description" },
    "/owner": { step: "describe", id: "wz-owner" },
    "/entities": { step: "entities", id: "wz-add-entity" },
    "/roles": { step: "access", id: "wz-use-roles" },
    "/integrations": { step: "tenancy", id: "wz-add-integration" },
    "/budgets": { step: "quality", id: "wz-budgets" },
    "/retention": { step: "retention", id: "wz-retention" },
    "/threats": { step: "summary", id: "wz-threats" },
  };
  const p: Pack0 = { pack0: "1", module: a.module.trim(), description: a.description.trim(), entities: [] };
  if (a.owner.trim()) p.owner = a.owner.trim();
  a.entities.forEach((e, i) => {
    const at = `/entities/${i}`;
    places[at] = { step: "entities", id: `wz-e${i}-name` };
    places[`${at}/name`] = { step: "entities", id: `wz-e${i}-name` };
    places[`${at}/plural`] = { step: "entities", id: `wz-e${i}-plural` };
    places[`${at}/description`] = { step: "entities", id: `wz-e${i}-description` };
    places[`${at}/events`] = { step: "entities", id: `wz-e${i}-events` };
    places[`${at}/fields`] = { step: "entities", id: `wz-e${i}-add-field` };
    places[`${at}/key`] = { step: "entities", id: `wz-e${i}-name` };
    const ent: Pack0Entity = { name: e.name.trim(), key: keyField, fields: [{ name: keyField, type: "uuid", required: true }] };
    if (e.plural.trim()) ent.plural = e.plural.trim();
    if (e.description.trim()) ent.description = e.description.trim();
    places[`${at}/fields/0`] = { step: "entities", id: `wz-e${i}-name` };
    e.fields.forEach((f, j) => {
      const fat = `${at}/fields/${j + 1}`;
      const id = `wz-e${i}-f${j}`;
      places[fat] = { step: "entities", id: `${id}-name` };
      for (const m of ["name", "type", "required", "max_length", "minimum", "maximum", "values", "classification", "purpose", "retention"]) {
        places[`${fat}/${m}`] = { step: "entities", id: `${id}-${m.replace("_", "")}` };
      }
      const pf: Pack0Field = { name: f.name.trim(), type: f.type };
      if (f.required) pf.required = true;
      if ((f.type === "string" || f.type === "text" || f.type === "email") && num(f.maxLength) !== undefined) pf.max_length = num(f.maxLength);
      if (f.type === "integer" || f.type === "number") {
        if (num(f.minimum) !== undefined) pf.minimum = num(f.minimum);
        if (num(f.maximum) !== undefined) pf.maximum = num(f.maximum);
      }
      if (f.type === "enum") pf.values = list(f.values);
      if (f.classification !== "none") {
        pf.classification = f.classification;
        if (f.purpose.trim()) pf.purpose = f.purpose.trim();
        if (f.retention.trim()) pf.retention = f.retention.trim();
      }
      ent.fields.push(pf);
    });
    if (e.events.length !== eventNames.length) ent.events = eventNames.filter((x) => e.events.includes(x));
    p.entities.push(ent);
  });
  if (a.useRoles && a.roles.length) {
    p.roles = a.roles.map((r, i) => {
      places[`/roles/${i}`] = { step: "access", id: `wz-r${i}-name` };
      places[`/roles/${i}/name`] = { step: "access", id: `wz-r${i}-name` };
      places[`/roles/${i}/permissions`] = { step: "access", id: `wz-r${i}-name` };
      const entities = new Set(a.entities.map((e) => e.name));
      const perms = r.permissions.filter((x) => entities.has(x.split(":")[0]));
      // Every operation on an entity is written <entity>:*.
      const out: string[] = [];
      for (const e of a.entities) {
        const ops = operations.filter((o) => perms.includes(`${e.name}:${o}`));
        if (ops.length === operations.length) out.push(`${e.name}:*`);
        else out.push(...ops.map((o) => `${e.name}:${o}`));
      }
      const role: { name: string; description?: string; permissions: string[] } = { name: r.name.trim(), permissions: out };
      if (r.description.trim()) role.description = r.description.trim();
      return role;
    });
  }
  if (a.integrations.length) {
    p.integrations = a.integrations.map((x, i) => {
      places[`/integrations/${i}`] = { step: "tenancy", id: `wz-i${i}-name` };
      places[`/integrations/${i}/name`] = { step: "tenancy", id: `wz-i${i}-name` };
      const it: NonNullable<Pack0["integrations"]>[number] = { name: x.name.trim(), kind: x.kind, direction: x.direction };
      if (x.description.trim()) it.description = x.description.trim();
      return it;
    });
  }
  const routes = routesOf(a.entities);
  const budgets = routes.filter((r) => num(a.budgets[r] ?? "") !== undefined).map((r) => ({ route: r, p95_ms: num(a.budgets[r])! }));
  if (budgets.length) {
    p.budgets = budgets;
    budgets.forEach((b, i) => {
      places[`/budgets/${i}`] = { step: "quality", id: budgetId(b.route) };
    });
  }
  const retention = a.entities
    .filter((e) => (a.retention[e.name]?.period ?? "").trim() !== "")
    .map((e) => {
      const r = a.retention[e.name];
      const row: NonNullable<Pack0["retention"]>[number] = { entity: e.name, period: r.period.trim(), action: r.action };
      if (r.basis.trim()) row.basis = r.basis.trim();
      return row;
    });
  if (retention.length) {
    p.retention = retention;
    retention.forEach((r, i) => {
      places[`/retention/${i}`] = { step: "retention", id: `wz-ret-${r.entity}-period` };
      places[`/retention/${i}/period`] = { step: "retention", id: `wz-ret-${r.entity}-period` };
    });
  }
  const threats = threatsOf(a);
  if (threats.length) p.threats = threats;
  return { pack0: p, places };
}

/** budgetId is the id of the control of a route's budget. */
export function budgetId(route: string): string {
  return "wz-budget-" + route.replace(/[^a-zA-Z0-9]+/g, "-").replace(/-+$/, "");
}

/** placeOf finds where the wizard asks for what a pointer names: the longest known prefix. */
export function placeOf(places: Record<string, Place>, pointer: string): Place {
  let p = pointer;
  for (;;) {
    if (places[p]) return places[p];
    const cut = p.lastIndexOf("/");
    if (cut <= 0) return places[p] ?? { step: "summary", id: "wz-pack0" };
    p = p.slice(0, cut);
  }
}

// ---- What each step checks before the next one ----

const nameRe = /^[a-z][a-z0-9_]{0,39}$/;
const moduleRe = /^[a-z][a-z0-9-]{1,39}$/;
const periodRe = /^([1-9][0-9]*(d|w|m|y)|forever)$/;
const reserved = ["tenant_id", "created_at", "updated_at", keyField];

/** Problems found in a step: control id -> what is wrong. */
export type StepErrors = Record<string, string>;

const nameHint = "lower-case letters, digits and _, starting with a letter (e.g. unit_price)";

/** validateStep checks the answers a step asks for. */
export function validateStep(step: StepName, a: Answers): StepErrors {
  const errs: StepErrors = {};
  switch (step) {
    case "describe":
      if (!a.module.trim()) errs["wz-module"] = "Name the module.";
      else if (!moduleRe.test(a.module.trim())) errs["wz-module"] = "2 to 40 lower-case letters, digits and '-', starting with a letter (e.g. inventory).";
      if (!a.description.trim()) errs["wz-description"] = "Say in a sentence what the module is for.";
      break;
    case "entities": {
      if (a.entities.length === 0) errs["wz-add-entity"] = "A module keeps at least one kind of record.";
      const seen = new Set<string>();
      a.entities.forEach((e, i) => {
        const n = e.name.trim();
        if (!n) errs[`wz-e${i}-name`] = "Name what is kept, in the singular (e.g. item).";
        else if (!nameRe.test(n)) errs[`wz-e${i}-name`] = `Use ${nameHint}.`;
        else if (seen.has(n)) errs[`wz-e${i}-name`] = `"${n}" is named twice.`;
        seen.add(n);
        if (e.plural.trim() && !nameRe.test(e.plural.trim())) errs[`wz-e${i}-plural`] = `Use ${nameHint}.`;
        if (e.fields.length === 0) errs[`wz-e${i}-add-field`] = "Add at least one field.";
        const fields = new Set<string>();
        e.fields.forEach((f, j) => {
          const id = `wz-e${i}-f${j}`;
          const fn = f.name.trim();
          if (!fn) errs[`${id}-name`] = "Name the field.";
          else if (!nameRe.test(fn)) errs[`${id}-name`] = `Use ${nameHint}.`;
          else if (reserved.includes(fn)) errs[`${id}-name`] = `"${fn}" is kept by the module itself.`;
          else if (fields.has(fn)) errs[`${id}-name`] = `"${fn}" is named twice.`;
          fields.add(fn);
          if (f.type === "enum" && list(f.values).length === 0) errs[`${id}-values`] = "List the values, separated by commas.";
          if (f.type === "enum" && list(f.values).some((v) => !/^[a-z0-9_-]{1,40}$/.test(v))) errs[`${id}-values`] = "Values are lower-case letters, digits, _ and -.";
          for (const [k, v] of [["maxlength", f.maxLength], ["minimum", f.minimum], ["maximum", f.maximum]] as const) {
            if (v.trim() && num(v) === undefined) errs[`${id}-${k}`] = "A number.";
          }
          const mn = num(f.minimum);
          const mx = num(f.maximum);
          if (mn !== undefined && mx !== undefined && mn > mx) errs[`${id}-maximum`] = "At least the minimum.";
          if (personal(f)) {
            if (!f.purpose.trim()) errs[`${id}-purpose`] = "Personal data needs a purpose: why the module keeps it.";
            if (!f.retention.trim()) errs[`${id}-retention`] = "How long it is kept: e.g. 90d, 2y or forever.";
            else if (!periodRe.test(f.retention.trim())) errs[`${id}-retention`] = "<n>d, <n>w, <n>m, <n>y or forever (e.g. 2y).";
          }
        });
      });
      break;
    }
    case "access":
      if (a.useRoles) {
        if (a.roles.length === 0) errs["wz-add-role"] = "Add a role, or let everyone do everything.";
        const seen = new Set<string>();
        a.roles.forEach((r, i) => {
          const n = r.name.trim();
          if (!n) errs[`wz-r${i}-name`] = "Name the role (e.g. manager).";
          else if (!nameRe.test(n)) errs[`wz-r${i}-name`] = `Use ${nameHint}.`;
          else if (seen.has(n)) errs[`wz-r${i}-name`] = `"${n}" is named twice.`;
          seen.add(n);
        });
      }
      break;
    case "tenancy": {
      const seen = new Set<string>();
      a.integrations.forEach((x, i) => {
        const n = x.name.trim();
        if (!n) errs[`wz-i${i}-name`] = "Name the system (e.g. erp).";
        else if (!nameRe.test(n)) errs[`wz-i${i}-name`] = `Use ${nameHint}.`;
        else if (seen.has(n)) errs[`wz-i${i}-name`] = `"${n}" is named twice.`;
        seen.add(n);
      });
      break;
    }
    case "quality": {
      for (const r of routesOf(a.entities)) {
        const v = (a.budgets[r] ?? "").trim();
        if (v && (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 60000)) errs[budgetId(r)] = "Milliseconds, 1 to 60000.";
      }
      if (a.state === "NORMAL" && !routesOf(a.entities).some((r) => (a.budgets[r] ?? "").trim())) {
        errs["wz-budgets"] = "Production needs at least one budget: the performance gate measures against it.";
      }
      break;
    }
    case "retention":
      for (const e of a.entities) {
        const r = a.retention[e.name];
        const id = `wz-ret-${e.name}-period`;
        const period = (r?.period ?? "").trim();
        if (period && !periodRe.test(period)) errs[id] = "<n>d, <n>w, <n>m, <n>y or forever (e.g. 5y).";
        else if (!period && a.state === "NORMAL" && hasPersonal(e)) errs[id] = `${e.name} holds personal data: production needs how long it is kept.`;
      }
      break;
    case "summary":
      break;
  }
  return errs;
}

// ---- Reading a file out of a stored source tree (tree/source.tar.gz) ----

/** untar lists the regular files of a (decompressed) tar archive, applying PAX path records. */
export function untar(buf: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const text = (b: Uint8Array) => new TextDecoder().decode(b).replace(/\0.*$/s, "");
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(text(h.subarray(124, 136)).trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = text(h.subarray(345, 500));
    let name = text(h.subarray(0, 100));
    if (prefix) name = `${prefix}/${name}`;
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === "x") {
      // PAX records: "<len> key=value\n"
      for (const rec of new TextDecoder().decode(body).split("\n")) {
        const m = /^\d+ path=(.*)$/.exec(rec);
        if (m) paxPath = m[1];
      }
      continue;
    }
    if (type === "g") continue;
    if (paxPath !== undefined) {
      name = paxPath;
      paxPath = undefined;
    }
    if (type === "0" || type === "\0") out.set(name, body);
  }
  return out;
}

/** gunzip decompresses with the browser's DecompressionStream. */
export async function gunzip(b: ArrayBuffer): Promise<Uint8Array> {
  const stream = new Blob([b]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
