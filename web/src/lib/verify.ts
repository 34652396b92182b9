import type { VerifyChain, VerifyResult } from "./types";

/** One answer of GET /v1/audit/verify or /admin/v1/audit/verify: the chains
 * it finished and where the next request resumes (null when done). */
export interface VerifyPage extends VerifyResult {
  next_cursor: string | null;
}

/** maxVerifyPages bounds a verification that never ends (each page is at
 * most 10 s of the server's work). */
export const maxVerifyPages = 10000;

/**
 * verifyAll walks a verification to its end, as `prost audit verify` does:
 * each request works for a bounded time and hands back a cursor, so one
 * answer alone may hold no chain at all. It gathers every page's chains and
 * is ok only when every page was.
 */
export async function verifyAll(get: (cursor: string | null) => Promise<VerifyPage>, maxPages = maxVerifyPages): Promise<VerifyResult> {
  const chains: VerifyChain[] = [];
  let ok = true;
  let cursor: string | null = null;
  for (let i = 0; i < maxPages; i++) {
    const page: VerifyPage = await get(cursor);
    chains.push(...page.chains);
    ok = ok && page.ok;
    if (!page.next_cursor) return { ok, chains };
    cursor = page.next_cursor;
  }
  throw new Error(`the verification had not finished after ${maxPages} requests`);
}

/** chainProblem says what is wrong with a chain, or null when nothing is. */
export function chainProblem(c: VerifyChain): string | null {
  if (c.break) return `entry ${c.break.seq} does not verify: ${c.break.reason}`;
  if (c.missing && c.first_missing) {
    const m = c.first_missing;
    return (
      `${c.missing} of ${c.events ?? c.missing} stored events have no audit entry; the first is event "${m.event_id}" ` +
      `(source "${m.event_source}", type "${m.event_type}")` + (m.note ? `: ${m.note}` : "")
    );
  }
  if (c.missing) return `${c.missing} stored events have no audit entry`;
  return null;
}
