import * as React from "react";
import { Link, useParams } from "react-router";
import { Ban, CircleCheck, CircleDashed, CircleSlash, CircleX, Download, ExternalLink, Loader2, Plus, ShieldCheck } from "lucide-react";
import { Badge, type BadgeProps } from "@/components/ui/badge";
import { Button, buttonVariants } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Textarea } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { api, ApiError, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import {
  final, gunzip, stages, untar,
  type Artifact, type Finding, type GateRecord, type LogLine, type Run, type RunStatus, type StageRecord, type VerifyReport,
} from "@/lib/factory";
import { cn, formatTime } from "@/lib/utils";

const statusText: Record<RunStatus, string> = {
  queued: "queued",
  running: "running",
  awaiting_approval: "waiting for approval",
  succeeded: "succeeded",
  failed: "failed",
  rejected: "rejected",
  cancelled: "cancelled",
};

function statusVariant(s: string): BadgeProps["variant"] {
  switch (s) {
    case "succeeded":
    case "passed":
    case "active":
      return "success";
    case "failed":
    case "rejected":
      return "destructive";
    case "awaiting_approval":
      return "warning";
    case "running":
    case "queued":
      return "default";
    default:
      return "secondary";
  }
}

export function RunStatusBadge({ status }: { status: RunStatus }) {
  return <Badge variant={statusVariant(status)}>{statusText[status] ?? status}</Badge>;
}

/** usePolling calls f now and every ms while active, and stops on unmount. */
function usePolling(f: () => Promise<void> | void, ms: number, active: boolean) {
  const ref = React.useRef(f);
  ref.current = f;
  React.useEffect(() => {
    if (!active) return;
    let stop = false;
    let timer = 0;
    const tick = async () => {
      try {
        await ref.current();
      } finally {
        if (!stop) timer = window.setTimeout(tick, ms);
      }
    };
    timer = window.setTimeout(tick, ms);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, [ms, active]);
}

export function FactoryRuns() {
  useTitle("Factory");
  const runs = useAsync((signal) => api<Page<Run>>("GET", `/v1/factory/runs${qs({ limit: 100 })}`, undefined, { signal }), []);
  const active = (runs.data?.items ?? []).some((r) => !final(r.status));
  usePolling(() => runs.reload(), 3000, active);
  return (
    <>
      <PageHeader title="Factory" description="Modules the factory builds from a description: each run writes, tests, checks, signs and deploys one.">
        <Link to="/factory/new" className={buttonVariants()}>
          <Plus aria-hidden="true" />
          New module
        </Link>
      </PageHeader>
      <ErrorAlert error={runs.error} title="Could not read the runs" />
      {runs.loading && !runs.data ? (
        <Progress label="Loading runs…" />
      ) : runs.data && runs.data.items.length === 0 ? (
        <EmptyState title="No runs yet">
          Describe the software you need with <strong>New module</strong>: the wizard asks what it keeps and who may do what, shows you the result, and
          the factory builds, tests, checks and deploys it.
        </EmptyState>
      ) : (
        runs.data && (
          <Card>
            <Table aria-label="Runs">
              <THead>
                <TR>
                  <TH>Module</TH>
                  <TH>Status</TH>
                  <TH className="hidden sm:table-cell">Mode</TH>
                  <TH className="hidden md:table-cell">Started</TH>
                </TR>
              </THead>
              <TBody>
                {runs.data.items.map((r) => (
                  <TR key={r.id}>
                    <TD>
                      <Link className="font-medium text-primary underline underline-offset-2" to={`/factory/runs/${r.id}`}>
                        {r.module}
                      </Link>
                      <span className="block font-mono text-xs text-muted-foreground">{r.id.slice(0, 8)}</span>
                    </TD>
                    <TD>
                      <RunStatusBadge status={r.status} />
                      {r.stage && !final(r.status) && <span className="ml-2 text-xs text-muted-foreground">{r.stage}</span>}
                    </TD>
                    <TD className="hidden text-xs sm:table-cell">{r.state === "NORMAL" ? "production" : "MVP"}</TD>
                    <TD className="hidden text-xs md:table-cell">{formatTime(r.created_at)}</TD>
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

function duration(from: string, to?: string): string {
  const ms = (to ? new Date(to).getTime() : Date.now()) - new Date(from).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "";
  return ms < 1000 ? `${ms} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function StageIcon({ status }: { status?: string }) {
  switch (status) {
    case "running":
      return <Loader2 className="size-5 animate-spin text-primary" aria-hidden="true" />;
    case "succeeded":
    case "passed":
      return <CircleCheck className="size-5 text-success" aria-hidden="true" />;
    case "failed":
      return <CircleX className="size-5 text-destructive" aria-hidden="true" />;
    case "skipped":
      return <CircleSlash className="size-5 text-muted-foreground" aria-hidden="true" />;
    default:
      return <CircleDashed className="size-5 text-muted-foreground" aria-hidden="true" />;
  }
}

/** The gates of the gates stage, per state (docs/factory.md). */
const gatesOf = { NORMAL: ["lint", "secrets", "sast", "vulns", "deps", "sbom", "contracts", "perf"], PRESSAO: ["secrets", "contracts"] };

function Findings({ runId, gate }: { runId: string; gate: string }) {
  const fs = useAsync((signal) => api<{ items: Finding[] }>("GET", `/v1/factory/runs/${runId}/findings${qs({ gate })}`, undefined, { signal }), [runId, gate]);
  if (fs.loading && !fs.data) return <Progress label={`Reading what ${gate} found…`} className="py-2" />;
  if (fs.error) return <ErrorAlert error={fs.error} />;
  const items = fs.data?.items ?? [];
  if (!items.length) return <p className="text-xs text-muted-foreground">No finding recorded.</p>;
  return (
    <Table aria-label={`Findings of ${gate}`} data-testid={`findings-${gate}`}>
      <THead>
        <TR>
          <TH>Rule</TH>
          <TH>Where</TH>
          <TH>What</TH>
        </TR>
      </THead>
      <TBody>
        {items.map((f, i) => (
          <TR key={i}>
            <TD className="font-mono text-xs">
              {f.rule}
              {f.blocking ? <Badge variant="destructive" className="ml-1">blocks</Badge> : null}
            </TD>
            <TD className="font-mono text-xs break-all">
              {f.file ?? ""}
              {f.line ? `:${f.line}` : ""}
            </TD>
            <TD className="text-xs">{f.message}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}

function GateItem({ runId, g }: { runId: string; g: GateRecord | { gate: string; status?: undefined } }) {
  const rec = g.status ? (g as GateRecord) : undefined;
  return (
    <li className={cn("flex min-w-0 flex-col gap-1 rounded-md border bg-background p-2", rec?.status === "failed" && "sm:col-span-2")} data-testid={`gate-${g.gate}`}>
      <div className="flex flex-wrap items-center gap-2">
        <StageIcon status={rec?.status} />
        <span className="font-medium">{g.gate}</span>
        <Badge variant={statusVariant(rec?.status ?? "")}>{rec?.status ?? "waiting"}</Badge>
        {rec?.tool && <span className="text-xs text-muted-foreground">{rec.tool}</span>}
        {rec && !rec.blocking && <span className="text-xs text-muted-foreground">(does not block)</span>}
      </div>
      {rec?.summary && <p className="text-xs text-muted-foreground">{rec.summary}</p>}
      {rec && rec.findings > 0 && rec.status !== "failed" && (
        <details className="text-xs">
          <summary className="cursor-pointer">
            {rec.findings} finding{rec.findings === 1 ? "" : "s"}
          </summary>
          <Findings runId={runId} gate={g.gate} />
        </details>
      )}
      {rec?.status === "failed" && <Findings runId={runId} gate={g.gate} />}
    </li>
  );
}

function Pipeline({ run }: { run: Run }) {
  const byStage = new Map<string, StageRecord>((run.stages ?? []).map((s) => [s.stage, s]));
  const gates = new Map<string, GateRecord>((run.gates ?? []).map((g) => [g.gate, g]));
  return (
    <ol className="flex flex-col gap-2" aria-label="Stages" data-testid="stages">
      {stages.map((st, i) => {
        const rec = byStage.get(st.name);
        const current = run.stage === st.name && !final(run.status);
        const unreached = !rec && final(run.status);
        const stageGates = st.name === "pack0" ? ["pack0"] : st.name === "tests" ? ["tests"] : st.name === "gates" ? gatesOf[run.state] : [];
        return (
          <li
            key={st.name}
            className={cn("rounded-lg border bg-card p-3", current && "border-primary ring-1 ring-primary")}
            aria-current={current ? "step" : undefined}
            data-testid={`stage-${st.name}`}
          >
            <div className="flex flex-wrap items-center gap-2">
              <StageIcon status={rec?.status} />
              <span className="font-medium">
                {i + 1}. {st.label}
              </span>
              <span className="font-mono text-xs text-muted-foreground">{st.name}</span>
              <Badge variant={statusVariant(rec?.status ?? "")} className="ml-auto">
                {run.status === "awaiting_approval" && st.name === "approval" ? "waiting for you" : rec?.status ?? (unreached ? "not reached" : "not started")}
              </Badge>
            </div>
            <p className="mt-1 text-xs text-muted-foreground">
              {st.what}
              {rec ? ` · ${duration(rec.started_at, rec.finished_at)}` : ""}
              {rec?.reused ? " · reused from an earlier run" : ""}
              {rec && rec.executions > 1 ? ` · ran ${rec.executions} times` : ""}
            </p>
            {st.name === "approval" && typeof rec?.detail?.actor === "string" && (
              <p className="mt-1 text-sm">
                {rec.detail.decision === "reject" ? "Rejected" : "Approved"} by <span className="font-medium">{rec.detail.actor}</span>
                {rec.detail.automatic ? " (automatic)" : ""}
              </p>
            )}
            {rec?.error && rec.error !== run.error && <p className="mt-1 text-sm text-destructive">{rec.error}</p>}
            {stageGates.length > 0 && !unreached && (
              <ul className={cn("mt-2 grid items-start gap-2", stageGates.length > 1 && "sm:grid-cols-2")} aria-label={`Gates of ${st.label}`}>
                {stageGates.map((name) => (
                  <GateItem key={name} runId={run.id} g={gates.get(name) ?? { gate: name }} />
                ))}
              </ul>
            )}
          </li>
        );
      })}
    </ol>
  );
}

function Decide({ run, onDecided }: { run: Run; onDecided: (r: Run) => void }) {
  const [reason, setReason] = React.useState("");
  const [actor, setActor] = React.useState("");
  const [rejecting, setRejecting] = React.useState(false);
  const decide = useAction(async (what: "approve" | "reject") => {
    const headers = actor.trim() ? { "X-Prost-Actor": actor.trim() } : undefined;
    onDecided(await api<Run>("POST", `/v1/factory/runs/${run.id}/${what}`, { reason: reason.trim() }, { headers }));
  });
  const gates = run.gates ?? [];
  const failing = gates.filter((g) => g.status === "failed");
  return (
    <Card className="border-warning" data-testid="approval">
      <CardHeader>
        <CardTitle>Your decision</CardTitle>
        <CardDescription>
          Every gate has run: {gates.filter((g) => g.status === "passed").length} passed
          {failing.length ? `, ${failing.length} failed without blocking (${failing.map((g) => g.gate).join(", ")})` : ""}. Approving signs the build's
          manifest and deploys it; rejecting ends the run. Either is recorded with who and why.
        </CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <Field id="fx-reason" label="Why (recorded with the decision)">
          <Textarea id="fx-reason" className="min-h-16 font-sans" value={reason} onChange={(e) => setReason(e.target.value)} placeholder="e.g. gates reviewed" />
        </Field>
        <Field id="fx-actor" label="Your name (optional)" hint="Recorded as who decided; without it, this App.">
          <Input id="fx-actor" aria-describedby="fx-actor-hint" value={actor} autoComplete="name" onChange={(e) => setActor(e.target.value)} />
        </Field>
        <ErrorAlert error={decide.error} title="The decision was refused" />
        <div className="flex flex-wrap gap-2">
          <Button onClick={() => void decide.run("approve")} disabled={decide.pending}>
            {decide.pending ? <Spinner /> : <CircleCheck aria-hidden="true" />}
            Approve and deploy
          </Button>
          {!rejecting ? (
            <Button variant="outline" onClick={() => setRejecting(true)} disabled={decide.pending}>
              <Ban aria-hidden="true" />
              Reject
            </Button>
          ) : (
            <>
              <Button variant="destructive" onClick={() => void decide.run("reject")} disabled={decide.pending}>
                Yes, reject
              </Button>
              <Button variant="ghost" onClick={() => setRejecting(false)}>
                Keep waiting
              </Button>
            </>
          )}
        </div>
      </CardContent>
    </Card>
  );
}

/** Markdown shows the module's README: headings, paragraphs, lists, tables and code, no HTML. */
function Markdown({ text }: { text: string }) {
  const blocks: React.ReactNode[] = [];
  const lines = text.split("\n");
  const inline = (s: string) =>
    s.split(/(`[^`]+`)/).map((part, i) => (part.startsWith("`") && part.endsWith("`") && part.length > 1 ? <code key={i} className="rounded bg-muted px-1 font-mono text-xs">{part.slice(1, -1)}</code> : part));
  for (let i = 0; i < lines.length; ) {
    const l = lines[i];
    if (!l.trim()) {
      i++;
    } else if (l.startsWith("#")) {
      const level = /^#+/.exec(l)![0].length;
      const Tag = level === 1 ? "h4" : "h5";
      blocks.push(<Tag key={i} className="mt-2 font-semibold">{inline(l.replace(/^#+\s*/, ""))}</Tag>);
      i++;
    } else if (l.startsWith("    ")) {
      const code: string[] = [];
      while (i < lines.length && (lines[i].startsWith("    ") || !lines[i].trim())) code.push(lines[i++].slice(4));
      blocks.push(<Code key={i}>{code.join("\n").trimEnd()}</Code>);
    } else if (l.startsWith("|")) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i].startsWith("|")) {
        const cells = lines[i++].split("|").slice(1, -1).map((c) => c.trim());
        if (!cells.every((c) => /^-+$/.test(c))) rows.push(cells);
      }
      const [head, ...body] = rows;
      blocks.push(
        <Table key={i} aria-label="Routes of the module">
          <THead>
            <TR>{head.map((c, k) => <TH key={k}>{inline(c)}</TH>)}</TR>
          </THead>
          <TBody>
            {body.map((r, k) => (
              <TR key={k}>{r.map((c, m) => <TD key={m} className="text-xs">{inline(c)}</TD>)}</TR>
            ))}
          </TBody>
        </Table>,
      );
    } else if (/^- /.test(l)) {
      const items: string[] = [];
      while (i < lines.length && /^- /.test(lines[i])) items.push(lines[i++].slice(2));
      blocks.push(<ul key={i} className="list-disc pl-5 text-sm">{items.map((it, k) => <li key={k}>{inline(it)}</li>)}</ul>);
    } else {
      const para: string[] = [];
      while (i < lines.length && lines[i].trim() && !/^(#|\||- |    )/.test(lines[i])) para.push(lines[i++]);
      blocks.push(<p key={i} className="text-sm">{inline(para.join(" "))}</p>);
    }
  }
  return <div className="flex min-w-0 flex-col gap-2">{blocks}</div>;
}

/** Docs reads the generated module's README and lists its event contracts, from the stored source tree. */
function Docs({ runId }: { runId: string }) {
  const tree = useAsync(async (signal) => {
    const res = await fetch(`/v1/factory/runs/${runId}/artifact${qs({ name: "tree/source.tar.gz" })}`, { credentials: "same-origin", signal });
    if (!res.ok) throw new ApiError({ status: res.status, title: res.statusText, detail: "The module's source tree could not be read." });
    return untar(await gunzip(await res.arrayBuffer()));
  }, [runId]);
  if (tree.loading && !tree.data) return <Progress label="Reading the module's documentation…" className="py-2" />;
  if (tree.error) return <ErrorAlert error={tree.error} />;
  const files = tree.data ?? new Map<string, Uint8Array>();
  const readme = files.get("README.md");
  const contracts = [...files.keys()].filter((f) => f.startsWith("contracts/")).sort();
  return (
    <div className="flex flex-col gap-3" data-testid="module-docs">
      {readme ? <Markdown text={new TextDecoder().decode(readme)} /> : <p className="text-sm text-muted-foreground">The module has no README.</p>}
      {contracts.length > 0 && (
        <div>
          <h4 className="text-sm font-semibold">Event contracts</h4>
          <ul className="flex flex-wrap gap-1.5">
            {contracts.map((c) => (
              <li key={c}>
                <Badge variant="secondary" className="font-mono">
                  {c.replace(/^contracts\//, "")}
                </Badge>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function artifactHref(runId: string, name: string): string {
  return `/v1/factory/runs/${runId}/artifact${qs({ name })}`;
}

function Verified({ runId }: { runId: string }) {
  const rep = useAsync((signal) => api<VerifyReport>("GET", `/v1/factory/runs/${runId}/verify`, undefined, { signal }), [runId]);
  if (rep.loading && !rep.data) return <Progress label="Verifying the signed record of the build…" className="py-2" />;
  if (rep.error) return <ErrorAlert error={rep.error} />;
  const r = rep.data!;
  return (
    <div className="flex flex-col gap-3" data-testid="verify">
      <Alert variant={r.ok ? "success" : "destructive"}>
        <AlertTitle>{r.ok ? "The manifest verifies" : "The manifest does not verify"}</AlertTitle>
        <AlertDescription>
          {r.ok
            ? `${r.checks.length} checks passed: every artifact against its digest, every signature against this App's key, the approval and the audit chain.`
            : (r.failures ?? []).join("\n")}
        </AlertDescription>
      </Alert>
      <ul className="flex flex-wrap gap-2" aria-label="Downloads">
        {[
          ["pec/manifest.dsse.json", "The signed manifest"],
          ["sbom.cdx.json", "The SBOM"],
          ["tree/source.tar.gz", "The source"],
        ].map(([name, label]) => (
          <li key={name}>
            <a className={buttonVariants({ variant: "outline", size: "sm" })} href={artifactHref(runId, name)} download={name.split("/").pop()}>
              <Download aria-hidden="true" />
              {label}
            </a>
          </li>
        ))}
      </ul>
      <dl className="grid gap-1 text-xs sm:grid-cols-[max-content_1fr] sm:gap-x-3">
        <dt className="font-medium">Manifest sha256</dt>
        <dd className="font-mono break-all">{r.manifest_sha256 ?? "—"}</dd>
        <dt className="font-medium">Signed with key</dt>
        <dd className="font-mono break-all">{r.keyid ?? "—"}</dd>
      </dl>
      <details className="text-xs">
        <summary className="cursor-pointer font-medium">Every check ({r.checks.length})</summary>
        <ul className="mt-2 flex flex-col gap-1">
          {r.checks.map((c, i) => (
            <li key={i} className="flex gap-2">
              {c.ok ? <CircleCheck className="size-4 shrink-0 text-success" aria-label="passed" /> : <CircleX className="size-4 shrink-0 text-destructive" aria-label="failed" />}
              <span className="break-all">
                <span className="font-medium">{c.name}</span> {c.detail}
              </span>
            </li>
          ))}
        </ul>
      </details>
    </div>
  );
}

function Artifacts({ runId }: { runId: string }) {
  const as = useAsync((signal) => api<{ items: Artifact[] }>("GET", `/v1/factory/runs/${runId}/artifacts`, undefined, { signal }), [runId]);
  if (as.loading && !as.data) return <Progress label="Listing the artifacts…" className="py-2" />;
  if (as.error) return <ErrorAlert error={as.error} />;
  const items = as.data?.items ?? [];
  if (!items.length) return <p className="text-sm text-muted-foreground">No artifact yet.</p>;
  const size = (n: number) => (n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
  const table = (
    <Table aria-label="Artifacts">
      <THead>
        <TR>
          <TH>Artifact</TH>
          <TH className="hidden sm:table-cell">Stage</TH>
          <TH>Size</TH>
        </TR>
      </THead>
      <TBody>
        {items.map((a) => (
          <TR key={a.name}>
            <TD className="max-w-64">
              <a
                className="inline-flex items-center gap-1 font-mono text-xs break-all text-primary underline underline-offset-2"
                href={artifactHref(runId, a.name)}
                download={a.name.split("/").pop()}
              >
                <Download className="size-3 shrink-0" aria-hidden="true" />
                {a.name}
              </a>
            </TD>
            <TD className="hidden text-xs sm:table-cell">{a.stage}</TD>
            <TD className="text-xs whitespace-nowrap">{size(a.size)}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
  if (items.length <= 8) return table;
  return (
    <details>
      <summary className="cursor-pointer text-sm font-medium">All {items.length} artifacts</summary>
      <div className="mt-2">{table}</div>
    </details>
  );
}

function Log({ runId, live }: { runId: string; live: boolean }) {
  const [lines, setLines] = React.useState<LogLine[]>([]);
  const next = React.useRef(0);
  const read = React.useCallback(async () => {
    for (let i = 0; i < 20; i++) {
      const page = await api<{ items: LogLine[]; next: number; done: boolean }>("GET", `/v1/factory/runs/${runId}/logs${qs({ after: next.current, limit: 500 })}`);
      if (page.items.length) {
        next.current = page.next;
        setLines((ls) => [...ls, ...page.items].slice(-2000));
      }
      if (page.items.length < 500) return;
    }
  }, [runId]);
  React.useEffect(() => {
    next.current = 0;
    setLines([]);
    void read().catch(() => undefined);
  }, [read]);
  usePolling(() => read().catch(() => undefined), 1500, live);
  return (
    <details className="rounded-lg border bg-card p-3">
      <summary className="cursor-pointer text-sm font-medium">The run's log ({lines.length} lines)</summary>
      <Code label="The run's log" className="mt-2 max-h-80 whitespace-pre-wrap">
        {lines.length ? lines.map((l) => `${new Date(l.at).toLocaleTimeString()}  ${l.stage ? `[${l.stage}] ` : ""}${l.line}`).join("\n") : "Nothing logged yet."}
      </Code>
    </details>
  );
}

export function FactoryRunView() {
  const { id = "" } = useParams();
  useTitle("Factory run");
  const runQ = useAsync((signal) => api<Run>("GET", `/v1/factory/runs/${id}`, undefined, { signal }), [id]);
  const [run, setRun] = React.useState<Run | undefined>(undefined);
  React.useEffect(() => {
    if (runQ.data) setRun(runQ.data);
  }, [runQ.data]);
  const live = !!run && !final(run.status);
  // While the run moves, read it every second; while it waits for a person, less often.
  usePolling(
    async () => {
      try {
        setRun(await api<Run>("GET", `/v1/factory/runs/${id}`));
      } catch {
        /* the next tick tries again */
      }
    },
    run?.status === "awaiting_approval" ? 3000 : 1000,
    live,
  );
  const cancel = useAction(async () => setRun(await api<Run>("POST", `/v1/factory/runs/${id}/cancel`)));
  const [confirmCancel, setConfirmCancel] = React.useState(false);

  if (runQ.error instanceof ApiError && runQ.error.status === 404) {
    return <EmptyState title="No such run">It does not exist, or belongs to another App. The factory's page lists this App's runs.</EmptyState>;
  }
  const done = (run?.stages ?? []).filter((s) => s.status !== "running").length;
  const stageLabel = stages.find((s) => s.name === run?.stage)?.label;
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/factory" className="text-primary underline underline-offset-2">
          Factory
        </Link>{" "}
        / {run ? `${run.module} ${run.id.slice(0, 8)}` : "…"}
      </nav>
      <ErrorAlert error={runQ.error} title="Could not read the run" />
      {!run ? (
        <Progress label="Loading the run…" />
      ) : (
        <>
          <PageHeader
            title={`${run.module}`}
            description={
              <>
                {run.state === "NORMAL" ? "Production (NORMAL)" : "MVP (PRESSAO)"}, deploy {run.deploy_target}
                {run.auto_deploy ? ", automatic" : ""}
                {run.dry_run ? ", dry run" : ""}. Started {formatTime(run.created_at)}
                {run.requested_by ? ` by ${run.requested_by}` : ""}.
              </>
            }
          >
            {!final(run.status) &&
              (!confirmCancel ? (
                <Button variant="outline" onClick={() => setConfirmCancel(true)}>
                  Cancel run
                </Button>
              ) : (
                <>
                  <Button variant="destructive" onClick={() => void cancel.run()} disabled={cancel.pending}>
                    {cancel.pending && <Spinner />}
                    Yes, cancel
                  </Button>
                  <Button variant="ghost" onClick={() => setConfirmCancel(false)}>
                    Keep it running
                  </Button>
                </>
              ))}
          </PageHeader>
          <ErrorAlert error={cancel.error} />
          <div className="mb-4 flex flex-col gap-2" data-testid="run-status">
            <div className="flex flex-wrap items-center gap-2 text-sm" role="status" aria-live="polite">
              <span>Status:</span>
              <RunStatusBadge status={run.status} />
              {run.mvp && <Badge variant="warning">MVP</Badge>}
              {live && run.status !== "awaiting_approval" && (
                <span className="flex items-center gap-1 text-muted-foreground">
                  <Loader2 className="size-4 animate-spin" aria-hidden="true" />
                  {run.status === "queued" ? "waiting for its turn" : `at ${stageLabel ?? run.stage ?? "its start"}`}, updated every second
                </span>
              )}
            </div>
            <div
              role="progressbar"
              aria-label="Stages done"
              aria-valuemin={0}
              aria-valuemax={stages.length}
              aria-valuenow={done}
              aria-valuetext={`${done} of ${stages.length} stages done`}
              className="h-2 w-full overflow-hidden rounded-full bg-secondary"
            >
              <div className={cn("h-full", run.status === "failed" || run.status === "rejected" ? "bg-destructive" : "bg-primary")} style={{ width: `${(done / stages.length) * 100}%` }} />
            </div>
          </div>
          {run.error && (
            <Alert variant="destructive" className="mb-4">
              <AlertTitle>The run {run.status === "rejected" ? "was rejected" : run.status === "cancelled" ? "was cancelled" : "failed"}</AlertTitle>
              <AlertDescription className="flex flex-col gap-2">
                <span className="whitespace-pre-wrap">{run.error}</span>
                {run.status === "failed" && (
                  <span>
                    What now: read what each failed gate found below, then{" "}
                    <Link to="/factory/new" className="font-medium underline underline-offset-2">
                      describe the module again
                    </Link>{" "}
                    with the answers changed.
                  </span>
                )}
              </AlertDescription>
            </Alert>
          )}
          {run.status === "succeeded" && run.deployment && <Deployed run={run} />}
          {run.status === "succeeded" && (
            <div className="mb-4 grid gap-4 lg:grid-cols-2">
              {!run.dry_run && (
                <Card>
                  <CardHeader>
                    <CardTitle className="flex items-center gap-2">
                      <ShieldCheck className="size-5 text-success" aria-hidden="true" />
                      Verified manifest
                    </CardTitle>
                    <CardDescription>The signed record of how it was made, checked now against what is stored.</CardDescription>
                  </CardHeader>
                  <CardContent>
                    <Verified runId={run.id} />
                  </CardContent>
                </Card>
              )}
              <Card>
                <CardHeader>
                  <CardTitle>Documentation</CardTitle>
                  <CardDescription>The generated module's README and its event contracts.</CardDescription>
                </CardHeader>
                <CardContent>
                  <Docs runId={run.id} />
                </CardContent>
              </Card>
            </div>
          )}
          <div className="grid gap-4 xl:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]">
            <div className="flex min-w-0 flex-col gap-4">
              {run.status === "awaiting_approval" && <Decide run={run} onDecided={setRun} />}
              <Pipeline run={run} />
              <Log runId={run.id} live={live} />
            </div>
            <div className="flex min-w-0 flex-col gap-4">
              <Card>
                <CardHeader>
                  <CardTitle>Artifacts</CardTitle>
                  <CardDescription>Everything the run made, by sha256: source, binary, reports, SBOM and the signed records.</CardDescription>
                </CardHeader>
                <CardContent>
                  <Artifacts key={`${run.status}-${run.stage}`} runId={run.id} />
                </CardContent>
              </Card>
            </div>
          </div>
        </>
      )}
    </>
  );
}

function Deployed({ run }: { run: Run }) {
  const d = run.deployment!;
  const base = d.address ? `http://${d.address}` : "";
  return (
    <Alert variant="success" className="mb-4" data-testid="deployed">
      <AlertTitle>
        {run.module} is deployed ({d.status})
      </AlertTitle>
      <AlertDescription className="flex flex-col gap-2">
        {d.target === "local" && base ? (
          <>
            <p>
              It serves at{" "}
              <a className="inline-flex items-center gap-1 font-mono font-medium underline underline-offset-2" href={`${base}/healthz`} target="_blank" rel="noreferrer">
                {base}
                <ExternalLink className="size-3" aria-hidden="true" />
                <span className="sr-only">(its health check, in a new tab)</span>
              </a>{" "}
              on PROST's host, with {d.migrations} migration{d.migrations === 1 ? "" : "s"} applied. Every request names its tenant:
            </p>
            <Code label="Try it">{`curl -H "X-Tenant-ID: $(uuidgen)"${run.pack0?.roles?.length ? ` -H "X-Role: ${run.pack0.roles[0].name}"` : ""} ${base}/v1/${run.pack0?.entities[0]?.plural ?? `${run.pack0?.entities[0]?.name ?? "item"}s`}`}</Code>
          </>
        ) : (
          <p>{d.detail ?? "Its Dockerfile and compose service are among the artifacts."}</p>
        )}
      </AlertDescription>
    </Alert>
  );
}
