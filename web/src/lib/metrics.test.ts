import { describe, expect, it } from "vitest";
import { first, parseMetrics, pick } from "./metrics";

const text = `# HELP prost_outbox_pending Rows waiting.
# TYPE prost_outbox_pending gauge
prost_outbox_pending 3
prost_consumer_lag{consumer="governance-audit",stream="PROST_EVENTS"} 12
prost_dlq_messages{consumer="a \\"quoted\\", name"} 2
prost_http_duration_seconds_bucket{le="+Inf"} 7
weird line without value
prost_up 1 1700000000000
`;

describe("parseMetrics", () => {
  const s = parseMetrics(text);
  it("reads plain samples and skips comments and junk", () => {
    expect(first(s, "prost_outbox_pending")).toBe(3);
    expect(s.some((x) => x.name === "weird")).toBe(false);
    expect(first(s, "prost_up")).toBe(1);
  });
  it("reads labels, escapes included", () => {
    expect(pick(s, "prost_consumer_lag")).toEqual([
      { name: "prost_consumer_lag", labels: { consumer: "governance-audit", stream: "PROST_EVENTS" }, value: 12 },
    ]);
    expect(pick(s, "prost_dlq_messages")[0].labels.consumer).toBe('a "quoted", name');
    expect(pick(s, "prost_http_duration_seconds_bucket")[0].labels.le).toBe("+Inf");
  });
  it("answers undefined for a metric that is not there", () => {
    expect(first(s, "nope")).toBeUndefined();
  });
});
