import * as React from "react";
import { RefreshCw, ShieldCheck } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { ErrorAlert, PageHeader, Progress, Spinner } from "@/components/common";
import { api, ApiError, qs } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { VerifyResult } from "@/lib/types";
import { chainProblem, verifyAll, type VerifyPage } from "@/lib/verify";

interface Backlog {
  outbox: { pending: number; oldest_seconds: number };
  consumers: { consumer: string; lag: number; dead_letters: number; applied: number; failed: number }[];
  published: number;
}

interface Health {
  ready: { ok: boolean; detail: string };
  backlog: Backlog;
}

async function loadHealth(signal: AbortSignal): Promise<Health> {
  let ready = { ok: true, detail: "ready" };
  try {
    await api("GET", "/readyz", undefined, { signal });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    ready = { ok: false, detail: e.problem.detail ?? e.message };
  }
  const backlog = await api<Backlog>("GET", "/admin/v1/backlog", undefined, { signal });
  return { ready, backlog };
}

function Stat({ label, value, hint, warn }: { label: string; value: React.ReactNode; hint?: string; warn?: boolean }) {
  return (
    <Card>
      <CardContent className="pt-4 sm:pt-6">
        <p className="text-sm text-muted-foreground">{label}</p>
        <p className={`mt-1 text-3xl font-semibold ${warn ? "text-warning" : ""}`}>{value}</p>
        {hint && <p className="mt-1 text-xs text-muted-foreground">{hint}</p>}
      </CardContent>
    </Card>
  );
}

export function HealthPage() {
  useTitle("Health and backlog");
  const h = useAsync(loadHealth, []);
  // Refresh every 5 seconds while the page is open.
  React.useEffect(() => {
    const t = window.setInterval(h.reload, 5000);
    return () => window.clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const [verify, setVerify] = React.useState<VerifyResult | null>(null);
  // Every App's chain, over as many requests as it takes (each hands back a cursor).
  const runVerify = useAction(async () =>
    setVerify(await verifyAll((cursor) => api<VerifyPage>("GET", `/admin/v1/audit/verify${qs({ cursor })}`))),
  );
  const b = h.data?.backlog;
  const deadTotal = (b?.consumers ?? []).reduce((a, c) => a + c.dead_letters, 0);

  return (
    <>
      <PageHeader title="Health and backlog" description="Readiness, the outbox and each consumer's backlog and dead letters, read from /readyz and /admin/v1/backlog every 5 seconds.">
        <Button variant="outline" onClick={h.reload} disabled={h.loading}>
          {h.loading ? <Spinner /> : <RefreshCw aria-hidden="true" />}
          Refresh
        </Button>
      </PageHeader>
      <ErrorAlert error={h.error} title="Could not read the health" />
      {!h.data && h.loading && <Progress label="Reading readiness and backlog…" />}
      {h.data && (
        <div className="flex flex-col gap-4">
          <Alert variant={h.data.ready.ok ? "success" : "destructive"} data-testid="readiness">
            <AlertTitle>{h.data.ready.ok ? "Ready" : "Not ready"}</AlertTitle>
            <AlertDescription>{h.data.ready.ok ? "Postgres answers and NATS is connected." : h.data.ready.detail}</AlertDescription>
          </Alert>
          <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
            <Stat label="Outbox pending" value={b?.outbox.pending ?? "—"} hint="events stored, not yet published" warn={(b?.outbox.pending ?? 0) > 1000} />
            <Stat label="Oldest pending" value={b ? `${b.outbox.oldest_seconds.toFixed(1)} s` : "—"} hint="age of the oldest unpublished event" warn={(b?.outbox.oldest_seconds ?? 0) > 30} />
            <Stat label="Published" value={b?.published ?? "—"} hint="by this process's relay since start" />
            <Stat label="Dead letters" value={deadTotal} hint="waiting, every consumer" warn={deadTotal > 0} />
          </div>
          <Card>
            <CardHeader>
              <CardTitle>Consumers</CardTitle>
              <CardDescription>Lag is what waits for a consumer: not yet delivered plus delivered and not yet acknowledged.</CardDescription>
            </CardHeader>
            <Table aria-label="Consumers">
              <THead>
                <TR>
                  <TH>Consumer</TH>
                  <TH>Lag</TH>
                  <TH>Dead letters</TH>
                  <TH className="hidden sm:table-cell">Applied</TH>
                  <TH className="hidden sm:table-cell">Failed attempts</TH>
                </TR>
              </THead>
              <TBody>
                {(b?.consumers ?? []).map((c) => (
                  <TR key={c.consumer}>
                    <TD className="font-mono text-xs">{c.consumer}</TD>
                    <TD>{c.lag < 0 ? "—" : c.lag}</TD>
                    <TD>{c.dead_letters ? <Badge variant="destructive">{c.dead_letters}</Badge> : 0}</TD>
                    <TD className="hidden sm:table-cell">{c.applied}</TD>
                    <TD className="hidden sm:table-cell">{c.failed}</TD>
                  </TR>
                ))}
              </TBody>
            </Table>
          </Card>
          <Card>
            <CardHeader>
              <CardTitle>Audit chains</CardTitle>
              <CardDescription>Recompute every App's hash chain from its first entry.</CardDescription>
            </CardHeader>
            <CardContent className="flex flex-col gap-3">
              <div>
                <Button onClick={() => void runVerify.run()} disabled={runVerify.pending}>
                  {runVerify.pending ? <Spinner /> : <ShieldCheck aria-hidden="true" />}
                  Verify every chain
                </Button>
              </div>
              <ErrorAlert error={runVerify.error} />
              {verify && (
                <Alert variant={verify.ok ? "success" : "destructive"}>
                  <AlertTitle>{verify.ok ? `All ${verify.chains.length} chains verify` : "A chain is broken or incomplete"}</AlertTitle>
                  <AlertDescription>
                    {verify.chains
                      .filter((c) => chainProblem(c))
                      .map((c) => (
                        <p key={c.tenant_id}>
                          App {c.tenant_id}: {chainProblem(c)}
                        </p>
                      ))}
                    {verify.ok && `${verify.chains.reduce((a, c) => a + c.entries, 0)} entries checked.`}
                  </AlertDescription>
                </Alert>
              )}
            </CardContent>
          </Card>
        </div>
      )}
    </>
  );
}
