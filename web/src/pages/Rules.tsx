import * as React from "react";
import { Link, useNavigate, useParams } from "react-router";
import { Pencil, Plus } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button, buttonVariants } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Textarea } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner, json } from "@/components/common";
import { api, ApiError, qs, type FieldError, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { Decision, Rule, RuleVersion } from "@/lib/types";
import { formatTime } from "@/lib/utils";
import { eventHref } from "./Events";

export function Rules() {
  useTitle("Rules");
  const rules = useAsync((signal) => api<Page<Rule>>("GET", "/v1/rules?limit=200", undefined, { signal }), []);
  return (
    <>
      <PageHeader title="Rules" description="Automation over your events: every time a rule fires it leaves a decision you can read.">
        <Link to="/rules/new" className={buttonVariants()}>
          <Plus aria-hidden="true" />
          New rule
        </Link>
      </PageHeader>
      <ErrorAlert error={rules.error} title="Could not read the rules" />
      {rules.loading && !rules.data ? (
        <Progress label="Loading rules…" />
      ) : rules.data && rules.data.items.length === 0 ? (
        <EmptyState title="No rules yet">
          Create one with <strong>New rule</strong>: for example, emit an alert when a payment over 1,000 fails.
        </EmptyState>
      ) : (
        rules.data && (
          <Card>
            <Table aria-label="Rules">
              <THead>
                <TR>
                  <TH>Name</TH>
                  <TH>Status</TH>
                  <TH>Version</TH>
                  <TH className="hidden sm:table-cell">Updated</TH>
                </TR>
              </THead>
              <TBody>
                {rules.data.items.map((r) => (
                  <TR key={r.id}>
                    <TD>
                      <Link className="font-medium text-primary underline underline-offset-2 hover:decoration-2" to={`/rules/${r.id}`}>
                        {r.name}
                      </Link>
                    </TD>
                    <TD>
                      <Badge variant={r.status === "active" ? "success" : "secondary"}>{r.status}</Badge>
                    </TD>
                    <TD>v{r.version}</TD>
                    <TD className="hidden sm:table-cell">{formatTime(r.updated_at)}</TD>
                  </TR>
                ))}
              </TBody>
            </Table>
          </Card>
        )
      )}
    </>
  );
}

/** Caret shows the line of an expression the API named, with a mark under the column. */
function Caret({ text, line, column }: { text: string; line?: number; column?: number }) {
  if (!line || !column) return null;
  const src = text.split("\n")[line - 1];
  if (src === undefined) return null;
  return (
    <pre className="mt-1 overflow-x-auto rounded bg-red-50 p-2 font-mono text-xs text-red-900" aria-hidden="true">
      {src}
      {"\n"}
      {" ".repeat(Math.max(0, column - 1))}^
    </pre>
  );
}

/** offsetOf turns a 1-based line and column into an offset in text. */
function offsetOf(text: string, line: number, column: number): number {
  const lines = text.split("\n");
  let off = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
  return Math.min(text.length, off + Math.max(0, column - 1));
}

type Part = "name" | "filters" | "condition" | "actions" | "other";

function partOf(e: FieldError): Part {
  const f = e.field ?? "";
  if (f === "/name") return "name";
  if (f === "/condition") return "condition";
  if (f.startsWith("/filters")) return "filters";
  if (f.startsWith("/actions")) return "actions";
  return "other";
}

/** expressionAt finds the CESQL text a /filters/.../sql pointer names, in the filters the person wrote. */
function expressionAt(filters: unknown, pointer: string): string | undefined {
  const path = pointer.split("/").slice(2).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  let cur: unknown = filters;
  for (const t of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[t];
  }
  return typeof cur === "string" ? cur : undefined;
}

interface Draft {
  name: string;
  filters: string;
  condition: string;
  actions: string;
}

const newDraft: Draft = {
  name: "",
  filters: json([{ exact: { type: "payment.failed" } }]),
  condition: "data.amount > 1000",
  actions: json([{ emit: { type: "alert.raised", source: "/rules/big-payments", data: { amount: "${data.amount}" } } }]),
};

function draftOf(r: Rule): Draft {
  return { name: r.name, filters: json(r.filters ?? []), condition: r.condition ?? "", actions: json(r.actions) };
}

/** RuleForm creates a rule (no rule given) or stores a new version of one. */
export function RuleForm() {
  const { id } = useParams();
  const editing = Boolean(id);
  useTitle(editing ? "Edit rule" : "New rule");
  const navigate = useNavigate();
  const existing = useAsync(
    (signal) => (id ? api<Rule>("GET", `/v1/rules/${id}`, undefined, { signal }) : Promise.resolve(undefined)),
    [id],
  );
  const [draft, setDraft] = React.useState<Draft>(newDraft);
  React.useEffect(() => {
    if (existing.data) setDraft(draftOf(existing.data));
  }, [existing.data]);
  const [errors, setErrors] = React.useState<FieldError[]>([]);
  const [jsonErrors, setJsonErrors] = React.useState<Partial<Record<Part, string>>>({});
  const [secret, setSecret] = React.useState<{ id: string; secret: string } | null>(null);
  const refs = {
    name: React.useRef<HTMLInputElement>(null),
    filters: React.useRef<HTMLTextAreaElement>(null),
    condition: React.useRef<HTMLTextAreaElement>(null),
    actions: React.useRef<HTMLTextAreaElement>(null),
  };

  const save = useAction(async (doc: Record<string, unknown>) => {
    try {
      const rule = id ? await api<Rule>("PUT", `/v1/rules/${id}`, doc) : await api<Rule>("POST", "/v1/rules", doc);
      if (rule.webhook_secret) setSecret({ id: rule.id, secret: rule.webhook_secret });
      else navigate(`/rules/${rule.id}`);
      return rule;
    } catch (e) {
      if (e instanceof ApiError && e.status === 422 && e.problem.errors?.length) {
        const errs = e.problem.errors;
        setErrors(errs);
        // Put the person where the first problem is.
        const first = errs[0];
        const part = partOf(first);
        if (part === "condition" && first.line && first.column) {
          const el = refs.condition.current;
          if (el) {
            el.focus();
            const off = offsetOf(draft.condition, first.line, first.column);
            el.setSelectionRange(off, off);
          }
        } else if (part !== "other") {
          refs[part].current?.focus();
        }
        return undefined;
      }
      throw e;
    }
  });

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setErrors([]);
    const je: Partial<Record<Part, string>> = {};
    const parse = (part: "filters" | "actions") => {
      try {
        return draft[part].trim() ? JSON.parse(draft[part]) : undefined;
      } catch (err) {
        je[part] = `Not JSON: ${(err as Error).message}`;
        return undefined;
      }
    };
    const filters = parse("filters");
    const actions = parse("actions");
    setJsonErrors(je);
    if (Object.keys(je).length) {
      refs[je.filters ? "filters" : "actions"].current?.focus();
      return;
    }
    const doc: Record<string, unknown> = { name: draft.name, actions };
    if (filters !== undefined) doc.filters = filters;
    if (draft.condition.trim()) doc.condition = draft.condition;
    void save.run(doc);
  };

  let parsedFilters: unknown;
  try {
    parsedFilters = JSON.parse(draft.filters);
  } catch {
    parsedFilters = undefined;
  }
  const errorsFor = (part: Part) => errors.filter((e) => partOf(e) === part);
  const renderErrors = (part: Part) => {
    const list = errorsFor(part);
    if (!list.length && !jsonErrors[part]) return undefined;
    return (
      <ul className="flex flex-col gap-1" data-testid={`errors-${part}`}>
        {jsonErrors[part] && <li>{jsonErrors[part]}</li>}
        {list.map((e, i) => (
          <li key={i}>
            <span className="font-mono">{e.field}</span>
            {e.line ? `, line ${e.line}, column ${e.column}` : ""}: {e.detail}
            {part === "condition" && <Caret text={draft.condition} line={e.line} column={e.column} />}
            {part === "filters" && e.field && <Caret text={expressionAt(parsedFilters, e.field) ?? ""} line={e.line} column={e.column} />}
          </li>
        ))}
      </ul>
    );
  };
  const invalid = (part: Part) => Boolean(errorsFor(part).length || jsonErrors[part]);
  const describedBy = (part: Part) => (invalid(part) ? `rule-${part}-error` : `rule-${part}-hint`);

  if (secret) {
    return (
      <>
        <PageHeader title="Rule saved" />
        <Alert variant="success">
          <AlertTitle>Keep this webhook signing secret: it is shown only now</AlertTitle>
          <AlertDescription>
            <Code label="Webhook signing secret">{secret.secret}</Code>
            <Link to={`/rules/${secret.id}`} className={buttonVariants({ className: "mt-3" })}>
              Go to the rule
            </Link>
          </AlertDescription>
        </Alert>
      </>
    );
  }

  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/rules" className="text-primary underline underline-offset-2 hover:decoration-2">
          Rules
        </Link>{" "}
        / {editing ? existing.data?.name ?? "…" : "New"}
      </nav>
      <PageHeader
        title={editing ? `Edit ${existing.data?.name ?? "rule"}` : "New rule"}
        description={editing ? "Saving stores a new version; events recorded from now on use it." : "Filters choose events; the condition (CEL) decides; actions act. docs/rules.md has the details."}
      />
      <ErrorAlert error={existing.error} title="Could not read the rule" />
      {editing && existing.loading ? (
        <Progress label="Loading the rule…" />
      ) : (
        <Card>
          <CardContent className="pt-4 sm:pt-6">
            <form onSubmit={submit} className="flex flex-col gap-4" noValidate aria-label={editing ? "Edit rule" : "New rule"}>
              {errors.length > 0 && (
                <Alert variant="destructive">
                  <AlertTitle>
                    The rule is invalid: {errors.length} problem{errors.length === 1 ? "" : "s"}, shown at each field
                  </AlertTitle>
                </Alert>
              )}
              <Field id="rule-name" label="Name" error={renderErrors("name")}>
                <Input
                  ref={refs.name}
                  id="rule-name"
                  value={draft.name}
                  aria-invalid={invalid("name")}
                  aria-describedby={invalid("name") ? "rule-name-error" : undefined}
                  onChange={(e) => setDraft({ ...draft, name: e.target.value })}
                />
              </Field>
              <Field id="rule-filters" label="Filters (JSON)" hint='Every entry must match: exact, prefix, suffix, all, any, not, or sql (CESQL).' error={renderErrors("filters")}>
                <Textarea
                  ref={refs.filters}
                  id="rule-filters"
                  rows={5}
                  value={draft.filters}
                  aria-invalid={invalid("filters")}
                  aria-describedby={describedBy("filters")}
                  onChange={(e) => setDraft({ ...draft, filters: e.target.value })}
                />
              </Field>
              <Field id="rule-condition" label="Condition (CEL)" hint="Optional. For example data.amount > 1000" error={renderErrors("condition")}>
                <Textarea
                  ref={refs.condition}
                  id="rule-condition"
                  rows={3}
                  value={draft.condition}
                  aria-invalid={invalid("condition")}
                  aria-describedby={describedBy("condition")}
                  onChange={(e) => setDraft({ ...draft, condition: e.target.value })}
                />
              </Field>
              <Field id="rule-actions" label="Actions (JSON)" hint="emit, webhook or schedule; one to 16." error={renderErrors("actions")}>
                <Textarea
                  ref={refs.actions}
                  id="rule-actions"
                  rows={8}
                  value={draft.actions}
                  aria-invalid={invalid("actions")}
                  aria-describedby={describedBy("actions")}
                  onChange={(e) => setDraft({ ...draft, actions: e.target.value })}
                />
              </Field>
              {errorsFor("other").length > 0 && (
                <Alert variant="destructive">
                  <AlertDescription>{renderErrors("other")}</AlertDescription>
                </Alert>
              )}
              <ErrorAlert error={save.error} title="The rule was not saved" />
              <div className="flex gap-2">
                <Button type="submit" disabled={save.pending}>
                  {save.pending && <Spinner />}
                  {editing ? "Save new version" : "Create rule"}
                </Button>
                <Link to={id ? `/rules/${id}` : "/rules"} className={buttonVariants({ variant: "ghost" })}>
                  Cancel
                </Link>
              </div>
            </form>
          </CardContent>
        </Card>
      )}
    </>
  );
}

export function RuleView() {
  const { id = "" } = useParams();
  const rule = useAsync((signal) => api<Rule>("GET", `/v1/rules/${id}`, undefined, { signal }), [id]);
  useTitle(rule.data ? `Rule ${rule.data.name}` : "Rule");
  const versions = useAsync((signal) => api<Page<RuleVersion>>("GET", `/v1/rules/${id}/versions`, undefined, { signal }), [id, rule.data?.version]);
  const decisions = useAsync((signal) => api<Page<Decision>>("GET", `/v1/decisions${qs({ rule: id, limit: 50 })}`, undefined, { signal }), [id]);
  const [shown, setShown] = React.useState<number | null>(null);
  const toggle = useAction(async (to: "enable" | "disable") => {
    await api("POST", `/v1/rules/${id}/${to}`);
    rule.reload();
  });
  if (rule.error instanceof ApiError && rule.error.status === 404) {
    return <EmptyState title="No such rule">It does not exist, or belongs to another App.</EmptyState>;
  }
  const r = rule.data;
  const version = versions.data?.items.find((v) => v.version === (shown ?? r?.version));
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/rules" className="text-primary underline underline-offset-2 hover:decoration-2">
          Rules
        </Link>{" "}
        / {r?.name ?? "…"}
      </nav>
      <ErrorAlert error={rule.error} title="Could not read the rule" />
      {!r ? (
        <Progress label="Loading the rule…" />
      ) : (
        <>
          <PageHeader
            title={r.name}
            description={
              <>
                Version {r.version}, updated {formatTime(r.updated_at)}. <Badge variant={r.status === "active" ? "success" : "secondary"}>{r.status}</Badge>
                {r.webhook?.status === "disabled" && <Badge variant="destructive" className="ml-2">webhook disabled</Badge>}
              </>
            }
          >
            <Link to={`/rules/${id}/edit`} className={buttonVariants({ variant: "outline" })}>
              <Pencil aria-hidden="true" />
              Edit
            </Link>
            <Button variant={r.status === "active" ? "destructive" : "default"} disabled={toggle.pending} onClick={() => void toggle.run(r.status === "active" ? "disable" : "enable")}>
              {toggle.pending && <Spinner />}
              {r.status === "active" ? "Disable" : "Enable"}
            </Button>
          </PageHeader>
          <ErrorAlert error={toggle.error} />
          <div className="grid gap-4 lg:grid-cols-2">
            <Card>
              <CardHeader>
                <CardTitle>Versions</CardTitle>
                <CardDescription>Every version stays readable; an event uses the version in force when it was recorded.</CardDescription>
              </CardHeader>
              <CardContent className="flex flex-col gap-3">
                {versions.loading && !versions.data && <Progress className="py-2" />}
                <div className="flex flex-wrap gap-2" role="group" aria-label="Versions">
                  {versions.data?.items.map((v) => (
                    <Button
                      key={v.version}
                      size="sm"
                      variant={v.version === (shown ?? r.version) ? "default" : "outline"}
                      aria-pressed={v.version === (shown ?? r.version)}
                      onClick={() => setShown(v.version)}
                    >
                      v{v.version}
                    </Button>
                  ))}
                </div>
                {version && (
                  <>
                    <p className="text-xs text-muted-foreground">Version {version.version}, {formatTime(version.created_at)}</p>
                    <Code label={`Version ${version.version} document`}>{json(version.document)}</Code>
                  </>
                )}
              </CardContent>
            </Card>
            <Card>
              <CardHeader>
                <CardTitle>Decisions</CardTitle>
                <CardDescription>Each time the rule fired: on which event, from which facts, doing what.</CardDescription>
              </CardHeader>
              <CardContent>
                <ErrorAlert error={decisions.error} />
                {decisions.loading && !decisions.data && <Progress className="py-2" />}
                {decisions.data && decisions.data.items.length === 0 && (
                  <p className="text-sm text-muted-foreground">No decision yet: the rule has not fired. Send an event its filters and condition match.</p>
                )}
                <ul className="flex flex-col gap-3">
                  {decisions.data?.items.map((d) => (
                    <li key={d.decision_id} className="rounded-md border p-3 text-sm">
                      <div className="flex flex-wrap items-center gap-2">
                        <Link className="font-mono text-primary underline" to={eventHref(d.event_source, d.event_id)}>
                          {d.event_id}
                        </Link>
                        <span>{d.event_type}</span>
                        <Badge variant="secondary">v{d.rule_version}</Badge>
                        <span className="text-xs text-muted-foreground">{formatTime(d.decided_at)}</span>
                      </div>
                      <p className="mt-1 font-mono text-xs break-all">
                        {Object.entries(d.inputs)
                          .map(([k, v]) => `${k} = ${JSON.stringify(v)}`)
                          .join(", ")}
                      </p>
                      <p className="mt-1 text-xs">{d.actions.map((a) => `${a.type}: ${a.delivery?.status ?? a.status}`).join(", ")}</p>
                    </li>
                  ))}
                </ul>
              </CardContent>
            </Card>
          </div>
        </>
      )}
    </>
  );
}
