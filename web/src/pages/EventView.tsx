import * as React from "react";
import { Link, useSearchParams } from "react-router";
import { CheckCircle2, CircleDashed, XCircle } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { Code, EmptyState, ErrorAlert, PageHeader, Progress, json } from "@/components/common";
import { api, ApiError, qs, type Page } from "@/lib/api";
import { useTitle } from "@/lib/hooks";
import type { AuditEntry, Decision, DecisionAction, EventLookup, Rule } from "@/lib/types";
import { cn, formatTime } from "@/lib/utils";

interface Journey {
  lookup: EventLookup;
  audit: AuditEntry[];
  decisions: Decision[];
  ruleNames: Record<string, string>;
}

async function loadJourney(source: string, id: string, signal?: AbortSignal): Promise<Journey> {
  const [lookup, audit, decisions] = await Promise.all([
    api<EventLookup>("GET", `/v1/events/lookup${qs({ source, id })}`, undefined, { signal }),
    api<Page<AuditEntry>>("GET", `/v1/audit${qs({ event_id: id, source })}`, undefined, { signal }),
    api<Page<Decision>>("GET", `/v1/decisions${qs({ event_id: id, limit: 100 })}`, undefined, { signal }),
  ]);
  const mine = decisions.items.filter((d) => d.event_source === source);
  const ruleNames: Record<string, string> = {};
  await Promise.all(
    [...new Set(mine.map((d) => d.rule_id))].map(async (r) => {
      try {
        ruleNames[r] = (await api<Rule>("GET", `/v1/rules/${r}`, undefined, { signal })).name;
      } catch {
        /* the id is shown instead */
      }
    }),
  );
  return { lookup, audit: audit.items, decisions: mine, ruleNames };
}

type StepState = "done" | "waiting" | "failed" | "none";

function StepIcon({ state }: { state: StepState }) {
  if (state === "done") return <CheckCircle2 className="size-5 text-success" aria-hidden="true" />;
  if (state === "failed") return <XCircle className="size-5 text-destructive" aria-hidden="true" />;
  return <CircleDashed className="size-5 text-muted-foreground" aria-hidden="true" />;
}

const stateLabel: Record<StepState, string> = { done: "done", waiting: "waiting", failed: "failed", none: "nothing to do" };

function Step({ title, state, children }: { title: string; state: StepState; children?: React.ReactNode }) {
  return (
    <li className="relative flex gap-3 pb-6 last:pb-0">
      <span className="flex flex-col items-center">
        <StepIcon state={state} />
        <span className="mt-1 w-px flex-1 bg-border" aria-hidden="true" />
      </span>
      <div className="min-w-0 flex-1">
        <h3 className="flex flex-wrap items-center gap-2 font-medium">
          {title}
          <span className="sr-only">: {stateLabel[state]}</span>
        </h3>
        <div className="mt-1 text-sm text-muted-foreground">{children}</div>
      </div>
    </li>
  );
}

function actionState(a: DecisionAction): "success" | "warning" | "destructive" | "secondary" {
  const s = a.delivery?.status ?? a.status;
  if (["emitted", "delivered", "scheduled"].includes(s)) return "success";
  if (["failed", "dead", "gone"].includes(s)) return "destructive";
  if (s === "skipped") return "secondary";
  return "warning";
}

export function EventView() {
  const [params] = useSearchParams();
  const source = params.get("source") ?? "";
  const id = params.get("id") ?? "";
  useTitle(`Event ${id}`);
  const [journey, setJourney] = React.useState<Journey | undefined>();
  const [error, setError] = React.useState<unknown>();

  // The journey fills in as the pipeline moves: poll until the event is
  // published and audited (at most a minute), then stop.
  React.useEffect(() => {
    const ctl = new AbortController();
    let timer: number | undefined;
    const started = Date.now();
    const tick = async () => {
      try {
        const j = await loadJourney(source, id, ctl.signal);
        setJourney(j);
        setError(undefined);
        const settled = j.lookup.published && j.audit.length > 0;
        if (!settled && Date.now() - started < 60_000) timer = window.setTimeout(tick, 1000);
      } catch (e) {
        if (!ctl.signal.aborted) setError(e);
      }
    };
    void tick();
    return () => {
      ctl.abort();
      window.clearTimeout(timer);
    };
  }, [source, id]);

  if (!source || !id) {
    return <EmptyState title="Which event?">Open an event from the events list.</EmptyState>;
  }
  const notFound = error instanceof ApiError && error.status === 404;
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/events" className="text-primary underline underline-offset-2 hover:decoration-2">
          Events
        </Link>{" "}
        / <span className="font-mono">{id}</span>
      </nav>
      <PageHeader
        title={`Event ${id}`}
        description={
          <>
            from <span className="font-mono">{source}</span>
          </>
        }
      />
      {notFound ? (
        <EmptyState title="No such event">
          Your App has no event with source <code>{source}</code> and id <code>{id}</code>.
        </EmptyState>
      ) : (
        <ErrorAlert error={error} title="Could not read the event" />
      )}
      {!journey && !error && <Progress label="Following the event…" />}
      {journey && <JourneyView j={journey} />}
    </>
  );
}

function JourneyView({ j }: { j: Journey }) {
  const ev = j.lookup.event;
  const own = j.audit.find((a) => a.event_type === ev.type);
  const others = j.audit.filter((a) => a !== own);
  const actions = j.decisions.flatMap((d) => d.actions.map((a) => ({ d, a })));
  const deliveries = actions.filter(({ a }) => a.type === "webhook");
  return (
    <div className="grid gap-4 lg:grid-cols-5">
      <Card className="lg:col-span-3">
        <CardHeader>
          <CardTitle>Journey</CardTitle>
        </CardHeader>
        <CardContent>
          <ol aria-label="Journey" data-testid="journey">
            <Step title="Stored" state="done">
              Accepted and stored at {formatTime(j.lookup.recorded_at)}.
            </Step>
            <Step title="Published" state={j.lookup.published ? "done" : "waiting"}>
              {j.lookup.published ? "Published to the event stream by the relay." : "Waiting in the outbox for the relay…"}
            </Step>
            <Step title="Audited" state={own ? "done" : "waiting"}>
              {own ? (
                <span>
                  Entry <strong>#{own.seq}</strong> of the audit chain, {formatTime(own.recorded_at)}
                  {own.actor_id && (
                    <>
                      , actor <span className="font-mono">{own.actor_id}</span>
                    </>
                  )}
                  {own.action && <>, action {own.action}</>}.{" "}
                  <span className="break-all font-mono text-xs">hash {own.hash.slice(0, 16)}…</span>
                  {others.map((o) => (
                    <span key={o.seq} className="mt-1 block">
                      Entry #{o.seq}: {o.event_type} by <span className="font-mono">{o.actor_id}</span> ({o.action}), {formatTime(o.recorded_at)}
                    </span>
                  ))}
                </span>
              ) : (
                "Waiting for the audit consumer…"
              )}
            </Step>
            <Step title="Rule decisions" state={j.decisions.length ? "done" : "none"}>
              {j.decisions.length === 0 ? (
                "No rule fired on this event."
              ) : (
                <ul className="flex flex-col gap-3">
                  {j.decisions.map((d) => (
                    <li key={d.decision_id} className="rounded-md border bg-background p-3 text-foreground">
                      <div className="flex flex-wrap items-center gap-2">
                        <Link className="font-medium text-primary underline underline-offset-2 hover:decoration-2" to={`/rules/${d.rule_id}`}>
                          {j.ruleNames[d.rule_id] ?? `Rule ${d.rule_id.slice(0, 8)}…`}
                        </Link>
                        <Badge variant="secondary">version {d.rule_version}</Badge>
                        <span className="text-xs text-muted-foreground">{formatTime(d.decided_at)}</span>
                      </div>
                      <p className="mt-2 text-xs font-medium text-muted-foreground">Facts it read</p>
                      <dl className="mt-1 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 font-mono text-xs">
                        {Object.entries(d.inputs).map(([k, v]) => (
                          <React.Fragment key={k}>
                            <dt className="text-muted-foreground">{k}</dt>
                            <dd className="break-all">{JSON.stringify(v)}</dd>
                          </React.Fragment>
                        ))}
                      </dl>
                      <p className="mt-2 text-xs font-medium text-muted-foreground">What it did</p>
                      <ul className="mt-1 flex flex-col gap-1">
                        {d.actions.map((a) => (
                          <li key={a.pointer} className="flex flex-wrap items-center gap-2 text-xs">
                            <Badge variant={actionState(a)}>{a.delivery?.status ?? a.status}</Badge>
                            <span>{a.type}</span>
                            {a.event && (
                              <Link className="font-mono text-primary underline" to={`/events/view${qs({ source: a.event.source, id: a.event.id })}`}>
                                {a.event.type}
                              </Link>
                            )}
                            {a.url && <span className="break-all font-mono">{a.url}</span>}
                            {a.error && <span className="text-destructive">{a.error}</span>}
                          </li>
                        ))}
                      </ul>
                    </li>
                  ))}
                </ul>
              )}
            </Step>
            <Step
              title="Webhook deliveries"
              state={
                deliveries.length === 0
                  ? "none"
                  : deliveries.every(({ a }) => a.delivery?.status === "delivered")
                    ? "done"
                    : deliveries.some(({ a }) => ["dead", "gone"].includes(a.delivery?.status ?? ""))
                      ? "failed"
                      : "waiting"
              }
            >
              {deliveries.length === 0 ? (
                "No webhook was called for this event."
              ) : (
                <ul className="flex flex-col gap-1">
                  {deliveries.map(({ d, a }) => (
                    <li key={d.decision_id + a.pointer} className={cn("text-xs", a.delivery?.status === "delivered" ? "" : "")}>
                      <span className="break-all font-mono">{a.url}</span>:{" "}
                      {a.delivery
                        ? `${a.delivery.status}${a.delivery.http_status ? ` (HTTP ${a.delivery.http_status})` : ""}, ${a.delivery.attempts ?? 0} attempt(s), ${formatTime(a.delivery.at)}`
                        : "queued, not delivered yet"}
                    </li>
                  ))}
                </ul>
              )}
            </Step>
          </ol>
        </CardContent>
      </Card>
      <Card className="lg:col-span-2">
        <CardHeader>
          <CardTitle>The event</CardTitle>
        </CardHeader>
        <CardContent>
          <dl className="mb-3 grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-sm">
            <dt className="text-muted-foreground">Type</dt>
            <dd className="font-medium">{ev.type}</dd>
            <dt className="text-muted-foreground">Source</dt>
            <dd className="break-all font-mono">{ev.source}</dd>
            <dt className="text-muted-foreground">Time</dt>
            <dd>{formatTime(ev.time)}</dd>
          </dl>
          <Code label="The event as stored">{json(ev)}</Code>
        </CardContent>
      </Card>
    </div>
  );
}
