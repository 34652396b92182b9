import * as React from "react";
import { Link, useParams } from "react-router";
import { RotateCcw } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Select } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner, json } from "@/components/common";
import { api, ApiError, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { DeadLetter, ReplayResult } from "@/lib/types";
import { formatTime } from "@/lib/utils";
import { eventHref } from "./Events";

/** Where a dead-letter page reads and replays: a tenant's own, or every tenant's (operators). */
interface Scope {
  list: string;
  one: (id: string | number) => string;
  replay: string;
  href: (id: number) => string;
  operator: boolean;
}

export const tenantScope: Scope = {
  list: "/v1/dlq",
  one: (id) => `/v1/dlq/${id}`,
  replay: "/v1/dlq/replay",
  href: (id) => `/dead-letters/${id}`,
  operator: false,
};

export const operatorScope: Scope = {
  list: "/admin/v1/dlq",
  one: (id) => `/admin/v1/dlq/${id}`,
  replay: "/admin/v1/dlq/replay",
  href: (id) => `/operator/dead-letters/${id}`,
  operator: true,
};

const stateVariant = (s: string) => (s === "dead" ? "destructive" : s === "replayed" ? "success" : "secondary");

export function DeadLetters({ scope }: { scope: Scope }) {
  useTitle("Dead letters");
  const [state, setState] = React.useState("dead");
  const [consumer, setConsumer] = React.useState("");
  const [applied, setApplied] = React.useState({ state: "dead", consumer: "" });
  const list = useAsync(
    (signal) => api<Page<DeadLetter>>("GET", `${scope.list}${qs({ ...applied, limit: 200 })}`, undefined, { signal }),
    [scope.list, applied.state, applied.consumer],
  );
  return (
    <>
      <PageHeader
        title="Dead letters"
        description={
          scope.operator
            ? "Messages a consumer could not process, for every App. Replay sends them back to the consumer that failed them."
            : "Your events a consumer could not process. Fix the cause, then replay them to the consumer that failed."
        }
      />
      <Card className="mb-4">
        <CardContent className="pt-4 sm:pt-6">
          <form
            className="grid gap-3 sm:grid-cols-3 sm:items-end"
            aria-label="Filter dead letters"
            onSubmit={(e) => {
              e.preventDefault();
              setApplied({ state, consumer });
            }}
          >
            <Field id="dl-state" label="State">
              <Select id="dl-state" value={state} onChange={(e) => setState(e.target.value)}>
                <option value="dead">dead</option>
                <option value="replayed">replayed</option>
                <option value="purged">purged</option>
              </Select>
            </Field>
            <Field id="dl-consumer" label="Consumer">
              <Input id="dl-consumer" value={consumer} placeholder="e.g. governance-audit" onChange={(e) => setConsumer(e.target.value)} />
            </Field>
            <div>
              <Button type="submit">Apply filters</Button>
            </div>
          </form>
        </CardContent>
      </Card>
      <ErrorAlert error={list.error} title="Could not read the dead letters" />
      {list.loading && !list.data ? (
        <Progress label="Loading dead letters…" />
      ) : list.data && list.data.items.length === 0 ? (
        <EmptyState title={applied.state === "dead" ? "No dead letters" : `No ${applied.state} entries`}>
          {applied.state === "dead"
            ? "Every event was processed. When a consumer gives up on a message it lands here, with the reason, for you to replay."
            : "Change the state filter to see other entries."}
        </EmptyState>
      ) : (
        list.data && (
          <Card>
            <Table aria-label="Dead letters">
              <THead>
                <TR>
                  <TH>Entry</TH>
                  <TH>Event</TH>
                  <TH>Consumer</TH>
                  <TH className="hidden md:table-cell">Reason</TH>
                  <TH>State</TH>
                  <TH className="hidden sm:table-cell">Dead since</TH>
                </TR>
              </THead>
              <TBody>
                {list.data.items.map((d) => (
                  <TR key={d.id}>
                    <TD>
                      <Link className="font-medium text-primary underline underline-offset-2 hover:decoration-2" to={scope.href(d.id)}>
                        #{d.id}
                      </Link>
                    </TD>
                    <TD className="max-w-48">
                      <div className="truncate font-mono text-xs">{d.event_id}</div>
                      <div className="truncate text-xs text-muted-foreground">{d.event_type}</div>
                    </TD>
                    <TD className="text-xs">{d.consumer}</TD>
                    <TD className="hidden max-w-64 truncate text-xs md:table-cell" title={d.last_error}>
                      {d.reason}: {d.last_error}
                    </TD>
                    <TD>
                      <Badge variant={stateVariant(d.state)}>{d.state}</Badge>
                    </TD>
                    <TD className="hidden text-xs sm:table-cell">{formatTime(d.created_at)}</TD>
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

export function DeadLetterView({ scope }: { scope: Scope }) {
  const { id = "" } = useParams();
  useTitle(`Dead letter ${id}`);
  const entry = useAsync((signal) => api<DeadLetter>("GET", scope.one(id), undefined, { signal }), [id]);
  const [result, setResult] = React.useState<ReplayResult | null>(null);
  const replay = useAction(async (dryRun: boolean) => {
    const r = await api<ReplayResult>("POST", scope.replay, { ids: [Number(id)], dry_run: dryRun });
    setResult(r);
    if (!dryRun) entry.reload();
    return r;
  });
  const back = (
    <nav aria-label="Breadcrumb" className="mb-2 text-sm">
      <Link to={scope.operator ? "/operator/dead-letters" : "/dead-letters"} className="text-primary underline underline-offset-2 hover:decoration-2">
        Dead letters
      </Link>{" "}
      / #{id}
    </nav>
  );
  if (entry.error instanceof ApiError && entry.error.status === 404) {
    return (
      <>
        {back}
        <EmptyState title="No such dead letter">It does not exist{scope.operator ? "" : ", or belongs to another App"}.</EmptyState>
      </>
    );
  }
  const d = entry.data;
  return (
    <>
      {back}
      <ErrorAlert error={entry.error} title="Could not read the dead letter" />
      {!d ? (
        <Progress label="Loading the dead letter…" />
      ) : (
        <>
          <PageHeader title={`Dead letter #${d.id}`} description={<>Consumer <span className="font-mono">{d.consumer}</span> gave up on this event.</>}>
            <Badge variant={stateVariant(d.state)} className="self-center">
              {d.state}
            </Badge>
          </PageHeader>
          <div className="grid gap-4 lg:grid-cols-2">
            <Card>
              <CardHeader>
                <CardTitle>What happened</CardTitle>
              </CardHeader>
              <CardContent>
                <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-2 text-sm">
                  <dt className="text-muted-foreground">Event</dt>
                  <dd className="break-all font-mono">
                    {scope.operator ? (
                      d.event_id
                    ) : (
                      <Link className="text-primary underline" to={eventHref(d.event_source, d.event_id)}>
                        {d.event_id}
                      </Link>
                    )}
                  </dd>
                  <dt className="text-muted-foreground">Type</dt>
                  <dd>{d.event_type}</dd>
                  <dt className="text-muted-foreground">Source</dt>
                  <dd className="break-all font-mono">{d.event_source}</dd>
                  {scope.operator && (
                    <>
                      <dt className="text-muted-foreground">App</dt>
                      <dd className="break-all font-mono">{d.tenant_id ?? "—"}</dd>
                    </>
                  )}
                  <dt className="text-muted-foreground">Reason</dt>
                  <dd>{d.reason}, after {d.delivery_count} deliveries</dd>
                  <dt className="text-muted-foreground">Last error</dt>
                  <dd className="break-words">{d.last_error}</dd>
                  <dt className="text-muted-foreground">Failing</dt>
                  <dd>
                    {formatTime(d.first_failure_at)} to {formatTime(d.last_failure_at)}
                  </dd>
                  <dt className="text-muted-foreground">Replays</dt>
                  <dd>
                    {d.replay_count}
                    {d.replayed_at && (
                      <>
                        , last {formatTime(d.replayed_at)} by <span className="font-mono">{d.replayed_by}</span>
                      </>
                    )}
                  </dd>
                </dl>
              </CardContent>
            </Card>
            <Card>
              <CardHeader>
                <CardTitle>Replay</CardTitle>
                <CardDescription>
                  Sends the event back to <span className="font-mono">{d.consumer}</span> only. Try a dry run first: it says what would be replayed and
                  changes nothing.
                </CardDescription>
              </CardHeader>
              <CardContent className="flex flex-col gap-3">
                <div className="flex flex-wrap gap-2">
                  <Button variant="outline" onClick={() => void replay.run(true)} disabled={replay.pending || d.state !== "dead"}>
                    {replay.pending && <Spinner />}
                    Dry run
                  </Button>
                  <Button onClick={() => void replay.run(false)} disabled={replay.pending || d.state !== "dead"}>
                    <RotateCcw aria-hidden="true" />
                    Replay
                  </Button>
                </div>
                {d.state !== "dead" && <p className="text-sm text-muted-foreground">Only a dead entry can be replayed; this one is {d.state}.</p>}
                <ErrorAlert error={replay.error} title="The replay was refused" />
                {result && (
                  <Alert variant="success">
                    <AlertTitle>{result.dry_run ? "Dry run: nothing was changed" : "Replayed"}</AlertTitle>
                    <AlertDescription>
                      {result.dry_run ? `${result.count} entr${result.count === 1 ? "y" : "ies"} would be replayed` : `${result.count} entr${result.count === 1 ? "y" : "ies"} replayed`}
                      {result.ids.length > 0 && `: #${result.ids.join(", #")}`}.
                    </AlertDescription>
                  </Alert>
                )}
              </CardContent>
            </Card>
          </div>
          {d.event && (
            <Card className="mt-4">
              <CardHeader>
                <CardTitle>The event</CardTitle>
              </CardHeader>
              <CardContent>
                <Code label="The dead-lettered event">{json(d.event)}</Code>
              </CardContent>
            </Card>
          )}
        </>
      )}
    </>
  );
}
