import * as React from "react";
import { Loader2, Inbox } from "lucide-react";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { errorText } from "@/lib/api";
import { cn } from "@/lib/utils";

/** PageHeader is the top of a page: its one h1, a line on what it is for, and its actions. */
export function PageHeader({ title, description, children }: { title: string; description?: React.ReactNode; children?: React.ReactNode }) {
  return (
    <div className="mb-6 flex flex-col gap-3 sm:flex-row sm:items-end sm:justify-between">
      <div className="min-w-0">
        <h1 className="text-2xl font-semibold tracking-tight break-words">{title}</h1>
        {description && <p className="mt-1 text-sm text-muted-foreground">{description}</p>}
      </div>
      {children && <div className="flex flex-wrap gap-2">{children}</div>}
    </div>
  );
}

/** Progress says that something is under way; it appears for anything that takes a while. */
export function Progress({ label = "Loading…", className }: { label?: string; className?: string }) {
  return (
    <div role="status" aria-live="polite" className={cn("flex items-center gap-2 py-6 text-sm text-muted-foreground", className)}>
      <Loader2 className="size-4 animate-spin" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/** Spinner is the small progress mark inside a busy button. */
export function Spinner() {
  return <Loader2 className="animate-spin" aria-hidden="true" />;
}

export function ErrorAlert({ error, title = "That did not work" }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <Alert variant="destructive" className="my-3">
      <AlertTitle>{title}</AlertTitle>
      <AlertDescription className="whitespace-pre-wrap">{errorText(error)}</AlertDescription>
    </Alert>
  );
}

/** EmptyState says there is nothing here yet and what to do next. */
export function EmptyState({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="flex flex-col items-center gap-2 rounded-lg border border-dashed bg-background px-4 py-10 text-center">
      <Inbox className="size-8 text-muted-foreground" aria-hidden="true" />
      <h2 className="text-base font-semibold">{title}</h2>
      <div className="max-w-prose text-sm text-muted-foreground [&_code]:rounded [&_code]:bg-muted [&_code]:px-1 [&_code]:text-foreground">
        {children}
      </div>
    </div>
  );
}

/** Code shows JSON or text in a scrollable block. */
export function Code({ children, className, label }: { children: React.ReactNode; className?: string; label?: string }) {
  return (
    <pre
      tabIndex={0}
      aria-label={label}
      className={cn("max-h-96 overflow-auto rounded-md border bg-muted p-3 font-mono text-xs leading-relaxed whitespace-pre", className)}
    >
      {children}
    </pre>
  );
}

export function json(v: unknown): string {
  return JSON.stringify(v, null, 2);
}

/** Field is a label with its control, a hint and an error. */
export function Field({
  id, label, hint, error, children,
}: { id: string; label: string; hint?: React.ReactNode; error?: React.ReactNode; children: React.ReactNode }) {
  return (
    <div className="flex flex-col gap-1.5">
      <label htmlFor={id} className="text-sm font-medium">
        {label}
      </label>
      {children}
      {hint && !error && (
        <p id={`${id}-hint`} className="text-xs text-muted-foreground">
          {hint}
        </p>
      )}
      {error && (
        <div id={`${id}-error`} className="text-xs text-destructive">
          {error}
        </div>
      )}
    </div>
  );
}
