import { describe, expect, it } from "vitest";
import { diffLines, pretty } from "./diff";

describe("diffLines", () => {
  it("keeps equal lines and pairs changed ones", () => {
    const rows = diffLines("a\nb\nc\nd", "a\nB\nc\nd\ne");
    expect(rows).toEqual([
      { left: "a", right: "a", kind: "same" },
      { left: "b", right: "B", kind: "changed" },
      { left: "c", right: "c", kind: "same" },
      { left: "d", right: "d", kind: "same" },
      { left: null, right: "e", kind: "added" },
    ]);
  });
  it("shows removals on the left only", () => {
    expect(diffLines("a\nx\nb", "a\nb")).toEqual([
      { left: "a", right: "a", kind: "same" },
      { left: "x", right: null, kind: "removed" },
      { left: "b", right: "b", kind: "same" },
    ]);
  });
  it("re-indents JSON before diffing", () => {
    expect(pretty('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(pretty("not json")).toBe("not json");
  });
});
