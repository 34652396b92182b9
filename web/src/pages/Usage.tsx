import * as React from "react";
import { Plus, RefreshCw } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Select } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { api, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import { formatTime } from "@/lib/utils";

interface Meter {
  id: string;
  slug: string;
  description?: string;
  event_type: string;
  aggregation: string;
  value_property?: string;
  group_by: Record<string, string>;
  created_at: string;
}

interface UsageRow {
  value: number;
  window_start: string;
  window_end: string;
  customer?: string;
  group_by?: Record<string, string>;
}

interface Usage {
  meter: string;
  from: string;
  to: string;
  window: string;
  tz: string;
  data: UsageRow[];
}

const windows = ["MINUTE", "HOUR", "DAY", "MONTH"] as const;
const spans: Record<(typeof windows)[number], number> = { MINUTE: 3600e3, HOUR: 2 * 86400e3, DAY: 31 * 86400e3, MONTH: 365 * 86400e3 };

export function UsagePage() {
  useTitle("Usage");
  const meters = useAsync((signal) => api<Page<Meter>>("GET", "/v1/meters?limit=200", undefined, { signal }), []);
  const [adding, setAdding] = React.useState(false);
  return (
    <>
      <PageHeader title="Usage" description="Meters count your events (sum, count, unique count, average, min, max, latest); each chart shows one meter per window.">
        <Button onClick={() => setAdding((a) => !a)} aria-expanded={adding} aria-controls="new-meter">
          <Plus aria-hidden="true" />
          New meter
        </Button>
      </PageHeader>
      {adding && (
        <NewMeter
          onCreated={() => {
            setAdding(false);
            meters.reload();
          }}
        />
      )}
      <ErrorAlert error={meters.error} title="Could not read the meters" />
      {meters.loading && !meters.data ? (
        <Progress label="Loading meters…" />
      ) : meters.data && meters.data.items.length === 0 ? (
        <EmptyState title="No meters yet">
          Create one with <strong>New meter</strong>: for example, the sum of <code>data.tokens</code> over <code>ai.completion</code> events.
        </EmptyState>
      ) : (
        <div className="flex flex-col gap-4">
          {meters.data?.items.map((m) => (
            <MeterUsage key={m.slug} meter={m} />
          ))}
        </div>
      )}
    </>
  );
}

function NewMeter({ onCreated }: { onCreated: () => void }) {
  const [slug, setSlug] = React.useState("");
  const [type, setType] = React.useState("");
  const [agg, setAgg] = React.useState("COUNT");
  const [prop, setProp] = React.useState("");
  const create = useAction(async () => {
    const body: Record<string, unknown> = { slug: slug.trim(), event_type: type.trim(), aggregation: agg };
    if (agg !== "COUNT" && prop.trim()) body.value_property = prop.trim();
    await api("POST", "/v1/meters", body);
    onCreated();
  });
  return (
    <Card id="new-meter" className="mb-4">
      <CardHeader>
        <CardTitle>New meter</CardTitle>
        <CardDescription>Paths are JSONPath into the event's data, e.g. $.tokens.</CardDescription>
      </CardHeader>
      <CardContent>
        <form
          className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4 lg:items-end"
          onSubmit={(e) => {
            e.preventDefault();
            void create.run();
          }}
        >
          <Field id="m-slug" label="Slug">
            <Input id="m-slug" value={slug} placeholder="e.g. tokens" onChange={(e) => setSlug(e.target.value)} required />
          </Field>
          <Field id="m-type" label="Event type">
            <Input id="m-type" value={type} placeholder="e.g. ai.completion" onChange={(e) => setType(e.target.value)} required />
          </Field>
          <Field id="m-agg" label="Aggregation">
            <Select id="m-agg" value={agg} onChange={(e) => setAgg(e.target.value)}>
              {["COUNT", "SUM", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"].map((a) => (
                <option key={a}>{a}</option>
              ))}
            </Select>
          </Field>
          <Field id="m-prop" label="Value property">
            <Input id="m-prop" value={prop} placeholder="e.g. $.tokens" disabled={agg === "COUNT"} onChange={(e) => setProp(e.target.value)} />
          </Field>
          <div className="sm:col-span-2 lg:col-span-4">
            <ErrorAlert error={create.error} title="The meter was refused" />
            <Button type="submit" disabled={create.pending || !slug.trim() || !type.trim()}>
              {create.pending && <Spinner />}
              Create meter
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

function MeterUsage({ meter }: { meter: Meter }) {
  const [win, setWin] = React.useState<(typeof windows)[number]>("HOUR");
  const usage = useAsync(
    (signal) => {
      const to = new Date();
      const from = new Date(to.getTime() - spans[win]);
      return api<Usage>("GET", `/v1/meters/${encodeURIComponent(meter.slug)}/usage${qs({ from: from.toISOString(), to: to.toISOString(), window: win })}`, undefined, { signal });
    },
    [meter.slug, win],
  );
  const total = (usage.data?.data ?? []).reduce((a, r) => a + Number(r.value), 0);
  return (
    <Card data-testid={`meter-${meter.slug}`}>
      <CardHeader className="flex-row flex-wrap items-end justify-between gap-3">
        <div>
          <CardTitle className="flex items-center gap-2">
            {meter.slug} <Badge variant="secondary">{meter.aggregation}</Badge>
          </CardTitle>
          <CardDescription>
            {meter.description ? `${meter.description}. ` : ""}
            <span className="font-mono">{meter.event_type}</span>
            {meter.value_property ? <> · <span className="font-mono">{meter.value_property}</span></> : null}
          </CardDescription>
        </div>
        <div className="flex gap-1" role="group" aria-label={`Window of ${meter.slug}`}>
          {windows.map((w) => (
            <Button key={w} size="sm" variant={w === win ? "default" : "outline"} aria-pressed={w === win} onClick={() => setWin(w)}>
              {w.toLowerCase()}
            </Button>
          ))}
          <Button size="sm" variant="ghost" onClick={usage.reload} disabled={usage.loading} aria-label={`Refresh ${meter.slug}`}>
            {usage.loading ? <Spinner /> : <RefreshCw aria-hidden="true" />}
          </Button>
        </div>
      </CardHeader>
      <CardContent>
        <ErrorAlert error={usage.error} />
        {usage.loading && !usage.data && <Progress className="py-2" label="Counting…" />}
        {usage.data && usage.data.data.length === 0 && <p className="text-sm text-muted-foreground">Nothing counted in this range yet.</p>}
        {usage.data && usage.data.data.length > 0 && (
          <>
            <Bars rows={usage.data.data} from={usage.data.from} to={usage.data.to} label={`${meter.slug} per ${win.toLowerCase()}`} />
            <p className="mt-2 text-sm text-muted-foreground">
              {meter.aggregation === "SUM" || meter.aggregation === "COUNT" ? `Total in range: ${total}` : `${usage.data.data.length} windows`}
            </p>
            <details className="mt-2 text-sm">
              <summary className="cursor-pointer text-primary">The numbers</summary>
              <Table aria-label={`${meter.slug} usage`}>
                <THead>
                  <TR>
                    <TH>From</TH>
                    <TH>To</TH>
                    <TH>Value</TH>
                  </TR>
                </THead>
                <TBody>
                  {usage.data.data.map((r, i) => (
                    <TR key={i}>
                      <TD className="text-xs">{formatTime(r.window_start)}</TD>
                      <TD className="text-xs">{formatTime(r.window_end)}</TD>
                      <TD className="font-mono">{String(r.value)}</TD>
                    </TR>
                  ))}
                </TBody>
              </Table>
            </details>
          </>
        )}
      </CardContent>
    </Card>
  );
}

/** Bars draws one bar per window on a time axis from..to (empty windows have
 * no row and no bar); the table below holds the same numbers for screen readers. */
function Bars({ rows, from, to, label }: { rows: UsageRow[]; from: string; to: string; label: string }) {
  const max = Math.max(...rows.map((r) => Number(r.value)), 1);
  const w = 600;
  const h = 160;
  const t0 = new Date(from).getTime();
  const span = Math.max(new Date(to).getTime() - t0, 1);
  const x = (t: string) => ((new Date(t).getTime() - t0) / span) * w;
  return (
    <svg viewBox={`0 0 ${w} ${h + 20}`} preserveAspectRatio="none" className="h-44 w-full" role="img" aria-label={`Bar chart of ${label}; the numbers are in the table below`}>
      {rows.map((r, i) => {
        const bh = (Number(r.value) / max) * h;
        const x0 = Math.max(0, x(r.window_start));
        const bw = Math.max(Math.min(w, x(r.window_end)) - x0, 2);
        return (
          <rect key={i} x={x0 + bw * 0.1} y={h - bh} width={bw * 0.8} height={Math.max(bh, 1)} className="fill-primary">
            <title>{`${formatTime(r.window_start)}: ${r.value}`}</title>
          </rect>
        );
      })}
      <line x1={0} y1={h} x2={w} y2={h} className="stroke-border" />
      <text x={0} y={h + 16} className="fill-muted-foreground text-[11px]">
        {formatTime(from)}
      </text>
      <text x={w} y={h + 16} textAnchor="end" className="fill-muted-foreground text-[11px]">
        {formatTime(to)}
      </text>
    </svg>
  );
}
