// A reader of the Prometheus text exposition format (version 0.0.4), enough
// for the console's health page: samples with their labels and values.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/;

function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf("=", i);
    if (eq < 0) break;
    const name = s.slice(i, eq).trim().replace(/^,/, "").trim();
    let j = eq + 1;
    if (s[j] !== '"') break;
    j++;
    let v = "";
    while (j < s.length && s[j] !== '"') {
      if (s[j] === "\\" && j + 1 < s.length) {
        const n = s[j + 1];
        v += n === "n" ? "\n" : n;
        j += 2;
      } else {
        v += s[j++];
      }
    }
    out[name] = v;
    i = j + 1;
    while (i < s.length && (s[i] === "," || s[i] === " ")) i++;
  }
  return out;
}

/** parseMetrics reads every sample of a /metrics answer; comments are skipped. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = sampleRe.exec(line);
    if (!m) continue;
    const value = m[4] === "+Inf" ? Infinity : m[4] === "-Inf" ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels: m[3] ? parseLabels(m[3]) : {}, value });
  }
  return out;
}

/** pick returns the samples of one metric. */
export function pick(samples: Sample[], name: string): Sample[] {
  return samples.filter((s) => s.name === name);
}

/** first returns the value of the first sample of a metric, or undefined. */
export function first(samples: Sample[], name: string): number | undefined {
  return samples.find((s) => s.name === name)?.value;
}
