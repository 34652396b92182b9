// The console talks to PROST's public HTTP API only. It holds no credential:
// the browser sends the session cookie (HttpOnly, SameSite=Strict) and the
// console adds the session's CSRF token to every request that changes state.

/** One field-level failure of an RFC 9457 problem document. */
export interface FieldError {
  field?: string;
  detail: string;
  index?: number;
  pointer?: string;
  keyword?: string;
  line?: number;
  column?: number;
}

/** An RFC 9457 problem document, as PROST answers every error. */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [member: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.status = problem.status;
    this.problem = problem;
  }
}

let csrfToken = "";
let onSignedOut: (() => void) | null = null;

/** setCsrfToken is called by the session provider after sign-in. */
export function setCsrfToken(t: string) {
  csrfToken = t;
}

/** onSessionEnded registers what happens when the API says the session ended. */
export function onSessionEnded(f: (() => void) | null) {
  onSignedOut = f;
}

export interface RequestOptions {
  /** raw request body with its own Content-Type (default: JSON of body). */
  contentType?: string;
  signal?: AbortSignal;
  /** accept: what to read the answer as. */
  as?: "json" | "text";
  /** more request headers (such as X-Prost-Actor). */
  headers?: Record<string, string>;
}

const unsafe = (m: string) => !["GET", "HEAD", "OPTIONS"].includes(m);

/** api sends one request to PROST and returns the decoded answer, or throws ApiError. */
export async function api<T = unknown>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { ...opts.headers, Accept: "application/json, application/problem+json" };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    if (opts.contentType) {
      headers["Content-Type"] = opts.contentType;
      payload = typeof body === "string" ? body : JSON.stringify(body);
    } else {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
  }
  if (unsafe(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin", signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError({ status: 0, title: "Network error", detail: "PROST did not answer: is it running?" });
  }
  if (!res.ok) {
    let problem: Problem = { status: res.status, title: res.statusText };
    try {
      const text = await res.text();
      if (text) problem = { ...problem, ...JSON.parse(text) };
    } catch {
      /* not a problem document */
    }
    if (res.status === 401 && onSignedOut && !path.startsWith("/console/api/session")) onSignedOut();
    throw new ApiError(problem);
  }
  if (res.status === 204) return undefined as T;
  if (opts.as === "text") return (await res.text()) as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** A page of a PROST list route. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
  /** set by routes whose cursor is always given (GET /v1/events): whether more is ready now. */
  has_more?: boolean;
}

/** morePages says whether a list has a next page to load now. */
export function morePages(p: Page<unknown>): boolean {
  return p.has_more ?? p.next_cursor !== null;
}

/** qs builds a query string from the non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}

/** errorText is what a failed call says to a person. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    const p = e.problem;
    const parts = [p.detail || p.title || `HTTP ${p.status}`];
    for (const fe of p.errors ?? []) {
      parts.push(`${fe.field ?? fe.pointer ?? ""}${fe.field || fe.pointer ? ": " : ""}${fe.detail}`);
    }
    return parts.join("\n");
  }
  return e instanceof Error ? e.message : String(e);
}
