import * as React from "react";
import { Link, useNavigate } from "react-router";
import { ChevronLeft, ChevronRight, Hammer, Plus, Sparkles, Trash2 } from "lucide-react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Input, Select, Textarea } from "@/components/ui/input";
import { Table, TBody, TD, TH, THead, TR } from "@/components/ui/table";
import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import { Code, ErrorAlert, PageHeader, Progress, Spinner, json } from "@/components/common";
import { api } from "@/lib/api";
import { useAction, useTitle } from "@/lib/hooks";
import { useSession } from "@/lib/session";
import {
  buildPack0, budgetId, defaultBudgets, directions, emptyAnswers, eventNames, exampleAnswers, fieldTypeLabels, fieldTypes, hasPersonal,
  integrationKinds, newEntity, newField, operations, personal, placeOf, pluralOf, routesOf, validateStep,
  type Answers, type CheckResult, type EntityDraft, type FieldDraft, type Run, type StepErrors, type StepName,
} from "@/lib/factory";
import { cn } from "@/lib/utils";

const steps: { name: StepName; label: string; title: string }[] = [
  { name: "describe", label: "Describe", title: "What do you need?" },
  { name: "entities", label: "Records", title: "What does it keep?" },
  { name: "access", label: "Access", title: "Who may do what?" },
  { name: "tenancy", label: "Tenants and systems", title: "Who uses it, and what does it talk to?" },
  { name: "quality", label: "MVP or production", title: "How far should the factory check it?" },
  { name: "retention", label: "Retention", title: "How long are records kept?" },
  { name: "summary", label: "Summary", title: "What the factory will build" },
];

const draftKey = "prost-console-factory-wizard";

function loadDraft(): Answers {
  try {
    const s = sessionStorage.getItem(draftKey);
    if (s) return { ...emptyAnswers(), ...JSON.parse(s) };
  } catch {
    /* a draft that does not parse is dropped */
  }
  return emptyAnswers();
}

/** ctl wires a control to its label's error: aria-invalid and aria-describedby. */
function ctl(id: string, errors: StepErrors, hint?: boolean) {
  const err = errors[id];
  return {
    id,
    "aria-invalid": err ? true : undefined,
    "aria-describedby": err ? `${id}-error` : hint ? `${id}-hint` : undefined,
  } as const;
}

function Err({ id, errors }: { id: string; errors: StepErrors }) {
  if (!errors[id]) return null;
  return (
    <p id={`${id}-error`} className="text-xs text-destructive">
      {errors[id]}
    </p>
  );
}

function Labeled({ id, label, hint, errors, children, className }: {
  id: string; label: string; hint?: React.ReactNode; errors: StepErrors; children: React.ReactNode; className?: string;
}) {
  return (
    <div className={cn("flex min-w-0 flex-col gap-1.5", className)}>
      <label htmlFor={id} className="text-sm font-medium">
        {label}
      </label>
      {children}
      {hint && !errors[id] && (
        <p id={`${id}-hint`} className="text-xs text-muted-foreground">
          {hint}
        </p>
      )}
      <Err id={id} errors={errors} />
    </div>
  );
}

/** Choice is one option of a radio group drawn as a card. */
function Choice({ name, value, checked, onChange, title, children, id }: {
  name: string; value: string; checked: boolean; onChange: () => void; title: string; children?: React.ReactNode; id?: string;
}) {
  return (
    <label
      className={cn(
        "flex cursor-pointer gap-3 rounded-md border p-3 text-sm has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-ring",
        checked ? "border-primary bg-accent text-accent-foreground" : "bg-background",
      )}
    >
      <input id={id} type="radio" name={name} value={value} checked={checked} onChange={onChange} className="mt-0.5 size-4 shrink-0 accent-primary" />
      <span className="flex flex-col gap-1">
        <span className="font-medium">{title}</span>
        {children && <span className="text-muted-foreground">{children}</span>}
      </span>
    </label>
  );
}

export function FactoryWizard() {
  useTitle("New module");
  const navigate = useNavigate();
  const [a, setA] = React.useState<Answers>(loadDraft);
  const [step, setStep] = React.useState<StepName>("describe");
  const [errors, setErrors] = React.useState<StepErrors>({});
  // After a step was refused, its errors follow the answers: each goes away once fixed.
  const [revalidate, setRevalidate] = React.useState(false);
  const [focusId, setFocusId] = React.useState<string | null>(null);
  const heading = React.useRef<HTMLHeadingElement>(null);
  const first = React.useRef(true);

  React.useEffect(() => {
    sessionStorage.setItem(draftKey, JSON.stringify(a));
    if (revalidate && step !== "summary") setErrors(validateStep(step, a));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [a]);

  // A new step: put the focus on its heading (or on the control a problem names).
  React.useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    if (focusId) {
      const el = document.getElementById(focusId);
      if (el) {
        el.focus();
        el.scrollIntoView({ block: "center" });
      }
      setFocusId(null);
      return;
    }
    heading.current?.focus();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [step]);

  const index = steps.findIndex((s) => s.name === step);
  const update = (f: (a: Answers) => Answers) => setA((cur) => f(structuredClone(cur)));

  /** enter prepares a step from the answers so far (sensible defaults). */
  const enter = (to: StepName) => {
    if (to === "quality") {
      update((d) => {
        if (!routesOf(d.entities).some((r) => (d.budgets[r] ?? "").trim())) d.budgets = { ...d.budgets, ...defaultBudgets(d.entities) };
        return d;
      });
    }
    if (to === "retention") {
      update((d) => {
        for (const e of d.entities) {
          if (!hasPersonal(e) || (d.retention[e.name]?.period ?? "").trim()) continue;
          const longest = e.fields.filter(personal).map((f) => f.retention.trim()).sort(byPeriod).pop() ?? "";
          d.retention[e.name] = { period: longest, action: "delete", basis: d.retention[e.name]?.basis ?? "" };
        }
        return d;
      });
    }
    setErrors({});
    setRevalidate(false);
    setStep(to);
  };

  const next = (e: React.FormEvent) => {
    e.preventDefault();
    const errs = validateStep(step, a);
    setErrors(errs);
    const bad = Object.keys(errs);
    setRevalidate(bad.length > 0);
    if (bad.length) {
      document.getElementById(bad[0])?.focus();
      return;
    }
    if (index < steps.length - 1) enter(steps[index + 1].name);
  };

  /** fix goes to where a problem is asked and puts the cursor there. */
  const fix = (to: StepName, id: string, message: string) => {
    setErrors({ [id]: message });
    setRevalidate(true);
    setFocusId(id);
    setStep(to);
  };

  const current = steps[index];
  return (
    <>
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link to="/factory" className="text-primary underline underline-offset-2">
          Factory
        </Link>{" "}
        / New module
      </nav>
      <PageHeader
        title="New module"
        description="Describe the software you need and answer a few questions; the factory writes it, tests it, checks it against its gates and deploys it."
      >
        <Button
          variant="outline"
          onClick={() => {
            setA(exampleAnswers());
            setErrors({});
            setRevalidate(false);
          }}
        >
          <Sparkles aria-hidden="true" />
          Fill in the example
        </Button>
        <Button
          variant="ghost"
          onClick={() => {
            setA(emptyAnswers());
            setErrors({});
            setRevalidate(false);
            setStep("describe");
          }}
        >
          Start over
        </Button>
      </PageHeader>
      <ol aria-label="Steps" className="mb-6 flex flex-wrap gap-2" data-testid="wizard-steps">
        {steps.map((s, i) => (
          <li key={s.name}>
            <button
              type="button"
              onClick={() => (i < index ? enter(s.name) : undefined)}
              aria-current={i === index ? "step" : undefined}
              aria-disabled={i > index ? true : undefined}
              className={cn(
                "flex items-center gap-2 rounded-full border px-3 py-1 text-xs font-medium",
                i === index && "border-primary bg-primary text-primary-foreground",
                i < index && "cursor-pointer bg-background text-foreground hover:bg-accent",
                i > index && "cursor-default bg-muted text-muted-foreground",
              )}
            >
              <span aria-hidden="true">{i + 1}</span>
              {s.label}
              {i < index && <span className="sr-only"> (done)</span>}
            </button>
          </li>
        ))}
      </ol>
      <form onSubmit={next} noValidate>
        <Card>
          <CardHeader>
            <p className="text-xs font-medium text-muted-foreground">
              Step {index + 1} of {steps.length}
            </p>
            <CardTitle>
              <span ref={heading} tabIndex={-1} className="outline-none" data-testid="step-title">
                {current.title}
              </span>
            </CardTitle>
          </CardHeader>
          <CardContent className="flex flex-col gap-5">
            {Object.keys(errors).length > 0 && step !== "summary" && (
              <Alert variant="destructive">
                <AlertDescription>Some answers need a change: each is marked below.</AlertDescription>
              </Alert>
            )}
            {step === "describe" && <Describe a={a} update={update} errors={errors} />}
            {step === "entities" && <Entities a={a} update={update} errors={errors} />}
            {step === "access" && <Access a={a} update={update} errors={errors} />}
            {step === "tenancy" && <Tenancy a={a} update={update} errors={errors} />}
            {step === "quality" && <Quality a={a} update={update} errors={errors} />}
            {step === "retention" && <Retention a={a} update={update} errors={errors} />}
            {step === "summary" && <Summary a={a} onFix={fix} onBuilt={(run) => {
              sessionStorage.removeItem(draftKey);
              navigate(`/factory/runs/${run.id}`);
            }} />}
          </CardContent>
        </Card>
        {step !== "summary" && (
          <div className="mt-4 flex flex-wrap justify-between gap-2">
            <Button variant="outline" onClick={() => index > 0 && enter(steps[index - 1].name)} disabled={index === 0}>
              <ChevronLeft aria-hidden="true" />
              Back
            </Button>
            <Button type="submit">
              Next: {steps[index + 1].label}
              <ChevronRight aria-hidden="true" />
            </Button>
          </div>
        )}
        {step === "summary" && (
          <div className="mt-4">
            <Button variant="outline" onClick={() => enter("retention")}>
              <ChevronLeft aria-hidden="true" />
              Back
            </Button>
          </div>
        )}
      </form>
    </>
  );
}

const periodDays: Record<string, number> = { d: 1, w: 7, m: 30, y: 365 };

function byPeriod(x: string, y: string): number {
  const days = (p: string) => (p === "forever" ? Infinity : Number(p.slice(0, -1)) * (periodDays[p.slice(-1)] ?? 0));
  return days(x) - days(y);
}

interface StepProps {
  a: Answers;
  update: (f: (a: Answers) => Answers) => void;
  errors: StepErrors;
}

function Describe({ a, update, errors }: StepProps) {
  return (
    <>
      <p className="text-sm text-muted-foreground">
        In a sentence or two, what is it for? The factory makes a small service with an HTTP API, its database, its events, tests and
        documentation. Not sure where to start? <strong>Fill in the example</strong> shows a complete inventory module.
      </p>
      <Labeled id="wz-description" label="What it is for" errors={errors} hint="e.g. Stock of items and the suppliers that restock them.">
        <Textarea
          {...ctl("wz-description", errors, true)}
          className="min-h-20 font-sans"
          value={a.description}
          onChange={(e) => update((d) => ({ ...d, description: e.target.value }))}
        />
      </Labeled>
      <div className="grid gap-4 sm:grid-cols-2">
        <Labeled id="wz-module" label="Module name" errors={errors} hint="Lower-case, digits and '-': it names the service and its events.">
          <Input
            {...ctl("wz-module", errors, true)}
            value={a.module}
            placeholder="e.g. inventory"
            autoComplete="off"
            onChange={(e) => update((d) => ({ ...d, module: e.target.value }))}
          />
        </Labeled>
        <Labeled id="wz-owner" label="Owner (optional)" errors={errors} hint="The team that answers for it.">
          <Input {...ctl("wz-owner", errors, true)} value={a.owner} placeholder="e.g. operations" onChange={(e) => update((d) => ({ ...d, owner: e.target.value }))} />
        </Labeled>
      </div>
    </>
  );
}

function Entities({ a, update, errors }: StepProps) {
  return (
    <>
      <p className="text-sm text-muted-foreground">
        Each kind of record the module keeps (an item, a supplier, a booking…) gets its table, its API routes{" "}
        <code className="rounded bg-muted px-1">/v1/&lt;plural&gt;</code> and its events. Every record gets an <code className="rounded bg-muted px-1">id</code> the
        module assigns. Mark the fields that hold personal data: the factory then requires a purpose and a retention for them.
      </p>
      {a.entities.map((e, i) => (
        <EntityCard key={i} i={i} e={e} a={a} update={update} errors={errors} />
      ))}
      <div>
        <Button id="wz-add-entity" variant="outline" onClick={() => update((d) => ({ ...d, entities: [...d.entities, newEntity()] }))}>
          <Plus aria-hidden="true" />
          Add a kind of record
        </Button>
        <Err id="wz-add-entity" errors={errors} />
      </div>
    </>
  );
}

function EntityCard({ i, e, a, update, errors }: StepProps & { i: number; e: EntityDraft }) {
  const setE = (f: (e: EntityDraft) => void) =>
    update((d) => {
      f(d.entities[i]);
      return d;
    });
  const label = e.name.trim() || `record ${i + 1}`;
  return (
    <fieldset className="flex flex-col gap-4 rounded-lg border bg-background p-3 sm:p-4" data-testid={`entity-${i}`}>
      <legend className="px-1 text-sm font-semibold">Kind of record {i + 1}</legend>
      <div className="grid gap-4 sm:grid-cols-3">
        <Labeled id={`wz-e${i}-name`} label="Name (singular)" errors={errors} hint="e.g. item">
          <Input {...ctl(`wz-e${i}-name`, errors, true)} value={e.name} autoComplete="off" onChange={(ev) => setE((x) => (x.name = ev.target.value))} />
        </Labeled>
        <Labeled id={`wz-e${i}-plural`} label="Plural (optional)" errors={errors} hint={`Routes: /v1/${pluralOf(e) || "…"}`}>
          <Input {...ctl(`wz-e${i}-plural`, errors, true)} value={e.plural} autoComplete="off" onChange={(ev) => setE((x) => (x.plural = ev.target.value))} />
        </Labeled>
        <Labeled id={`wz-e${i}-description`} label="Description (optional)" errors={errors}>
          <Input {...ctl(`wz-e${i}-description`, errors)} value={e.description} onChange={(ev) => setE((x) => (x.description = ev.target.value))} />
        </Labeled>
      </div>
      <fieldset id={`wz-e${i}-events`} tabIndex={-1} className="flex flex-wrap items-center gap-x-4 gap-y-2 text-sm">
        <legend className="mb-1 text-sm font-medium">Events it emits</legend>
        {eventNames.map((ev) => (
          <label key={ev} className="flex items-center gap-2">
            <input
              type="checkbox"
              className="size-4 accent-primary"
              checked={e.events.includes(ev)}
              onChange={(x) => setE((y) => (y.events = x.target.checked ? eventNames.filter((n) => n === ev || y.events.includes(n)) : y.events.filter((n) => n !== ev)))}
            />
            {a.module || "module"}.{e.name || "record"}.{ev}
          </label>
        ))}
      </fieldset>
      <div className="flex flex-col gap-3">
        <h3 className="text-sm font-medium">Fields of {label}</h3>
        {e.fields.map((f, j) => (
          <FieldRow key={j} i={i} j={j} f={f} entity={label} update={update} errors={errors} />
        ))}
        <div className="flex flex-wrap gap-2">
          <Button id={`wz-e${i}-add-field`} variant="outline" size="sm" onClick={() => setE((x) => x.fields.push(newField()))}>
            <Plus aria-hidden="true" />
            Add a field to {label}
          </Button>
          {a.entities.length > 1 && (
            <Button
              variant="ghost"
              size="sm"
              onClick={() =>
                update((d) => {
                  d.entities.splice(i, 1);
                  return d;
                })
              }
            >
              <Trash2 aria-hidden="true" />
              Remove {label}
            </Button>
          )}
        </div>
        <Err id={`wz-e${i}-add-field`} errors={errors} />
      </div>
    </fieldset>
  );
}

function FieldRow({ i, j, f, entity, update, errors }: Omit<StepProps, "a"> & { i: number; j: number; f: FieldDraft; entity: string }) {
  const id = `wz-e${i}-f${j}`;
  const setF = (g: (f: FieldDraft) => void) =>
    update((d) => {
      g(d.entities[i].fields[j]);
      return d;
    });
  const fname = f.name.trim() || `field ${j + 1}`;
  return (
    <div className="grid gap-3 rounded-md border p-3 sm:grid-cols-6" data-testid={`field-${i}-${j}`}>
      <Labeled id={`${id}-name`} label="Field" errors={errors} className="sm:col-span-2">
        <Input {...ctl(`${id}-name`, errors)} value={f.name} autoComplete="off" placeholder="e.g. name" onChange={(e) => setF((x) => (x.name = e.target.value))} />
      </Labeled>
      <Labeled id={`${id}-type`} label="Type" errors={errors} className="sm:col-span-2">
        <Select {...ctl(`${id}-type`, errors)} value={f.type} onChange={(e) => setF((x) => (x.type = e.target.value as FieldDraft["type"]))}>
          {fieldTypes.map((t) => (
            <option key={t} value={t}>
              {fieldTypeLabels[t]}
            </option>
          ))}
        </Select>
      </Labeled>
      <Labeled id={`${id}-classification`} label="Personal data?" errors={errors} className="sm:col-span-2">
        <Select
          {...ctl(`${id}-classification`, errors)}
          value={f.classification}
          onChange={(e) => setF((x) => (x.classification = e.target.value as FieldDraft["classification"]))}
        >
          <option value="none">No</option>
          <option value="personal">Personal (names a person)</option>
          <option value="sensitive">Sensitive (health, finances…)</option>
        </Select>
      </Labeled>
      {(f.type === "string" || f.type === "text" || f.type === "email") && (
        <Labeled id={`${id}-maxlength`} label="Longest (characters)" errors={errors} className="sm:col-span-2">
          <Input {...ctl(`${id}-maxlength`, errors)} inputMode="numeric" value={f.maxLength} onChange={(e) => setF((x) => (x.maxLength = e.target.value))} />
        </Labeled>
      )}
      {(f.type === "integer" || f.type === "number") && (
        <>
          <Labeled id={`${id}-minimum`} label="Smallest" errors={errors}>
            <Input {...ctl(`${id}-minimum`, errors)} inputMode="decimal" value={f.minimum} onChange={(e) => setF((x) => (x.minimum = e.target.value))} />
          </Labeled>
          <Labeled id={`${id}-maximum`} label="Largest" errors={errors}>
            <Input {...ctl(`${id}-maximum`, errors)} inputMode="decimal" value={f.maximum} onChange={(e) => setF((x) => (x.maximum = e.target.value))} />
          </Labeled>
        </>
      )}
      {f.type === "enum" && (
        <Labeled id={`${id}-values`} label="Values" errors={errors} hint="Separated by commas: active, discontinued" className="sm:col-span-2">
          <Input {...ctl(`${id}-values`, errors, true)} value={f.values} onChange={(e) => setF((x) => (x.values = e.target.value))} />
        </Labeled>
      )}
      <div className="flex items-end gap-4 sm:col-span-2">
        <label className="flex items-center gap-2 pb-2 text-sm">
          <input
            id={`${id}-required`}
            type="checkbox"
            className="size-4 accent-primary"
            checked={f.required}
            onChange={(e) => setF((x) => (x.required = e.target.checked))}
          />
          Required
        </label>
        <Button
          variant="ghost"
          size="sm"
          className="mb-0.5 ml-auto"
          aria-label={`Remove ${fname} from ${entity}`}
          onClick={() =>
            update((d) => {
              d.entities[i].fields.splice(j, 1);
              return d;
            })
          }
        >
          <Trash2 aria-hidden="true" />
          Remove
        </Button>
      </div>
      {personal(f) && (
        <>
          <Labeled id={`${id}-purpose`} label="Why it is kept (purpose)" errors={errors} className="sm:col-span-4">
            <Input {...ctl(`${id}-purpose`, errors)} value={f.purpose} placeholder="e.g. Contact the supplier about orders." onChange={(e) => setF((x) => (x.purpose = e.target.value))} />
          </Labeled>
          <Labeled id={`${id}-retention`} label="Kept for" errors={errors} hint="90d, 6m, 2y or forever" className="sm:col-span-2">
            <Input {...ctl(`${id}-retention`, errors, true)} value={f.retention} placeholder="e.g. 2y" onChange={(e) => setF((x) => (x.retention = e.target.value))} />
          </Labeled>
        </>
      )}
    </div>
  );
}

function Access({ a, update, errors }: StepProps) {
  const entities = a.entities.map((e) => e.name.trim()).filter(Boolean);
  return (
    <>
      <fieldset className="grid gap-2 sm:grid-cols-2">
        <legend className="mb-2 text-sm font-medium">Can everyone who reaches the module do everything?</legend>
        <Choice id="wz-use-roles" name="roles" value="no" checked={!a.useRoles} onChange={() => update((d) => ({ ...d, useRoles: false }))} title="Yes, one kind of user">
          Every caller may create, read, change and delete every record.
        </Choice>
        <Choice
          name="roles"
          value="yes"
          checked={a.useRoles}
          onChange={() => update((d) => ({ ...d, useRoles: true, roles: d.roles.length ? d.roles : [{ name: "", description: "", permissions: [] }] }))}
          title="No, roles with different permissions"
        >
          Each request names its role (X-Role); the module refuses what the role may not do.
        </Choice>
      </fieldset>
      {a.useRoles && (
        <>
          {a.roles.map((r, i) => (
            <fieldset key={i} className="flex flex-col gap-3 rounded-lg border bg-background p-3 sm:p-4" data-testid={`role-${i}`}>
              <legend className="px-1 text-sm font-semibold">Role {i + 1}</legend>
              <div className="grid gap-4 sm:grid-cols-2">
                <Labeled id={`wz-r${i}-name`} label="Role" errors={errors} hint="e.g. manager">
                  <Input
                    {...ctl(`wz-r${i}-name`, errors, true)}
                    value={r.name}
                    autoComplete="off"
                    onChange={(e) =>
                      update((d) => {
                        d.roles[i].name = e.target.value;
                        return d;
                      })
                    }
                  />
                </Labeled>
                <Labeled id={`wz-r${i}-description`} label="Who has it (optional)" errors={errors}>
                  <Input
                    {...ctl(`wz-r${i}-description`, errors)}
                    value={r.description}
                    onChange={(e) =>
                      update((d) => {
                        d.roles[i].description = e.target.value;
                        return d;
                      })
                    }
                  />
                </Labeled>
              </div>
              {entities.length > 0 && (
                <Table aria-label={`Permissions of ${r.name || `role ${i + 1}`}`}>
                  <THead>
                    <TR>
                      <TH>Record</TH>
                      {operations.map((o) => (
                        <TH key={o} className="text-center capitalize">
                          {o}
                        </TH>
                      ))}
                    </TR>
                  </THead>
                  <TBody>
                    {entities.map((en) => (
                      <TR key={en}>
                        <TD className="font-medium">{en}</TD>
                        {operations.map((o) => {
                          const perm = `${en}:${o}`;
                          return (
                            <TD key={o} className="text-center">
                              <input
                                type="checkbox"
                                className="size-4 accent-primary"
                                aria-label={`${r.name || `role ${i + 1}`} may ${o} ${en}`}
                                checked={r.permissions.includes(perm)}
                                onChange={(e) =>
                                  update((d) => {
                                    const ps = d.roles[i].permissions.filter((p) => p !== perm);
                                    if (e.target.checked) ps.push(perm);
                                    d.roles[i].permissions = ps;
                                    return d;
                                  })
                                }
                              />
                            </TD>
                          );
                        })}
                      </TR>
                    ))}
                  </TBody>
                </Table>
              )}
              <div>
                <Button
                  variant="ghost"
                  size="sm"
                  onClick={() =>
                    update((d) => {
                      d.roles.splice(i, 1);
                      return d;
                    })
                  }
                >
                  <Trash2 aria-hidden="true" />
                  Remove role {r.name || i + 1}
                </Button>
              </div>
            </fieldset>
          ))}
          <div>
            <Button id="wz-add-role" variant="outline" onClick={() => update((d) => ({ ...d, roles: [...d.roles, { name: "", description: "", permissions: [] }] }))}>
              <Plus aria-hidden="true" />
              Add a role
            </Button>
            <Err id="wz-add-role" errors={errors} />
          </div>
        </>
      )}
    </>
  );
}

function Tenancy({ a, update, errors }: StepProps) {
  return (
    <>
      <fieldset className="grid gap-2 sm:grid-cols-2">
        <legend className="mb-2 text-sm font-medium">Who uses it?</legend>
        <Choice id="wz-tenancy" name="tenancy" value="multi" checked={a.multiTenant} onChange={() => update((d) => ({ ...d, multiTenant: true }))} title="Many organisations (multi-tenant)">
          Each organisation sees only its own records; the factory adds the threat of one reading another's and tests it.
        </Choice>
        <Choice name="tenancy" value="single" checked={!a.multiTenant} onChange={() => update((d) => ({ ...d, multiTenant: false }))} title="One organisation">
          The module still keeps records per tenant (X-Tenant-ID): give every request the same one.
        </Choice>
      </fieldset>
      <div className="flex flex-col gap-3">
        <h3 className="text-sm font-medium">Systems it talks to (optional)</h3>
        {a.integrations.length === 0 && (
          <p className="text-sm text-muted-foreground">None yet. Add one for each system that sends it data or reads its events (an ERP, a payment provider…).</p>
        )}
        {a.integrations.map((x, i) => (
          <div key={i} className="grid gap-3 rounded-md border p-3 sm:grid-cols-4" data-testid={`integration-${i}`}>
            <Labeled id={`wz-i${i}-name`} label="System" errors={errors}>
              <Input
                {...ctl(`wz-i${i}-name`, errors)}
                value={x.name}
                placeholder="e.g. erp"
                onChange={(e) =>
                  update((d) => {
                    d.integrations[i].name = e.target.value;
                    return d;
                  })
                }
              />
            </Labeled>
            <Labeled id={`wz-i${i}-kind`} label="How" errors={errors}>
              <Select
                {...ctl(`wz-i${i}-kind`, errors)}
                value={x.kind}
                onChange={(e) =>
                  update((d) => {
                    d.integrations[i].kind = e.target.value as (typeof integrationKinds)[number];
                    return d;
                  })
                }
              >
                {integrationKinds.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </Select>
            </Labeled>
            <Labeled id={`wz-i${i}-direction`} label="Direction" errors={errors}>
              <Select
                {...ctl(`wz-i${i}-direction`, errors)}
                value={x.direction}
                onChange={(e) =>
                  update((d) => {
                    d.integrations[i].direction = e.target.value as (typeof directions)[number];
                    return d;
                  })
                }
              >
                {directions.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </Select>
            </Labeled>
            <div className="flex items-end">
              <Button
                variant="ghost"
                size="sm"
                className="mb-0.5"
                onClick={() =>
                  update((d) => {
                    d.integrations.splice(i, 1);
                    return d;
                  })
                }
              >
                <Trash2 aria-hidden="true" />
                Remove {x.name || "system"}
              </Button>
            </div>
            <Labeled id={`wz-i${i}-description`} label="What passes between them (optional)" errors={errors} className="sm:col-span-4">
              <Input
                {...ctl(`wz-i${i}-description`, errors)}
                value={x.description}
                onChange={(e) =>
                  update((d) => {
                    d.integrations[i].description = e.target.value;
                    return d;
                  })
                }
              />
            </Labeled>
          </div>
        ))}
        <div>
          <Button
            id="wz-add-integration"
            variant="outline"
            size="sm"
            onClick={() => update((d) => ({ ...d, integrations: [...d.integrations, { name: "", kind: "event", direction: "outbound", description: "" }] }))}
          >
            <Plus aria-hidden="true" />
            Add a system
          </Button>
        </div>
      </div>
    </>
  );
}

function Quality({ a, update, errors }: StepProps) {
  const routes = routesOf(a.entities);
  return (
    <>
      <fieldset className="grid gap-2 sm:grid-cols-2">
        <legend className="mb-2 text-sm font-medium">MVP or production?</legend>
        <Choice id="wz-state" name="state" value="PRESSAO" checked={a.state === "PRESSAO"} onChange={() => update((d) => ({ ...d, state: "PRESSAO" }))} title="MVP, fast (PRESSAO)">
          Tests, secrets and contracts only; marked MVP. For trying an idea.
        </Choice>
        <Choice name="state" value="NORMAL" checked={a.state === "NORMAL"} onChange={() => update((d) => ({ ...d, state: "NORMAL" }))} title="Production (NORMAL)">
          Every gate: lint, security, vulnerabilities, SBOM, contracts and performance; a person approves before it deploys.
        </Choice>
      </fieldset>
      <div className="flex flex-col gap-2">
        <h3 className="text-sm font-medium" id="wz-budgets-title">
          Performance budgets
        </h3>
        <p id="wz-budgets" tabIndex={-1} className="text-sm text-muted-foreground">
          The slowest a route may answer for 95 requests in 100, in milliseconds; the performance gate measures each budgeted route under load.
          Leave a route empty for no budget{a.state === "NORMAL" ? "; production needs at least one" : ""}.
        </p>
        <Err id="wz-budgets" errors={errors} />
        <Table aria-label="Performance budgets">
          <THead>
            <TR>
              <TH>Route</TH>
              <TH>p95 (ms)</TH>
            </TR>
          </THead>
          <TBody>
            {routes.map((r) => {
              const id = budgetId(r);
              return (
                <TR key={r}>
                  <TD>
                    <label htmlFor={id} className="font-mono text-xs">
                      {r}
                    </label>
                  </TD>
                  <TD className="w-32">
                    <Input
                      {...ctl(id, errors)}
                      inputMode="numeric"
                      value={a.budgets[r] ?? ""}
                      onChange={(e) => update((d) => ({ ...d, budgets: { ...d.budgets, [r]: e.target.value } }))}
                    />
                    <Err id={id} errors={errors} />
                  </TD>
                </TR>
              );
            })}
          </TBody>
        </Table>
      </div>
      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-sm font-medium">Deploy</legend>
        <div className="grid gap-4 sm:grid-cols-2">
          <Labeled id="wz-target" label="Where" errors={errors}>
            <Select {...ctl("wz-target", errors)} value={a.target} onChange={(e) => update((d) => ({ ...d, target: e.target.value as Answers["target"] }))}>
              <option value="local">Here, as a process on PROST's host (local)</option>
              <option value="compose">As a container: a Dockerfile and a compose service (compose)</option>
            </Select>
          </Labeled>
          <label className="flex items-start gap-2 text-sm sm:pt-7">
            <input
              id="wz-auto-deploy"
              type="checkbox"
              className="mt-0.5 size-4 accent-primary"
              checked={a.autoDeploy}
              onChange={(e) => update((d) => ({ ...d, autoDeploy: e.target.checked }))}
            />
            <span>
              Deploy without waiting for an approval
              <span className="block text-xs text-muted-foreground">
                {a.state === "NORMAL" ? "In production only when every gate passed." : "An MVP then deploys as soon as its gates pass."}
              </span>
            </span>
          </label>
        </div>
      </fieldset>
    </>
  );
}

function Retention({ a, update, errors }: StepProps) {
  const set = (name: string, f: (r: Answers["retention"][string]) => void) =>
    update((d) => {
      const r = d.retention[name] ?? { period: "", action: "delete", basis: "" };
      f(r);
      d.retention[name] = r;
      return d;
    });
  return (
    <>
      <p id="wz-retention" tabIndex={-1} className="text-sm text-muted-foreground">
        How long each kind of record is kept, what happens after, and why (the legal basis, LGPD art. 7 / GDPR art. 6, or the business
        reason). {a.state === "NORMAL" ? "Production requires a row for every record that holds personal data." : "Optional for an MVP."}
      </p>
      {a.entities.map((e) => {
        const r = a.retention[e.name] ?? { period: "", action: "delete", basis: "" };
        const id = `wz-ret-${e.name}`;
        return (
          <fieldset key={e.name} className="grid gap-3 rounded-md border bg-background p-3 sm:grid-cols-4" data-testid={`retention-${e.name}`}>
            <legend className="px-1 text-sm font-semibold">
              {e.name} {hasPersonal(e) && <Badge variant="warning">personal data</Badge>}
            </legend>
            <Labeled id={`${id}-period`} label="Kept for" errors={errors} hint="e.g. 5y; empty: no rule">
              <Input {...ctl(`${id}-period`, errors, true)} value={r.period} onChange={(ev) => set(e.name, (x) => (x.period = ev.target.value))} />
            </Labeled>
            <Labeled id={`${id}-action`} label="Then" errors={errors}>
              <Select {...ctl(`${id}-action`, errors)} value={r.action} onChange={(ev) => set(e.name, (x) => (x.action = ev.target.value as "delete" | "anonymize"))}>
                <option value="delete">delete it</option>
                <option value="anonymize">anonymize it</option>
              </Select>
            </Labeled>
            <Labeled id={`${id}-basis`} label="Why (basis)" errors={errors} className="sm:col-span-2">
              <Input {...ctl(`${id}-basis`, errors)} value={r.basis} onChange={(ev) => set(e.name, (x) => (x.basis = ev.target.value))} />
            </Labeled>
          </fieldset>
        );
      })}
    </>
  );
}

function Summary({ a, onFix, onBuilt }: { a: Answers; onFix: (step: StepName, id: string, message: string) => void; onBuilt: (r: Run) => void }) {
  const built = React.useMemo(() => buildPack0(a), [a]);
  const p = built.pack0;
  const [check, setCheck] = React.useState<CheckResult | null>(null);
  const checking = useAction(async () => {
    setCheck(await api<CheckResult>("POST", "/v1/factory/pack0/check", { pack0: p, state: a.state }));
  });
  React.useEffect(() => {
    void checking.run();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [built]);
  const { session } = useSession();
  const build = useAction(async () => {
    const run = await api<Run>("POST", "/v1/factory/runs", {
      module: p.module, pack0: p, state: a.state, auto_deploy: a.autoDeploy, deploy_target: a.target,
      requested_by: `console wizard (${session?.name ?? "App"})`.slice(0, 200),
    });
    onBuilt(run);
  });
  const events = check?.events.length ? check.events : p.entities.flatMap((e) => (e.events ?? eventNames).map((ev) => `${p.module}.${e.name}.${ev}`));
  const opsOf = (perms: string[], entity: string) =>
    perms.includes(`${entity}:*`) ? [...operations] : operations.filter((o) => perms.includes(`${entity}:${o}`));
  return (
    <div className="flex flex-col gap-5" data-testid="summary">
      <div>
        <h3 className="text-lg font-semibold">
          {p.module} <Badge variant={a.state === "NORMAL" ? "default" : "warning"}>{a.state === "NORMAL" ? "production" : "MVP"}</Badge>
        </h3>
        <p className="text-sm text-muted-foreground">{p.description}</p>
        {p.owner && <p className="text-sm">Owner: {p.owner}</p>}
      </div>
      {checking.pending && <Progress label="Checking the Pack0 with the factory's first gate…" className="py-2" />}
      <ErrorAlert error={checking.error} title="Could not check the Pack0" />
      {check && !checking.pending && check.ok && (
        <Alert variant="success" data-testid="check-result">
          <AlertTitle>The Pack0 passes the factory's first gate</AlertTitle>
          <AlertDescription>
            {check.routes.length} routes, {check.events.length} event types. Build it when the summary below is what you want.
          </AlertDescription>
        </Alert>
      )}
      {check && !checking.pending && !check.ok && (
        <Alert variant="destructive" data-testid="check-result">
          <AlertTitle>The factory's first gate would refuse this Pack0</AlertTitle>
          <AlertDescription>
            <ul className="mt-1 flex flex-col gap-1">
              {check.problems.map((pr, k) => {
                const place = placeOf(built.places, pr.pointer);
                return (
                  <li key={k} className="flex flex-wrap items-center gap-2">
                    <span>
                      <code className="font-mono text-xs">{pr.pointer || "/"}</code> {pr.message} <span className="text-xs">({pr.rule})</span>
                    </span>
                    {place.step !== "summary" && (
                      <Button variant="outline" size="sm" onClick={() => onFix(place.step, place.id, pr.message)}>
                        Fix
                      </Button>
                    )}
                  </li>
                );
              })}
            </ul>
          </AlertDescription>
        </Alert>
      )}

      <section aria-labelledby="sum-entities" className="flex flex-col gap-3">
        <h3 id="sum-entities" className="text-base font-semibold">
          Records and their fields
        </h3>
        <div className="grid gap-3 lg:grid-cols-2">
          {p.entities.map((e) => (
            <Card key={e.name} data-testid={`summary-entity-${e.name}`}>
              <CardHeader className="pb-2 sm:pb-2">
                <CardTitle className="text-base">{e.name}</CardTitle>
                <CardDescription>
                  <code>/v1/{e.plural || `${e.name}s`}</code>
                  {e.description ? ` · ${e.description}` : ""}
                </CardDescription>
              </CardHeader>
              <CardContent>
                <Table aria-label={`Fields of ${e.name}`}>
                  <THead>
                    <TR>
                      <TH>Field</TH>
                      <TH>Type</TH>
                      <TH>Data</TH>
                    </TR>
                  </THead>
                  <TBody>
                    {e.fields.map((f) => (
                      <TR key={f.name}>
                        <TD className="font-mono text-xs">
                          {f.name}
                          {f.required && <span className="text-muted-foreground"> (required)</span>}
                        </TD>
                        <TD className="text-xs">
                          {f.name === e.key ? "key, assigned" : fieldTypeLabels[f.type]}
                          {f.type === "enum" && f.values ? `: ${f.values.join(", ")}` : ""}
                          {f.max_length ? `, ≤ ${f.max_length}` : ""}
                          {f.minimum !== undefined ? `, ≥ ${f.minimum}` : ""}
                          {f.maximum !== undefined ? `, ≤ ${f.maximum}` : ""}
                        </TD>
                        <TD className="text-xs">
                          {f.classification && f.classification !== "none" ? (
                            <span className="flex flex-col gap-0.5">
                              <Badge variant="warning" className="w-fit">
                                {f.classification}
                              </Badge>
                              <span>
                                {f.purpose} Kept {f.retention}.
                              </span>
                            </span>
                          ) : (
                            <span className="text-muted-foreground">not personal</span>
                          )}
                        </TD>
                      </TR>
                    ))}
                  </TBody>
                </Table>
              </CardContent>
            </Card>
          ))}
        </div>
      </section>

      <div className="grid gap-4 lg:grid-cols-2">
        <section aria-labelledby="sum-perms" className="flex min-w-0 flex-col gap-2">
          <h3 id="sum-perms" className="text-base font-semibold">
            Permissions
          </h3>
          {!p.roles?.length ? (
            <p className="text-sm text-muted-foreground">No roles: every caller may do everything.</p>
          ) : (
            <Table aria-label="Permissions">
              <THead>
                <TR>
                  <TH>Role</TH>
                  {p.entities.map((e) => (
                    <TH key={e.name}>{e.name}</TH>
                  ))}
                </TR>
              </THead>
              <TBody>
                {p.roles.map((r) => (
                  <TR key={r.name}>
                    <TD className="font-medium">{r.name}</TD>
                    {p.entities.map((e) => {
                      const ops = opsOf(r.permissions, e.name);
                      return (
                        <TD key={e.name} className="text-xs">
                          {ops.length === 0 ? <span className="text-muted-foreground">nothing</span> : ops.length === operations.length ? "everything" : ops.join(", ")}
                        </TD>
                      );
                    })}
                  </TR>
                ))}
              </TBody>
            </Table>
          )}
          <p className="text-sm">
            {a.multiTenant ? "Multi-tenant: each tenant sees only its own records." : "One organisation: every request carries the same X-Tenant-ID."}
          </p>
        </section>
        <section aria-labelledby="sum-events" className="flex min-w-0 flex-col gap-2">
          <h3 id="sum-events" className="text-base font-semibold">
            Events it emits
          </h3>
          <ul className="flex flex-wrap gap-1.5" aria-labelledby="sum-events">
            {events.map((ev) => (
              <li key={ev}>
                <Badge variant="secondary" className="font-mono">
                  {ev}
                </Badge>
              </li>
            ))}
          </ul>
          <p className="text-xs text-muted-foreground">
            Each with a JSON Schema and a contract (strong when it carries personal data), recorded into this App's stream through PROST.
          </p>
          {p.integrations?.length ? (
            <>
              <h4 className="text-sm font-semibold">Systems</h4>
              <ul className="text-sm">
                {p.integrations.map((x) => (
                  <li key={x.name}>
                    {x.name}: {x.kind}, {x.direction}
                    {x.description ? ` — ${x.description}` : ""}
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </section>
      </div>

      <div className="grid gap-4 lg:grid-cols-2">
        <section aria-labelledby="sum-budgets" className="flex min-w-0 flex-col gap-2">
          <h3 id="sum-budgets" className="text-base font-semibold">
            Performance budgets
          </h3>
          {!p.budgets?.length ? (
            <p className="text-sm text-muted-foreground">None{a.state === "NORMAL" ? ": production needs one" : ""}.</p>
          ) : (
            <Table aria-label="Budgets">
              <THead>
                <TR>
                  <TH>Route</TH>
                  <TH>p95</TH>
                </TR>
              </THead>
              <TBody>
                {p.budgets.map((b) => (
                  <TR key={b.route}>
                    <TD className="font-mono text-xs">{b.route}</TD>
                    <TD className="text-xs">{b.p95_ms} ms</TD>
                  </TR>
                ))}
              </TBody>
            </Table>
          )}
        </section>
        <section aria-labelledby="sum-retention" className="flex min-w-0 flex-col gap-2">
          <h3 id="sum-retention" className="text-base font-semibold">
            Retention
          </h3>
          {!p.retention?.length ? (
            <p className="text-sm text-muted-foreground">No retention rules.</p>
          ) : (
            <Table aria-label="Retention">
              <THead>
                <TR>
                  <TH>Record</TH>
                  <TH>Kept</TH>
                  <TH>Why</TH>
                </TR>
              </THead>
              <TBody>
                {p.retention.map((r) => (
                  <TR key={r.entity}>
                    <TD className="text-xs font-medium">{r.entity}</TD>
                    <TD className="text-xs">
                      {r.period}, then {r.action ?? "delete"}
                    </TD>
                    <TD className="text-xs">{r.basis ?? "—"}</TD>
                  </TR>
                ))}
              </TBody>
            </Table>
          )}
        </section>
      </div>

      <section aria-labelledby="sum-threats" className="flex flex-col gap-2">
        <h3 id="sum-threats" className="text-base font-semibold">
          Threats it must resist
        </h3>
        <p id="wz-threats" className="text-xs text-muted-foreground">
          Derived from your answers, each with how the module resists it; they go into the Pack0 and its signed record.
        </p>
        <ul className="flex flex-col gap-1 text-sm">
          {(p.threats ?? []).map((t) => (
            <li key={t.id}>
              <Badge variant="outline">{t.category}</Badge> {t.title} <span className="text-muted-foreground">{t.mitigation}</span>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="sum-build" className="flex flex-col gap-2">
        <h3 id="sum-build" className="text-base font-semibold">
          The build
        </h3>
        <p className="text-sm">
          {a.state === "NORMAL" ? "Production: every gate runs" : "MVP: tests, secrets and contracts"}; deployed{" "}
          {a.target === "local" ? "here as a process" : "as a Dockerfile and compose service"}
          {a.autoDeploy
            ? a.state === "NORMAL"
              ? ", without an approval when every gate passed."
              : ", without an approval."
            : ", after you approve it."}
        </p>
        <details className="rounded-md border bg-background p-3">
          <summary className="cursor-pointer text-sm font-medium">The Pack0 it will submit (JSON)</summary>
          <Code label="The Pack0" className="mt-2">
            <span id="wz-pack0">{json(p)}</span>
          </Code>
        </details>
      </section>

      <ErrorAlert error={build.error} title="The factory refused the run" />
      <div className="flex flex-wrap items-center gap-3">
        <Button onClick={() => void build.run()} disabled={build.pending || checking.pending || !check?.ok} size="lg">
          {build.pending ? <Spinner /> : <Hammer aria-hidden="true" />}
          Build {p.module}
        </Button>
        {check && !check.ok && <span className="text-sm text-muted-foreground">Fix the problems above first.</span>}
      </div>
    </div>
  );
}
