import * as React from "react";
import { Link, useSearchParams } from "react-router";
import { RefreshCw, Send } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Textarea } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { LiveTail } from "@/components/livetail";
import { api, morePages, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { CloudEvent } from "@/lib/types";
import { formatTime } from "@/lib/utils";

/** eventHref links to an event's journey. */
export function eventHref(source: string, id: string) {
  return `/events/view${qs({ source, id })}`;
}

/** toRFC3339 turns a datetime-local value into an RFC 3339 time ("" stays ""). */
function toRFC3339(local: string): string {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

export function Events() {
  useTitle("Events");
  const [params, setParams] = useSearchParams();
  const filters = { type: params.get("type") ?? "", source: params.get("source") ?? "", since: params.get("since") ?? "" };
  const [form, setForm] = React.useState(filters);
  const [pages, setPages] = React.useState<CloudEvent[][]>([]);
  const [next, setNext] = React.useState<string | null>(null);
  const [loadingMore, setLoadingMore] = React.useState(false);
  const [showSend, setShowSend] = React.useState(false);

  const first = useAsync(
    (signal) => api<Page<CloudEvent>>("GET", `/v1/events${qs({ ...filters, since: toRFC3339(filters.since), limit: 50 })}`, undefined, { signal }),
    [filters.type, filters.source, filters.since],
  );
  React.useEffect(() => {
    if (first.data) {
      setPages([first.data.items]);
      setNext(morePages(first.data) ? first.data.next_cursor : null);
    }
  }, [first.data]);

  const more = async () => {
    if (!next) return;
    setLoadingMore(true);
    try {
      const p = await api<Page<CloudEvent>>("GET", `/v1/events${qs({ ...filters, since: toRFC3339(filters.since), limit: 50, cursor: next })}`);
      setPages((ps) => [...ps, p.items]);
      setNext(morePages(p) ? p.next_cursor : null);
    } finally {
      setLoadingMore(false);
    }
  };

  const apply = (e: React.FormEvent) => {
    e.preventDefault();
    const p: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) if (v) p[k] = v;
    setParams(p);
  };
  const events = pages.flat();
  const filtered = Boolean(filters.type || filters.source || filters.since);

  return (
    <>
      <PageHeader title="Events" description="Every event your App recorded, oldest first. Open one to follow its journey through PROST.">
        <Button variant="outline" onClick={first.reload} disabled={first.loading}>
          {first.loading ? <Spinner /> : <RefreshCw aria-hidden="true" />}
          Refresh
        </Button>
        <Button onClick={() => setShowSend((s) => !s)} aria-expanded={showSend} aria-controls="send-event">
          <Send aria-hidden="true" />
          Send an event
        </Button>
      </PageHeader>

      {showSend && <SendEvent onSent={first.reload} />}

      <LiveTail type={filters.type} hrefOf={eventHref} />

      <Card className="mb-4">
        <CardContent className="pt-4 sm:pt-6">
          <form onSubmit={apply} className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4 lg:items-end" aria-label="Filter events">
            <Field id="f-type" label="Type">
              <Input id="f-type" value={form.type} placeholder="e.g. order.placed" onChange={(e) => setForm({ ...form, type: e.target.value })} />
            </Field>
            <Field id="f-source" label="Source">
              <Input id="f-source" value={form.source} placeholder="e.g. /shop" onChange={(e) => setForm({ ...form, source: e.target.value })} />
            </Field>
            <Field id="f-since" label="Recorded since">
              <Input id="f-since" type="datetime-local" step="1" value={form.since} onChange={(e) => setForm({ ...form, since: e.target.value })} />
            </Field>
            <div className="flex gap-2">
              <Button type="submit">Apply filters</Button>
              {filtered && (
                <Button
                  variant="ghost"
                  onClick={() => {
                    setForm({ type: "", source: "", since: "" });
                    setParams({});
                  }}
                >
                  Clear
                </Button>
              )}
            </div>
          </form>
        </CardContent>
      </Card>

      <ErrorAlert error={first.error} title="Could not read the events" />
      {first.loading && !first.data ? (
        <Progress label="Loading events…" />
      ) : events.length === 0 && !first.error ? (
        filtered ? (
          <EmptyState title="No event matches these filters">Clear the filters, or widen the time.</EmptyState>
        ) : (
          <EmptyState title="No events yet">
            <p>
              Post one with <code>curl</code> to <code>/v1/events</code> with your App's key and secret (docs/api.md), or
              use <strong>Send an event</strong> above. Events appear here once they are stored.
            </p>
          </EmptyState>
        )
      ) : (
        <Card>
          <Table aria-label="Events">
            <THead>
              <TR>
                <TH>Id</TH>
                <TH>Type</TH>
                <TH>Source</TH>
                <TH className="hidden sm:table-cell">Time</TH>
                <TH className="hidden lg:table-cell">Subject</TH>
              </TR>
            </THead>
            <TBody>
              {events.map((ev) => (
                <TR key={`${ev.source}\u0000${ev.id}`}>
                  <TD className="max-w-48 truncate font-mono text-xs">
                    <Link className="text-primary underline underline-offset-2 hover:decoration-2" to={eventHref(ev.source, ev.id)}>
                      {ev.id}
                    </Link>
                  </TD>
                  <TD className="font-medium">{ev.type}</TD>
                  <TD className="max-w-40 truncate">{ev.source}</TD>
                  <TD className="hidden sm:table-cell">{formatTime(ev.time)}</TD>
                  <TD className="hidden lg:table-cell">{ev.subject ?? "—"}</TD>
                </TR>
              ))}
            </TBody>
          </Table>
          {next && (
            <div className="border-t p-3">
              <Button variant="outline" onClick={() => void more()} disabled={loadingMore}>
                {loadingMore && <Spinner />}
                Load more
              </Button>
            </div>
          )}
        </Card>
      )}
    </>
  );
}

/** SendEvent posts one structured CloudEvent through the API, as the App. */
function SendEvent({ onSent }: { onSent: () => void }) {
  const [type, setType] = React.useState("order.placed");
  const [source, setSource] = React.useState("/console");
  const [data, setData] = React.useState('{\n  "total": 12\n}');
  const [sent, setSent] = React.useState<{ id: string; source: string; status: string } | null>(null);
  const [dataError, setDataError] = React.useState("");
  const action = useAction(async (ev: CloudEvent) =>
    api<{ results: { id: string; source: string; status: string }[] }>("POST", "/v1/events", ev, {
      contentType: "application/cloudevents+json",
    }),
  );
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    let parsed: unknown;
    try {
      parsed = data.trim() ? JSON.parse(data) : undefined;
      setDataError("");
    } catch (err) {
      setDataError(`Not JSON: ${(err as Error).message}`);
      return;
    }
    const id = `console-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const res = await action.run({ specversion: "1.0", id, source, type, data: parsed });
    if (res) {
      setSent(res.results[0]);
      onSent();
    }
  };
  return (
    <Card id="send-event" className="mb-4">
      <CardHeader>
        <CardTitle>Send an event</CardTitle>
        <CardDescription>Records a CloudEvent as your App, through the same API your services use.</CardDescription>
      </CardHeader>
      <CardContent>
        <form onSubmit={submit} className="grid gap-3 sm:grid-cols-2">
          <Field id="s-type" label="Type">
            <Input id="s-type" value={type} onChange={(e) => setType(e.target.value)} required />
          </Field>
          <Field id="s-source" label="Source">
            <Input id="s-source" value={source} onChange={(e) => setSource(e.target.value)} required />
          </Field>
          <div className="sm:col-span-2">
            <Field id="s-data" label="Data (JSON)" error={dataError}>
              <Textarea id="s-data" rows={4} value={data} aria-invalid={Boolean(dataError)} onChange={(e) => setData(e.target.value)} />
            </Field>
          </div>
          <div className="flex flex-wrap items-center gap-3 sm:col-span-2">
            <Button type="submit" disabled={action.pending}>
              {action.pending && <Spinner />}
              Send
            </Button>
            {sent && (
              <Alert variant="success" className="w-auto py-2">
                <AlertDescription>
                  Event <Link className="font-mono underline" to={eventHref(sent.source, sent.id)}>{sent.id}</Link> {sent.status}.
                </AlertDescription>
              </Alert>
            )}
          </div>
        </form>
        <ErrorAlert error={action.error} title="The event was refused" />
      </CardContent>
    </Card>
  );
}
