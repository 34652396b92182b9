import { describe, expect, it } from "vitest";
import { chainProblem, verifyAll, type VerifyPage } from "./verify";

const chain = (tenant: string, entries: number) => ({ tenant_id: tenant, entries, events: entries, missing: 0 });

describe("verifyAll", () => {
  it("follows next_cursor to the end and gathers every page's chains", async () => {
    const pages: Record<string, VerifyPage> = {
      start: { ok: true, chains: [], next_cursor: "c1" },
      c1: { ok: true, chains: [chain("a", 3)], next_cursor: "c2" },
      c2: { ok: true, chains: [chain("b", 5)], next_cursor: null },
    };
    const asked: (string | null)[] = [];
    const res = await verifyAll(async (cursor) => {
      asked.push(cursor);
      return pages[cursor ?? "start"];
    });
    expect(asked).toEqual([null, "c1", "c2"]);
    expect(res).toEqual({ ok: true, chains: [chain("a", 3), chain("b", 5)] });
  });

  it("is not ok when any page was not", async () => {
    const broken = { tenant_id: "a", entries: 3, break: { seq: 2, reason: "hash does not match" } };
    const res = await verifyAll(async (cursor) =>
      cursor === null ? { ok: false, chains: [broken], next_cursor: "c1" } : { ok: true, chains: [chain("b", 1)], next_cursor: null },
    );
    expect(res.ok).toBe(false);
    expect(res.chains).toHaveLength(2);
  });

  it("gives up after maxPages instead of looping for ever", async () => {
    await expect(verifyAll(async () => ({ ok: true, chains: [], next_cursor: "again" }), 5)).rejects.toThrow(
      "the verification had not finished after 5 requests",
    );
  });
});

describe("chainProblem", () => {
  it("names a break, a missing event, or nothing", () => {
    expect(chainProblem(chain("a", 3))).toBeNull();
    expect(chainProblem({ tenant_id: "a", entries: 3, break: { seq: 2, reason: "hash does not match" } })).toBe(
      "entry 2 does not verify: hash does not match",
    );
    expect(
      chainProblem({
        tenant_id: "a", entries: 3, events: 4, missing: 1,
        first_missing: { event_id: "e-4", event_source: "/shop", event_type: "order.placed", recorded_at: "2026-12-01T00:00:00Z", note: "dead-lettered" },
      }),
    ).toBe('1 of 4 stored events have no audit entry; the first is event "e-4" (source "/shop", type "order.placed"): dead-lettered');
  });
});
