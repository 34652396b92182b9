import { describe, expect, it } from "vitest";
import { buildPack0, emptyAnswers, exampleAnswers, placeOf, routesOf, untar, validateStep, type Answers } from "./factory";

describe("buildPack0", () => {
  it("turns the example's answers into the example Pack0 (examples/pack0/inventory.yaml)", () => {
    const { pack0 } = buildPack0(exampleAnswers());
    expect(pack0.module).toBe("inventory");
    expect(pack0.entities).toEqual([
      {
        name: "item", description: "Something kept in stock.", key: "id",
        fields: [
          { name: "id", type: "uuid", required: true },
          { name: "sku", type: "string", required: true, max_length: 32 },
          { name: "name", type: "string", required: true, max_length: 200 },
          { name: "quantity", type: "integer", required: true, minimum: 0, maximum: 1000000 },
          { name: "unit_price", type: "number", minimum: 0 },
          { name: "status", type: "enum", values: ["active", "discontinued"] },
        ],
      },
      {
        name: "supplier", description: "Who restocks items.", key: "id", events: ["created", "deleted"],
        fields: [
          { name: "id", type: "uuid", required: true },
          { name: "name", type: "string", required: true, max_length: 200 },
          {
            name: "contact_email", type: "email", required: true, classification: "personal",
            purpose: "Contact the supplier's representative about restocking orders.", retention: "2y",
          },
          { name: "active", type: "boolean" },
        ],
      },
    ]);
    expect(pack0.roles).toEqual([
      { name: "manager", permissions: ["item:*", "supplier:*"] },
      { name: "clerk", permissions: ["item:read", "item:update", "supplier:read"] },
    ]);
    expect(pack0.budgets).toEqual([
      { route: "POST /v1/items", p95_ms: 500 },
      { route: "GET /v1/items", p95_ms: 500 },
      { route: "GET /v1/items/{id}", p95_ms: 500 },
    ]);
    expect(pack0.retention?.map((r) => `${r.entity} ${r.period} ${r.action}`)).toEqual(["item 5y delete", "supplier 2y anonymize"]);
    // Multi-tenant, personal data and roles each bring their threat; input size always.
    expect(pack0.threats?.map((t) => `${t.id} ${t.category}`)).toEqual([
      "T1 information-disclosure", "T2 denial-of-service", "T3 information-disclosure", "T4 elevation-of-privilege",
    ]);
    expect(pack0.threats?.[2].entities).toEqual(["supplier"]);
  });

  it("leaves out what was not answered", () => {
    const a: Answers = { ...emptyAnswers(), module: "notes", description: "Notes.", multiTenant: false };
    a.entities[0].name = "note";
    a.entities[0].fields[0] = { ...a.entities[0].fields[0], name: "body", type: "text", maxLength: "", minimum: "5" };
    const { pack0 } = buildPack0(a);
    expect(pack0).toEqual({
      pack0: "1", module: "notes", description: "Notes.",
      entities: [{ name: "note", key: "id", fields: [{ name: "id", type: "uuid", required: true }, { name: "body", type: "text" }] }],
      threats: [expect.objectContaining({ id: "T2" })],
    });
  });
});

describe("placeOf", () => {
  it("finds the control a problem's pointer names, the wizard's field index shifted past the key", () => {
    const { places } = buildPack0(exampleAnswers());
    expect(placeOf(places, "/entities/1/fields/2/purpose")).toEqual({ step: "entities", id: "wz-e1-f1-purpose" });
    expect(placeOf(places, "/entities/0/fields/3/max_length")).toEqual({ step: "entities", id: "wz-e0-f2-maxlength" });
    expect(placeOf(places, "/entities/1")).toEqual({ step: "entities", id: "wz-e1-name" });
    expect(placeOf(places, "/budgets")).toEqual({ step: "quality", id: "wz-budgets" });
    expect(placeOf(places, "/budgets/2/route")).toEqual({ step: "quality", id: "wz-budget-GET-v1-items-id" });
    expect(placeOf(places, "/retention/1/period")).toEqual({ step: "retention", id: "wz-ret-supplier-period" });
    expect(placeOf(places, "/module")).toEqual({ step: "describe", id: "wz-module" });
    expect(placeOf(places, "")).toEqual({ step: "summary", id: "wz-pack0" });
  });
});

describe("validateStep", () => {
  it("accepts the example at every step", () => {
    const a = exampleAnswers();
    for (const s of ["describe", "entities", "access", "tenancy", "quality", "retention"] as const) {
      expect(validateStep(s, a), s).toEqual({});
    }
  });
  it("names each control that needs a change", () => {
    const a = exampleAnswers();
    a.module = "Inventory";
    a.entities[1].fields[1].purpose = "";
    a.entities[1].fields[1].retention = "two years";
    a.entities[0].fields[0].name = "tenant_id";
    a.entities[0].fields[4].values = "";
    a.budgets = {};
    a.retention = {};
    expect(Object.keys(validateStep("describe", a))).toEqual(["wz-module"]);
    expect(Object.keys(validateStep("entities", a)).sort()).toEqual(["wz-e0-f0-name", "wz-e0-f4-values", "wz-e1-f1-purpose", "wz-e1-f1-retention"]);
    expect(Object.keys(validateStep("quality", a))).toEqual(["wz-budgets"]);
    expect(Object.keys(validateStep("retention", a))).toEqual(["wz-ret-supplier-period"]);
    a.state = "PRESSAO";
    expect(validateStep("quality", a)).toEqual({});
    expect(validateStep("retention", a)).toEqual({});
  });
});

describe("routesOf", () => {
  it("lists the routes budgets name", () => {
    expect(routesOf([{ name: "person", plural: "people" }])).toEqual([
      "POST /v1/people", "GET /v1/people", "GET /v1/people/{id}", "PUT /v1/people/{id}", "DELETE /v1/people/{id}",
    ]);
  });
});

/** tarEntry is one 512-byte header and its padded body. */
function tarEntry(name: string, body: string, type = "0"): Uint8Array {
  const data = new TextEncoder().encode(body);
  const h = new Uint8Array(512);
  h.set(new TextEncoder().encode(name.slice(0, 100)), 0);
  h.set(new TextEncoder().encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
  h[156] = type.charCodeAt(0);
  h.set(new TextEncoder().encode("ustar\x0000"), 257);
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512);
  out.set(h, 0);
  out.set(data, 512);
  return out;
}

describe("untar", () => {
  it("reads regular files and applies a PAX path", () => {
    const long = `schemas/${"x".repeat(120)}/v1.json`;
    const rec = ` path=${long}\n`;
    const pax = `${rec.length + String(rec.length + 3).length}${rec}`;
    const parts = [tarEntry("README.md", "# inventory\n"), tarEntry("PaxHeaders/x", pax, "x"), tarEntry("ignored-name", "{}"), new Uint8Array(1024)];
    const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      buf.set(p, off);
      off += p.length;
    }
    const files = untar(buf);
    expect([...files.keys()]).toEqual(["README.md", long]);
    expect(new TextDecoder().decode(files.get("README.md"))).toBe("# inventory\n");
    expect(new TextDecoder().decode(files.get(long))).toBe("{}");
  });
});
