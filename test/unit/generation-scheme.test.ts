import { describe, expect, test } from "vitest";
import { decodeRecord, encodeRecord, nextRevision, tombstoneTtlMs } from "../../src/server/store/generation-scheme.js";

describe("nextRevision()", () => {
  test.each([
    // [previous, now, next]
    [0n, 1_700_000_000_000_000n, 1_700_000_000_000_000n], // nothing recorded: the clock
    [1_700_000_000_000_000n, 1_700_000_000_000_000n, 1_700_000_000_000_001n], // same µs: +1
    [1_700_000_000_000_005n, 1_700_000_000_000_000n, 1_700_000_000_000_006n], // clock behind: +1
    [1_600_000_000_000_000n, 1_700_000_000_000_000n, 1_700_000_000_000_000n], // clock ahead: clock
  ])("max(%s + 1, %s) = %s", (previous, now, next) => {
    expect(nextRevision(previous, now)).toBe(next);
  });

  test("stays an exact JavaScript number until the 23rd century", () => {
    const year2255 = BigInt(Date.UTC(2255, 0, 1)) * 1000n;
    expect(year2255 < BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
  });
});

describe("decodeRecord() / encodeRecord()", () => {
  test.each([
    [null, 0n, 0n],
    ["", 0n, 0n],
    ["1700000000000000", 1_700_000_000_000_000n, 1_700_000_000_000_000n],
    ["-1700000000000001", 0n, 1_700_000_000_000_001n],
  ])("%j is generation %s at revision %s", (raw, generation, revision) => {
    const state = decodeRecord(raw);
    expect(state).toEqual({ generation, revision });
    if (raw) expect(String(encodeRecord(state))).toBe(raw);
  });
});

describe("tombstoneTtlMs()", () => {
  test("lasts the margin when the clock is at or past the revision", () => {
    expect(tombstoneTtlMs(1_000_000n, 1_000_000n, 10_000)).toBe(10_000);
    expect(tombstoneTtlMs(1_000_000n, 2_000_000n, 10_000)).toBe(10_000);
  });

  test("lasts until the clock passes a revision that runs ahead of it, plus the margin", () => {
    expect(tombstoneTtlMs(5_000_001n, 1_000_000n, 10_000)).toBe(4_001 + 10_000);
  });
});
