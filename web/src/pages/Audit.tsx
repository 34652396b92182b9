import * as React from "react";
import { Link } from "react-router";
import { ShieldCheck } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { EmptyState, ErrorAlert, PageHeader, Progress, Spinner } from "@/components/common";
import { api, qs, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { AuditEntry, VerifyResult } from "@/lib/types";
import { chainProblem, verifyAll, type VerifyPage } from "@/lib/verify";
import { formatTime } from "@/lib/utils";
import { eventHref } from "./Events";

export function Audit() {
  useTitle("Audit");
  const [pages, setPages] = React.useState<AuditEntry[][]>([]);
  const [next, setNext] = React.useState<string | null>(null);
  const first = useAsync((signal) => api<Page<AuditEntry>>("GET", "/v1/audit?limit=100", undefined, { signal }), []);
  React.useEffect(() => {
    if (first.data) {
      setPages([first.data.items]);
      setNext(first.data.next_cursor);
    }
  }, [first.data]);
  const more = useAction(async () => {
    const p = await api<Page<AuditEntry>>("GET", `/v1/audit${qs({ limit: 100, cursor: next })}`);
    setPages((ps) => [...ps, p.items]);
    setNext(p.next_cursor);
  });
  const [result, setResult] = React.useState<VerifyResult | null>(null);
  // A long chain is verified over several requests, each handing back a cursor.
  const verify = useAction(async () => setResult(await verifyAll((cursor) => api<VerifyPage>("GET", `/v1/audit/verify${qs({ cursor })}`))));
  const entries = pages.flat();
  const chain = result?.chains[0];
  const problem = chain ? chainProblem(chain) : null;

  return (
    <>
      <PageHeader
        title="Audit"
        description="Your App's audit log: one hash-chained, append-only entry per event. Verifying recomputes every hash from the first entry."
      >
        <Button onClick={() => void verify.run()} disabled={verify.pending}>
          {verify.pending ? <Spinner /> : <ShieldCheck aria-hidden="true" />}
          Verify the chain
        </Button>
      </PageHeader>
      <ErrorAlert error={verify.error} title="Verification failed to run" />
      {verify.pending && <Progress label="Recomputing every hash of the chain…" />}
      {result && (
        <Alert variant={result.ok ? "success" : "destructive"} className="mb-4" data-testid="verify-result">
          <AlertTitle>{result.ok ? "The chain verifies" : chain?.break ? "The chain is broken" : "The log is incomplete"}</AlertTitle>
          <AlertDescription>
            {problem
              ? `${problem.charAt(0).toUpperCase()}${problem.slice(1)}.`
              : `${chain?.entries ?? 0} entries checked: every hash matches its entry and the one before it.`}
          </AlertDescription>
        </Alert>
      )}
      <ErrorAlert error={first.error} title="Could not read the audit log" />
      {first.loading && !first.data ? (
        <Progress label="Loading the audit log…" />
      ) : entries.length === 0 ? (
        <EmptyState title="The audit log is empty">Every event your App records gets an entry here once the audit consumer has seen it.</EmptyState>
      ) : (
        <Card>
          <Table aria-label="Audit entries">
            <THead>
              <TR>
                <TH>#</TH>
                <TH>Event</TH>
                <TH className="hidden sm:table-cell">Actor</TH>
                <TH className="hidden md:table-cell">Action</TH>
                <TH className="hidden lg:table-cell">Recorded</TH>
                <TH className="hidden lg:table-cell">Hash</TH>
              </TR>
            </THead>
            <TBody>
              {entries.map((e) => (
                <TR key={e.seq}>
                  <TD>{e.seq}</TD>
                  <TD className="max-w-56">
                    <Link className="block truncate font-mono text-xs text-primary underline" to={eventHref(e.event_source, e.event_id)}>
                      {e.event_id}
                    </Link>
                    <span className="text-xs text-muted-foreground">{e.event_type}</span>
                  </TD>
                  <TD className="hidden font-mono text-xs sm:table-cell">{e.actor_id || "—"}</TD>
                  <TD className="hidden text-xs md:table-cell">{e.action || "—"}</TD>
                  <TD className="hidden text-xs lg:table-cell">{formatTime(e.recorded_at)}</TD>
                  <TD className="hidden font-mono text-xs lg:table-cell">{e.hash.slice(0, 12)}…</TD>
                </TR>
              ))}
            </TBody>
          </Table>
          {next && (
            <div className="border-t p-3">
              <Button variant="outline" onClick={() => void more.run()} disabled={more.pending}>
                {more.pending && <Spinner />}
                Load more
              </Button>
            </div>
          )}
        </Card>
      )}
    </>
  );
}
