import * as React from "react";
import { Link, useParams } from "react-router";
import { Plus, Send } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { api, ApiError, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import { formatTime } from "@/lib/utils";
import { eventHref } from "./Events";

export interface Subscription {
  id: string;
  protocol: "HTTP" | "NATS";
  sink: string;
  types: string[];
  filters: unknown[];
  protocolsettings?: { secret?: string; stream?: string; consumer?: string };
  config: { retry_schedule?: string[] };
  status: "active" | "disabled";
  disabled_reason?: string;
  disabled_at?: string;
  failing_since?: string;
  created_at: string;
  updated_at: string;
}

export interface Attempt {
  id: number;
  webhook_id: string;
  event_type: string;
  event_source?: string;
  event_id?: string;
  attempt: number;
  status: "succeeded" | "failed";
  response_code?: number;
  duration_ms: number;
  error?: string;
  at: string;
}

export function Subscriptions() {
  useTitle("Subscriptions");
  const subs = useAsync((signal) => api<Page<Subscription>>("GET", "/v1/subscriptions?limit=200", undefined, { signal }), []);
  const [adding, setAdding] = React.useState(false);
  const [created, setCreated] = React.useState<Subscription | null>(null);
  return (
    <>
      <PageHeader title="Subscriptions" description="Push your events to an HTTP endpoint, signed (Standard Webhooks), in order per partition key, retried on a schedule.">
        <Button onClick={() => setAdding((a) => !a)} aria-expanded={adding} aria-controls="new-subscription">
          <Plus aria-hidden="true" />
          New subscription
        </Button>
      </PageHeader>
      {created && (
        <Alert variant="success" className="mb-4" data-testid="subscription-secret">
          <AlertTitle>Subscription created: keep its signing secret, it is shown only now</AlertTitle>
          <AlertDescription className="flex flex-col gap-2">
            <Code label="Signing secret">{created.protocolsettings?.secret ?? "(the secret you gave)"}</Code>
            <div>
              <Link className="text-primary underline" to={`/subscriptions/${created.id}`}>
                Open the subscription
              </Link>
            </div>
          </AlertDescription>
        </Alert>
      )}
      {adding && (
        <NewSubscription
          onCreated={(s) => {
            setCreated(s);
            setAdding(false);
            subs.reload();
          }}
        />
      )}
      <ErrorAlert error={subs.error} title="Could not read the subscriptions" />
      {subs.loading && !subs.data ? (
        <Progress label="Loading subscriptions…" />
      ) : subs.data && subs.data.items.length === 0 ? (
        <EmptyState title="No subscriptions yet">
          Create one with <strong>New subscription</strong>: give the URL that should receive your events, and which types.
        </EmptyState>
      ) : (
        subs.data && (
          <Card>
            <Table aria-label="Subscriptions">
              <THead>
                <TR>
                  <TH>Sink</TH>
                  <TH>Types</TH>
                  <TH>Status</TH>
                  <TH className="hidden sm:table-cell">Created</TH>
                </TR>
              </THead>
              <TBody>
                {subs.data.items.map((s) => (
                  <TR key={s.id}>
                    <TD className="max-w-72">
                      <Link className="block truncate font-mono text-xs text-primary underline underline-offset-2" to={`/subscriptions/${s.id}`}>
                        {s.sink}
                      </Link>
                      <span className="text-xs text-muted-foreground">{s.protocol}</span>
                    </TD>
                    <TD className="text-xs">{s.types.length ? s.types.join(", ") : "every type"}</TD>
                    <TD>
                      <Badge variant={s.status === "active" ? "success" : "destructive"}>{s.status}</Badge>
                    </TD>
                    <TD className="hidden text-xs sm:table-cell">{formatTime(s.created_at)}</TD>
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

function NewSubscription({ onCreated }: { onCreated: (s: Subscription) => void }) {
  const [sink, setSink] = React.useState("");
  const [types, setTypes] = React.useState("");
  const [schedule, setSchedule] = React.useState("");
  const create = useAction(async () => {
    const body: Record<string, unknown> = {
      protocol: "HTTP",
      sink: sink.trim(),
      types: types
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
    };
    const sched = schedule
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
    if (sched.length) body.config = { retry_schedule: sched };
    onCreated(await api<Subscription>("POST", "/v1/subscriptions", body));
  });
  return (
    <Card id="new-subscription" className="mb-4">
      <CardHeader>
        <CardTitle>New subscription</CardTitle>
        <CardDescription>An HTTP endpoint that receives each matching event as a signed POST.</CardDescription>
      </CardHeader>
      <CardContent>
        <form
          className="grid gap-3 sm:grid-cols-2"
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          <div className="sm:col-span-2">
            <Field id="sub-sink" label="Sink URL" hint="https://… (where the events are sent)">
              <Input id="sub-sink" type="url" value={sink} placeholder="e.g. https://hooks.example.com/prost" onChange={(e) => setSink(e.target.value)} required />
            </Field>
          </div>
          <Field id="sub-types" label="Event types" hint="Comma-separated; empty for every type.">
            <Input id="sub-types" value={types} placeholder="e.g. order.placed, payment.failed" onChange={(e) => setTypes(e.target.value)} />
          </Field>
          <Field id="sub-schedule" label="Retry schedule" hint="Optional, comma-separated waits, e.g. 5s, 5m, 30m">
            <Input id="sub-schedule" value={schedule} onChange={(e) => setSchedule(e.target.value)} />
          </Field>
          <div className="sm:col-span-2">
            <ErrorAlert error={create.error} title="The subscription was refused" />
            <Button type="submit" disabled={create.pending || !sink.trim()}>
              {create.pending && <Spinner />}
              Create subscription
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

export function SubscriptionView() {
  const { id = "" } = useParams();
  useTitle("Subscription");
  const sub = useAsync((signal) => api<Subscription>("GET", `/v1/subscriptions/${id}`, undefined, { signal }), [id]);
  const attempts = useAsync((signal) => api<Page<Attempt>>("GET", `/v1/subscriptions/${id}/attempts${qs({ limit: 100 })}`, undefined, { signal }), [id]);
  const [ping, setPing] = React.useState<Attempt | null>(null);
  const test = useAction(async () => {
    setPing(await api<Attempt>("POST", `/v1/subscriptions/${id}/test`));
    attempts.reload();
  });
  const [since, setSince] = React.useState(() => {
    const d = new Date(Date.now() - 3600_000);
    d.setSeconds(0, 0);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  });
  const [recovered, setRecovered] = React.useState<number | null>(null);
  const recover = useAction(async () => {
    const r = await api<{ recovered: number }>("POST", `/v1/subscriptions/${id}/recover`, { since: new Date(since).toISOString() });
    setRecovered(r.recovered);
    attempts.reload();
  });
  const toggle = useAction(async (status: "active" | "disabled") => {
    await api("PATCH", `/v1/subscriptions/${id}`, { status });
    sub.reload();
  });
  if (sub.error instanceof ApiError && sub.error.status === 404) {
    return <EmptyState title="No such subscription">It does not exist, or belongs to another App.</EmptyState>;
  }
  const s = sub.data;
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/subscriptions" className="text-primary underline underline-offset-2">
          Subscriptions
        </Link>{" "}
        / {s ? s.id.slice(0, 8) : "…"}
      </nav>
      <ErrorAlert error={sub.error} title="Could not read the subscription" />
      {!s ? (
        <Progress label="Loading the subscription…" />
      ) : (
        <>
          <PageHeader
            title={s.sink}
            description={
              <>
                {s.protocol}, {s.types.length ? s.types.join(", ") : "every type"}. <Badge variant={s.status === "active" ? "success" : "destructive"}>{s.status}</Badge>
                {s.disabled_reason && <span className="ml-2">{s.disabled_reason}</span>}
              </>
            }
          >
            {s.protocol === "HTTP" && (
              <Button onClick={() => void test.run()} disabled={test.pending}>
                {test.pending ? <Spinner /> : <Send aria-hidden="true" />}
                Send a test ping
              </Button>
            )}
            <Button variant="outline" onClick={() => void toggle.run(s.status === "active" ? "disabled" : "active")} disabled={toggle.pending}>
              {s.status === "active" ? "Disable" : "Enable"}
            </Button>
          </PageHeader>
          <ErrorAlert error={test.error ?? toggle.error} />
          {ping && (
            <Alert variant={ping.status === "succeeded" ? "success" : "destructive"} className="mb-4" data-testid="ping-result">
              <AlertTitle>{ping.status === "succeeded" ? "The sink took the signed ping" : "The ping failed"}</AlertTitle>
              <AlertDescription>
                {ping.response_code ? `HTTP ${ping.response_code}` : "no answer"} in {Math.round(ping.duration_ms)} ms
                {ping.error ? `: ${ping.error}` : ""}. webhook-id <span className="font-mono">{ping.webhook_id}</span>
              </AlertDescription>
            </Alert>
          )}
          <div className="grid gap-4 lg:grid-cols-3">
            <Card className="lg:col-span-2">
              <CardHeader>
                <CardTitle>Attempts</CardTitle>
                <CardDescription>Every delivery attempt, oldest first: status, response and time taken.</CardDescription>
              </CardHeader>
              <CardContent>
                <ErrorAlert error={attempts.error} />
                {attempts.loading && !attempts.data && <Progress className="py-2" />}
                {attempts.data && attempts.data.items.length === 0 && (
                  <p className="text-sm text-muted-foreground">No attempt yet. Send a test ping, or an event of a type this subscription takes.</p>
                )}
                {attempts.data && attempts.data.items.length > 0 && (
                  <Table aria-label="Attempts">
                    <THead>
                      <TR>
                        <TH>When</TH>
                        <TH>Event</TH>
                        <TH>Outcome</TH>
                        <TH className="hidden sm:table-cell">Time taken</TH>
                      </TR>
                    </THead>
                    <TBody>
                      {attempts.data.items.map((a) => (
                        <TR key={a.id}>
                          <TD className="text-xs">{formatTime(a.at)}</TD>
                          <TD className="max-w-48 text-xs">
                            {a.event_id && a.event_source ? (
                              <Link className="block truncate font-mono text-primary underline" to={eventHref(a.event_source, a.event_id)}>
                                {a.event_id}
                              </Link>
                            ) : null}
                            <span className="text-muted-foreground">{a.event_type}</span>
                            {a.attempt > 1 && <span className="text-muted-foreground"> (attempt {a.attempt})</span>}
                          </TD>
                          <TD className="text-xs">
                            <Badge variant={a.status === "succeeded" ? "success" : "destructive"}>{a.status}</Badge>{" "}
                            {a.response_code ? `HTTP ${a.response_code}` : ""} {a.error}
                          </TD>
                          <TD className="hidden text-xs sm:table-cell">{Math.round(a.duration_ms)} ms</TD>
                        </TR>
                      ))}
                    </TBody>
                  </Table>
                )}
              </CardContent>
            </Card>
            <Card>
              <CardHeader>
                <CardTitle>Recover</CardTitle>
                <CardDescription>Send again every delivery that failed since a time, after the sink is fixed.</CardDescription>
              </CardHeader>
              <CardContent className="flex flex-col gap-3">
                <Field id="rec-since" label="Failed since">
                  <Input id="rec-since" type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
                </Field>
                <div>
                  <Button variant="outline" onClick={() => void recover.run()} disabled={recover.pending || !since}>
                    {recover.pending && <Spinner />}
                    Recover
                  </Button>
                </div>
                <ErrorAlert error={recover.error} />
                {recovered !== null && (
                  <Alert variant="success">
                    <AlertDescription>
                      {recovered} deliver{recovered === 1 ? "y" : "ies"} queued again.
                    </AlertDescription>
                  </Alert>
                )}
              </CardContent>
            </Card>
          </div>
        </>
      )}
    </>
  );
}
