import * as React from "react";
import { Navigate, useNavigate } from "react-router";
import { ScrollText } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader } from "@/components/ui/card";
import { Input } from "@/components/ui/input";
import { Alert, AlertDescription } from "@/components/ui/alert";
import { ErrorAlert, Field, Spinner } from "@/components/common";
import { useAction, useTitle } from "@/lib/hooks";
import { useSession } from "@/lib/session";
import { cn } from "@/lib/utils";

export function SignIn() {
  useTitle("Sign in");
  const { session, signIn, endedReason } = useSession();
  const navigate = useNavigate();
  const [kind, setKind] = React.useState<"tenant" | "operator">("tenant");
  const [key, setKey] = React.useState("");
  const [secret, setSecret] = React.useState("");
  const [token, setToken] = React.useState("");
  const action = useAction(signIn);

  if (session) return <Navigate to="/" replace />;

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const body: Record<string, string> = kind === "tenant" ? { kind, api_key: key.trim(), api_secret: secret.trim() } : { kind, admin_token: token.trim() };
    const s = await action.run(body);
    if (s) navigate(s.kind === "operator" ? "/operator/apps" : "/events", { replace: true });
  };

  return (
    <main id="main" className="flex min-h-screen items-center justify-center p-4">
      <Card className="w-full max-w-md">
        <CardHeader>
          <div className="flex items-center gap-2 text-primary">
            <ScrollText className="size-6" aria-hidden="true" />
            <span className="font-semibold">PROST console</span>
          </div>
          <h1 className="text-xl font-semibold">Sign in</h1>
          <CardDescription>
            As an App, with its key and secret (<code>prost apps create</code> prints them), or as an operator, with the
            admin token.
          </CardDescription>
        </CardHeader>
        <CardContent>
          {endedReason && (
            <Alert className="mb-4">
              <AlertDescription>{endedReason}</AlertDescription>
            </Alert>
          )}
          <form onSubmit={submit} className="flex flex-col gap-4" noValidate>
            <fieldset className="flex flex-col gap-2">
              <legend className="mb-2 text-sm font-medium">Sign in as</legend>
              <div className="grid grid-cols-2 gap-2">
                {(["tenant", "operator"] as const).map((k) => (
                  <label
                    key={k}
                    className={cn(
                      "flex cursor-pointer items-center justify-center gap-2 rounded-md border px-3 py-2 text-sm font-medium has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-ring",
                      kind === k ? "border-primary bg-accent text-accent-foreground" : "bg-background",
                    )}
                  >
                    <input
                      type="radio"
                      name="kind"
                      value={k}
                      checked={kind === k}
                      onChange={() => setKind(k)}
                      className="sr-only"
                    />
                    {k === "tenant" ? "An App" : "Operator"}
                  </label>
                ))}
              </div>
            </fieldset>
            {kind === "tenant" ? (
              <>
                <Field id="api-key" label="App key">
                  <Input id="api-key" name="api_key" autoComplete="username" placeholder="prost_pk_…" value={key} onChange={(e) => setKey(e.target.value)} required />
                </Field>
                <Field id="api-secret" label="App secret">
                  <Input id="api-secret" name="api_secret" type="password" autoComplete="current-password" placeholder="prost_sk_…" value={secret} onChange={(e) => setSecret(e.target.value)} required />
                </Field>
              </>
            ) : (
              <Field id="admin-token" label="Admin token" hint="PROST_ADMIN_TOKEN; prost dev prints it on start.">
                <Input id="admin-token" name="admin_token" type="password" autoComplete="current-password" value={token} onChange={(e) => setToken(e.target.value)} required />
              </Field>
            )}
            <ErrorAlert error={action.error} title="Sign-in failed" />
            <Button type="submit" disabled={action.pending}>
              {action.pending && <Spinner />}
              Sign in
            </Button>
          </form>
        </CardContent>
      </Card>
    </main>
  );
}
