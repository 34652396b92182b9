import * as React from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { Input, Select } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { EmptyState, ErrorAlert, Field, PageHeader, Progress } from "@/components/common";
import { api, qs, type Page } from "@/lib/api";
import { useAsync, useTitle } from "@/lib/hooks";
import type { Job } from "@/lib/types";
import { formatTime } from "@/lib/utils";

const states = ["", "available", "scheduled", "running", "retryable", "completed", "discarded", "cancelled"];

function variant(s: string) {
  if (s === "completed") return "success";
  if (s === "discarded" || s === "cancelled") return "destructive";
  if (s === "retryable") return "warning";
  return "secondary";
}

export function Jobs() {
  useTitle("Jobs");
  const [state, setState] = React.useState("");
  const [kind, setKind] = React.useState("");
  const [applied, setApplied] = React.useState({ state: "", kind: "" });
  const jobs = useAsync((signal) => api<Page<Job>>("GET", `/admin/v1/jobs${qs({ ...applied, limit: 200 })}`, undefined, { signal }), [applied.state, applied.kind]);
  return (
    <>
      <PageHeader title="Jobs" description="The background job engine: webhook deliveries, scheduled rule actions, retries of dead-lettered jobs." />
      <Card className="mb-4">
        <CardContent className="pt-4 sm:pt-6">
          <form
            className="grid gap-3 sm:grid-cols-3 sm:items-end"
            aria-label="Filter jobs"
            onSubmit={(e) => {
              e.preventDefault();
              setApplied({ state, kind });
            }}
          >
            <Field id="j-state" label="State">
              <Select id="j-state" value={state} onChange={(e) => setState(e.target.value)}>
                {states.map((s) => (
                  <option key={s} value={s}>
                    {s || "any"}
                  </option>
                ))}
              </Select>
            </Field>
            <Field id="j-kind" label="Kind">
              <Input id="j-kind" value={kind} placeholder="e.g. rules.webhook" onChange={(e) => setKind(e.target.value)} />
            </Field>
            <div>
              <Button type="submit">Apply filters</Button>
            </div>
          </form>
        </CardContent>
      </Card>
      <ErrorAlert error={jobs.error} title="Could not read the jobs" />
      {jobs.loading && !jobs.data ? (
        <Progress label="Loading jobs…" />
      ) : jobs.data && jobs.data.items.length === 0 ? (
        <EmptyState title="No jobs">Nothing matches. Jobs appear when rules call webhooks or schedule actions.</EmptyState>
      ) : (
        jobs.data && (
          <Card>
            <Table aria-label="Jobs">
              <THead>
                <TR>
                  <TH>Id</TH>
                  <TH>Kind</TH>
                  <TH>State</TH>
                  <TH>Attempts</TH>
                  <TH className="hidden md:table-cell">Scheduled</TH>
                  <TH className="hidden lg:table-cell">Last error</TH>
                </TR>
              </THead>
              <TBody>
                {jobs.data.items.map((j) => (
                  <TR key={j.id}>
                    <TD>{j.id}</TD>
                    <TD className="font-mono text-xs">{j.kind}</TD>
                    <TD>
                      <Badge variant={variant(j.state)}>{j.state}</Badge>
                    </TD>
                    <TD>
                      {j.attempt}/{j.max_attempts}
                    </TD>
                    <TD className="hidden text-xs md:table-cell">{formatTime(j.scheduled_at)}</TD>
                    <TD className="hidden max-w-72 truncate text-xs lg:table-cell" title={j.last_error}>
                      {j.last_error || "—"}
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
