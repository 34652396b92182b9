import * as React from "react";
import { KeyRound, Plus } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, EmptyState, ErrorAlert, Field, PageHeader, Progress, Spinner } from "@/components/common";
import { api, type Page } from "@/lib/api";
import { useAction, useAsync, useTitle } from "@/lib/hooks";
import type { App, Credentials } from "@/lib/types";
import { formatTime } from "@/lib/utils";

function Secret({ title, creds, onDone }: { title: string; creds: Credentials; onDone: () => void }) {
  return (
    <Alert variant="success" className="mb-4" data-testid="credentials">
      <AlertTitle>{title}</AlertTitle>
      <AlertDescription className="flex flex-col gap-2">
        <p>The secret is shown only now: hand it to the App's owner over a safe channel.</p>
        <Code label="App credentials">{`X-Prost-App-Key: ${creds.api_key}\nX-Prost-App-Secret: ${creds.api_secret}`}</Code>
        <div>
          <Button variant="outline" size="sm" onClick={onDone}>
            I have kept it
          </Button>
        </div>
      </AlertDescription>
    </Alert>
  );
}

/** Confirm asks once more before an action that changes what an App can do. */
function Confirm({ label, question, variant, onConfirm, pending }: {
  label: string; question: string; variant?: "destructive" | "outline"; onConfirm: () => void; pending: boolean;
}) {
  const [asking, setAsking] = React.useState(false);
  if (!asking)
    return (
      <Button size="sm" variant={variant ?? "outline"} onClick={() => setAsking(true)} disabled={pending}>
        {label}
      </Button>
    );
  return (
    <span className="inline-flex flex-wrap items-center gap-2" role="group" aria-label={question}>
      <span className="text-xs">{question}</span>
      <Button
        size="sm"
        variant={variant ?? "default"}
        autoFocus
        onClick={() => {
          setAsking(false);
          onConfirm();
        }}
      >
        Yes, {label.toLowerCase()}
      </Button>
      <Button size="sm" variant="ghost" onClick={() => setAsking(false)}>
        Cancel
      </Button>
    </span>
  );
}

export function Apps() {
  useTitle("Apps");
  const apps = useAsync((signal) => api<Page<App>>("GET", "/admin/v1/apps?limit=1000", undefined, { signal }), []);
  const [name, setName] = React.useState("");
  const [shown, setShown] = React.useState<{ title: string; creds: Credentials } | null>(null);
  const create = useAction(async () => {
    const out = await api<Credentials & { app: App }>("POST", "/admin/v1/apps", { name: name.trim() });
    setShown({ title: `App ${out.app.name} created`, creds: out });
    setName("");
    apps.reload();
  });
  const act = useAction(async (app: App, what: "rotate-secret" | "disable" | "enable") => {
    const out = await api<Credentials | App>("POST", `/admin/v1/apps/${app.app_id}/${what}`);
    if (what === "rotate-secret") setShown({ title: `New secret for ${app.name}`, creds: out as Credentials });
    apps.reload();
  });
  return (
    <>
      <PageHeader title="Apps" description="PROST's tenants. Each App has a key and a secret, and sees only its own data. An App is never deleted, only disabled." />
      {shown && <Secret title={shown.title} creds={shown.creds} onDone={() => setShown(null)} />}
      <Card className="mb-4">
        <CardHeader>
          <CardTitle>Create an App</CardTitle>
          <CardDescription>Its key and secret are shown once, here.</CardDescription>
        </CardHeader>
        <CardContent>
          <form
            className="flex flex-col gap-3 sm:flex-row sm:items-end"
            onSubmit={(e) => {
              e.preventDefault();
              void create.run();
            }}
          >
            <div className="flex-1">
              <Field id="app-name" label="Name">
                <Input id="app-name" value={name} placeholder="e.g. shop" onChange={(e) => setName(e.target.value)} required />
              </Field>
            </div>
            <Button type="submit" disabled={create.pending || !name.trim()}>
              {create.pending ? <Spinner /> : <Plus aria-hidden="true" />}
              Create App
            </Button>
          </form>
          <ErrorAlert error={create.error} title="The App was not created" />
        </CardContent>
      </Card>
      <ErrorAlert error={act.error} />
      <ErrorAlert error={apps.error} title="Could not read the Apps" />
      {apps.loading && !apps.data ? (
        <Progress label="Loading Apps…" />
      ) : apps.data && apps.data.items.length === 0 ? (
        <EmptyState title="No Apps yet">Create the first one above; its owner signs in to the console with its key and secret.</EmptyState>
      ) : (
        apps.data && (
          <Card>
            <Table aria-label="Apps">
              <THead>
                <TR>
                  <TH>Name</TH>
                  <TH>Status</TH>
                  <TH className="hidden md:table-cell">Key</TH>
                  <TH className="hidden lg:table-cell">Secret rotated</TH>
                  <TH>Actions</TH>
                </TR>
              </THead>
              <TBody>
                {apps.data.items.map((a) => (
                  <TR key={a.app_id} data-testid={`app-${a.name}`}>
                    <TD>
                      <div className="font-medium">{a.name}</div>
                      <div className="font-mono text-xs text-muted-foreground break-all">{a.app_id}</div>
                    </TD>
                    <TD>
                      <Badge variant={a.status === "active" ? "success" : "destructive"}>{a.status}</Badge>
                    </TD>
                    <TD className="hidden font-mono text-xs md:table-cell">{a.api_key}</TD>
                    <TD className="hidden text-xs lg:table-cell">{formatTime(a.secret_rotated_at)}</TD>
                    <TD>
                      <div className="flex flex-wrap gap-2">
                        <Confirm
                          label="Rotate secret"
                          question={`The old secret of ${a.name} stops working at once.`}
                          onConfirm={() => void act.run(a, "rotate-secret")}
                          pending={act.pending}
                        />
                        {a.status === "active" ? (
                          <Confirm
                            label="Disable"
                            variant="destructive"
                            question={`${a.name} will be refused everywhere.`}
                            onConfirm={() => void act.run(a, "disable")}
                            pending={act.pending}
                          />
                        ) : (
                          <Button size="sm" variant="outline" onClick={() => void act.run(a, "enable")} disabled={act.pending}>
                            Enable
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
      <p className="mt-4 flex items-center gap-2 text-xs text-muted-foreground">
        <KeyRound className="size-3" aria-hidden="true" /> Disabling, enabling or rotating an App also ends its console sessions.
      </p>
    </>
  );
}
