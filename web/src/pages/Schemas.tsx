import * as React from "react";
import { Link, useNavigate, useParams } from "react-router";
import { Plus } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Select, Textarea } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { api, ApiError } from "@/lib/api";
import { diffLines, pretty } from "@/lib/diff";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { CompatResult, Difference, SchemaVersion } from "@/lib/types";
import { cn, formatTime } from "@/lib/utils";

const enc = encodeURIComponent;

const exampleSchema = `{
  "type": "object",
  "properties": {
    "order_id": { "type": "string" },
    "total": { "type": "number", "minimum": 0 }
  },
  "required": ["order_id", "total"]
}`;

export function Schemas() {
  useTitle("Schemas");
  const subjects = useAsync((signal) => api<string[]>("GET", "/v1/registry/subjects", undefined, { signal }), []);
  const [adding, setAdding] = React.useState(false);
  return (
    <>
      <PageHeader title="Schemas" description="The registry of your event types: each subject is a type, with numbered versions checked for compatibility.">
        <Button onClick={() => setAdding((a) => !a)} aria-expanded={adding} aria-controls="new-subject">
          <Plus aria-hidden="true" />
          Register a schema
        </Button>
      </PageHeader>
      {adding && <NewSubject />}
      <ErrorAlert error={subjects.error} title="Could not read the registry" />
      {subjects.loading && !subjects.data ? (
        <Progress label="Loading subjects…" />
      ) : subjects.data && subjects.data.length === 0 ? (
        <EmptyState title="No schemas yet">
          Register a JSON Schema for an event type with <strong>Register a schema</strong>; events of that type are then
          checked against it at ingest.
        </EmptyState>
      ) : (
        subjects.data && (
          <Card>
            <Table aria-label="Subjects">
              <THead>
                <TR>
                  <TH>Subject (event type)</TH>
                </TR>
              </THead>
              <TBody>
                {subjects.data.map((s) => (
                  <TR key={s}>
                    <TD>
                      <Link className="font-medium text-primary underline underline-offset-2 hover:decoration-2" to={`/schemas/${enc(s)}`}>
                        {s}
                      </Link>
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

function NewSubject() {
  const navigate = useNavigate();
  const [subject, setSubject] = React.useState("");
  const [schema, setSchema] = React.useState(exampleSchema);
  const action = useAction(async () => {
    await api("POST", `/v1/registry/subjects/${enc(subject.trim())}/versions`, { schema });
    navigate(`/schemas/${enc(subject.trim())}`);
  });
  return (
    <Card id="new-subject" className="mb-4">
      <CardHeader>
        <CardTitle>Register a schema</CardTitle>
        <CardDescription>The subject is the event type the schema describes. JSON Schema draft 2020-12 or draft-07.</CardDescription>
      </CardHeader>
      <CardContent>
        <form
          className="flex flex-col gap-3"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run();
          }}
        >
          <Field id="n-subject" label="Subject (event type)">
            <Input id="n-subject" value={subject} placeholder="e.g. order.placed" onChange={(e) => setSubject(e.target.value)} required />
          </Field>
          <Field id="n-schema" label="JSON Schema">
            <Textarea id="n-schema" rows={10} value={schema} onChange={(e) => setSchema(e.target.value)} />
          </Field>
          <ErrorAlert error={action.error} title="The schema was refused" />
          <div>
            <Button type="submit" disabled={action.pending || !subject.trim()}>
              {action.pending && <Spinner />}
              Register version 1
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

interface SubjectData {
  versions: number[];
  byVersion: Record<number, SchemaVersion>;
}

async function loadSubject(subject: string, signal: AbortSignal): Promise<SubjectData> {
  const versions = await api<number[]>("GET", `/v1/registry/subjects/${enc(subject)}/versions`, undefined, { signal });
  const all = await Promise.all(
    versions.map((v) => api<SchemaVersion>("GET", `/v1/registry/subjects/${enc(subject)}/versions/${v}`, undefined, { signal })),
  );
  return { versions, byVersion: Object.fromEntries(all.map((s) => [s.version, s])) };
}

export function SchemaSubject() {
  const { subject = "" } = useParams();
  useTitle(`Schema ${subject}`);
  const data = useAsync((signal) => loadSubject(subject, signal), [subject]);
  const [left, setLeft] = React.useState<number>(0);
  const [right, setRight] = React.useState<number>(0);
  React.useEffect(() => {
    const vs = data.data?.versions ?? [];
    if (vs.length) {
      setRight(vs[vs.length - 1]);
      setLeft(vs.length > 1 ? vs[vs.length - 2] : vs[0]);
    }
  }, [data.data]);
  const latest = data.data && data.data.byVersion[data.data.versions[data.data.versions.length - 1]];

  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/schemas" className="text-primary underline underline-offset-2 hover:decoration-2">
          Schemas
        </Link>{" "}
        / {subject}
      </nav>
      <PageHeader title={subject} description="Versions of this event type's schema, side by side, and a new version checked before it is registered.">
        {latest?.platform && <Badge variant="secondary">platform schema, read-only</Badge>}
      </PageHeader>
      {data.error instanceof ApiError && data.error.status === 404 ? (
        <EmptyState title="No such subject">
          Nothing is registered under <code>{subject}</code>. <Link to="/schemas" className="text-primary underline">Back to the schemas</Link>.
        </EmptyState>
      ) : (
        <ErrorAlert error={data.error} title="Could not read the subject" />
      )}
      {data.loading && !data.data && <Progress label="Loading versions…" />}
      {data.data && latest && (
        <div className="flex flex-col gap-4">
          <Card>
            <CardHeader>
              <CardTitle>Compare versions</CardTitle>
              <CardDescription>
                {data.data.versions.length} version{data.data.versions.length === 1 ? "" : "s"}; latest v{latest.version}, registered {formatTime(latest.created_at)}, <span className="font-mono">{latest.dataschema}</span>
              </CardDescription>
            </CardHeader>
            <CardContent>
              <div className="mb-3 flex flex-wrap gap-3">
                <Field id="cmp-left" label="Older">
                  <Select id="cmp-left" value={left} onChange={(e) => setLeft(Number(e.target.value))} className="w-32">
                    {data.data.versions.map((v) => (
                      <option key={v} value={v}>
                        version {v}
                      </option>
                    ))}
                  </Select>
                </Field>
                <Field id="cmp-right" label="Newer">
                  <Select id="cmp-right" value={right} onChange={(e) => setRight(Number(e.target.value))} className="w-32">
                    {data.data.versions.map((v) => (
                      <option key={v} value={v}>
                        version {v}
                      </option>
                    ))}
                  </Select>
                </Field>
              </div>
              {left && right && data.data.byVersion[left] && data.data.byVersion[right] && (
                <VersionDiff subject={subject} older={data.data.byVersion[left]} newer={data.data.byVersion[right]} />
              )}
            </CardContent>
          </Card>
          {!latest.platform && <NewVersion subject={subject} latest={latest} onRegistered={data.reload} />}
        </div>
      )}
    </>
  );
}

/** VersionDiff shows two versions side by side and names each change the compatibility checker finds. */
function VersionDiff({ subject, older, newer }: { subject: string; older: SchemaVersion; newer: SchemaVersion }) {
  const rows = React.useMemo(() => diffLines(pretty(older.schema), pretty(newer.schema)), [older, newer]);
  const changes = useAsync(
    (signal) =>
      older.version === newer.version
        ? Promise.resolve<CompatResult>({ is_compatible: true, differences: [] })
        : api<CompatResult>("POST", `/v1/registry/compatibility/subjects/${enc(subject)}/versions/${older.version}`, { schema: newer.schema }, { signal }),
    [subject, older.version, newer.version],
  );
  const cell = (kind: string, side: "l" | "r") =>
    cn(
      "px-2 font-mono text-xs whitespace-pre",
      kind === "changed" && "bg-amber-100",
      kind === "removed" && side === "l" && "bg-red-100",
      kind === "added" && side === "r" && "bg-green-100",
    );
  return (
    <div className="flex flex-col gap-4">
      <div className="overflow-x-auto rounded-md border" role="region" aria-label={`Version ${older.version} and version ${newer.version} side by side`} tabIndex={0}>
        <table className="w-full border-collapse text-left" data-testid="schema-diff">
          <thead>
            <tr className="border-b bg-muted text-xs">
              <th scope="col" className="w-1/2 px-2 py-1 font-medium">Version {older.version}</th>
              <th scope="col" className="w-1/2 border-l px-2 py-1 font-medium">Version {newer.version}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                <td className={cell(r.kind, "l")}>
                  {r.kind === "removed" || r.kind === "changed" ? <span className="sr-only">removed: </span> : null}
                  {r.left ?? ""}
                </td>
                <td className={cn(cell(r.kind, "r"), "border-l")}>
                  {r.kind === "added" || r.kind === "changed" ? <span className="sr-only">added: </span> : null}
                  {r.right ?? ""}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div>
        <h3 className="mb-2 font-medium">What changed</h3>
        {changes.loading && <Progress label="Asking the compatibility checker…" className="py-2" />}
        <ErrorAlert error={changes.error} />
        {changes.data && <Differences list={changes.data.differences ?? []} />}
      </div>
    </div>
  );
}

function Differences({ list }: { list: Difference[] }) {
  if (list.length === 0) return <p className="text-sm text-muted-foreground">No difference.</p>;
  return (
    <Table aria-label="Changes">
      <THead>
        <TR>
          <TH>Change</TH>
          <TH>Where</TH>
          <TH>Compatible</TH>
          <TH className="hidden md:table-cell">Meaning</TH>
        </TR>
      </THead>
      <TBody>
        {list.map((d, i) => (
          <TR key={i}>
            <TD>
              <Badge variant="outline" className="font-mono">
                {d.type}
              </Badge>
            </TD>
            <TD className="font-mono text-xs break-all">{d.pointer}</TD>
            <TD>{d.compatible ? <Badge variant="success">yes</Badge> : <Badge variant="destructive">no</Badge>}</TD>
            <TD className="hidden text-xs md:table-cell">{d.message}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}

/** NewVersion registers the next version, after checking it against the subject's compatibility mode. */
function NewVersion({ subject, latest, onRegistered }: { subject: string; latest: SchemaVersion; onRegistered: () => void }) {
  const [schema, setSchema] = React.useState(pretty(latest.schema));
  const [check, setCheck] = React.useState<CompatResult | null>(null);
  const [done, setDone] = React.useState<number | null>(null);
  React.useEffect(() => {
    setSchema(pretty(latest.schema));
    setCheck(null);
  }, [latest]);
  const runCheck = useAction(async () => {
    const res = await api<CompatResult>("POST", `/v1/registry/compatibility/subjects/${enc(subject)}/versions`, { schema });
    setCheck(res);
    return res;
  });
  const register = useAction(async () => {
    const res = await runCheck.run();
    if (!res || !res.is_compatible) return;
    const out = await api<{ version: number; created: boolean }>("POST", `/v1/registry/subjects/${enc(subject)}/versions`, { schema });
    setDone(out.version);
    onRegistered();
  });
  return (
    <Card>
      <CardHeader>
        <CardTitle>Register a new version</CardTitle>
        <CardDescription>Edit the schema; it is checked against the subject's compatibility mode before it is registered.</CardDescription>
      </CardHeader>
      <CardContent className="flex flex-col gap-3">
        <Field id="nv-schema" label="JSON Schema of the new version">
          <Textarea
            id="nv-schema"
            rows={12}
            value={schema}
            onChange={(e) => {
              setSchema(e.target.value);
              setCheck(null);
              setDone(null);
            }}
          />
        </Field>
        <div className="flex flex-wrap gap-2">
          <Button variant="outline" onClick={() => void runCheck.run()} disabled={runCheck.pending || register.pending}>
            {runCheck.pending && !register.pending && <Spinner />}
            Check compatibility
          </Button>
          <Button onClick={() => void register.run()} disabled={register.pending}>
            {register.pending && <Spinner />}
            Check and register
          </Button>
        </div>
        <ErrorAlert error={runCheck.error ?? register.error} />
        {check && (
          <Alert variant={check.is_compatible ? "success" : "destructive"}>
            <AlertTitle>{check.is_compatible ? "Compatible" : "Not compatible: not registered"}</AlertTitle>
            <AlertDescription>
              {(check.messages ?? []).map((m, i) => (
                <p key={i}>{m}</p>
              ))}
              {check.differences && check.differences.length > 0 && (
                <div className="mt-2 text-foreground">
                  <Differences list={check.differences} />
                </div>
              )}
            </AlertDescription>
          </Alert>
        )}
        {done !== null && (
          <Alert variant="success">
            <AlertDescription>Registered as version {done}.</AlertDescription>
          </Alert>
        )}
      </CardContent>
    </Card>
  );
}
