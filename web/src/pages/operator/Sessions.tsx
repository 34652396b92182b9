import * as React from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { EmptyState, ErrorAlert, PageHeader, Progress, Spinner } from "@/components/common";
import { api } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import { useSession } from "@/lib/session";
import { formatTime } from "@/lib/utils";

interface ListedSession {
  session_id: string;
  kind: "tenant" | "operator";
  app_id?: string;
  name: string;
  user_agent: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
}

export function Sessions() {
  useTitle("Console sessions");
  const { session } = useSession();
  const list = useAsync((signal) => api<{ items: ListedSession[] }>("GET", "/admin/v1/console/sessions", undefined, { signal }), []);
  const [revoked, setRevoked] = React.useState<number | null>(null);
  const revoke = useAction(async (body: Record<string, unknown>) => {
    const r = await api<{ revoked: number }>("POST", "/admin/v1/console/sessions/revoke", body);
    setRevoked(r.revoked);
    list.reload();
  });
  return (
    <>
      <PageHeader title="Console sessions" description="Who is signed in to the console. Ending a session signs its browser out at its next request." />
      <ErrorAlert error={revoke.error} />
      {revoked !== null && (
        <Alert variant="success" className="mb-4">
          <AlertDescription>
            {revoked} session{revoked === 1 ? "" : "s"} ended.
          </AlertDescription>
        </Alert>
      )}
      <ErrorAlert error={list.error} title="Could not read the sessions" />
      {list.loading && !list.data ? (
        <Progress label="Loading sessions…" />
      ) : list.data && list.data.items.length === 0 ? (
        <EmptyState title="Nobody is signed in">Sessions appear here when someone signs in to the console.</EmptyState>
      ) : (
        list.data && (
          <Card>
            <Table aria-label="Sessions">
              <THead>
                <TR>
                  <TH>Who</TH>
                  <TH className="hidden md:table-cell">Since</TH>
                  <TH className="hidden md:table-cell">Last seen</TH>
                  <TH className="hidden lg:table-cell">Browser</TH>
                  <TH>End</TH>
                </TR>
              </THead>
              <TBody>
                {list.data.items.map((s) => (
                  <TR key={s.session_id} data-testid={`session-${s.name}`}>
                    <TD>
                      <Badge variant={s.kind === "operator" ? "default" : "secondary"}>{s.kind}</Badge> <span className="font-medium">{s.name}</span>
                      {s.session_id === session?.session_id && <span className="text-xs text-muted-foreground"> (you)</span>}
                    </TD>
                    <TD className="hidden text-xs md:table-cell">{formatTime(s.created_at)}</TD>
                    <TD className="hidden text-xs md:table-cell">{formatTime(s.last_seen_at)}</TD>
                    <TD className="hidden max-w-56 truncate text-xs lg:table-cell" title={s.user_agent}>
                      {s.user_agent}
                    </TD>
                    <TD>
                      <div className="flex flex-wrap gap-2">
                        <Button size="sm" variant="outline" disabled={revoke.pending} onClick={() => void revoke.run({ session_id: s.session_id })}>
                          {revoke.pending && <Spinner />}
                          End
                        </Button>
                        {s.app_id && (
                          <Button size="sm" variant="ghost" disabled={revoke.pending} onClick={() => void revoke.run({ app_id: s.app_id })}>
                            End all of {s.name}
                          </Button>
                        )}
                      </div>
                    </TD>
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
