// A line diff (longest common subsequence) for showing two schema versions
// side by side. Schemas are small: O(n*m) is fine.

export interface Row {
  /** the line of the older text, or null where the newer one added a line. */
  left: string | null;
  /** the line of the newer text, or null where it removed one. */
  right: string | null;
  /** same: unchanged; removed/added: only on one side; changed: both, differing. */
  kind: "same" | "removed" | "added" | "changed";
}

export function diffLines(a: string, b: string): Row[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const raw: Row[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      raw.push({ left: x[i++], right: y[j++], kind: "same" });
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      raw.push({ left: x[i++], right: null, kind: "removed" });
    } else {
      raw.push({ left: null, right: y[j++], kind: "added" });
    }
  }
  // Pair a run of removals with the run of additions after it: those lines changed.
  const out: Row[] = [];
  for (let k = 0; k < raw.length; ) {
    if (raw[k].kind !== "removed") {
      out.push(raw[k++]);
      continue;
    }
    const removed: string[] = [];
    while (k < raw.length && raw[k].kind === "removed") removed.push(raw[k++].left!);
    const added: string[] = [];
    while (k < raw.length && raw[k].kind === "added") added.push(raw[k++].right!);
    for (let p = 0; p < Math.max(removed.length, added.length); p++) {
      const l = p < removed.length ? removed[p] : null;
      const r = p < added.length ? added[p] : null;
      out.push({ left: l, right: r, kind: l !== null && r !== null ? "changed" : l !== null ? "removed" : "added" });
    }
  }
  return out;
}

/** pretty re-indents a JSON text (a schema as the registry stores it); other text stays. */
export function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
