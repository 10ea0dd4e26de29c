import { describe, expect, test } from "vitest";
import { decodeRecord, encodeRecord, nextRevision, tombstoneTtlMs } from "../../src/server/store/generation-scheme.js";

describe("nextRevision()", () => {
  const live = (generation: bigint) => ({ generation, revision: generation });
  const tombstone = (revision: bigint) => ({ generation: 0n, revision });
  const absent = { generation: 0n, revision: 0n };
  const NOW = 1_700_000_000_000_000n;

  test.each([
    // [the key, the write, its state, the revision the write gives]
    ["a live key", "bump", live(1_600_000_000_000_000n), 1_600_000_000_000_001n], // +1, the clock unread
    ["a live key ahead of the clock", "bump", live(NOW + 5n), NOW + 6n],
    ["an absent key", "create", absent, NOW], // the clock
    ["an absent key", "bump", absent, NOW], // a bump creates: the clock
    ["a tombstone behind the clock", "create", tombstone(NOW - 10n), NOW],
    ["a tombstone of this microsecond", "bump", tombstone(NOW), NOW + 1n], // never the cleared revision again
    ["a live key", "clear", live(NOW - 10n), NOW], // a clear takes the clock, as creation does
    ["a live key ahead of the clock", "clear", live(NOW + 5n), NOW + 6n],
  ] as const)("%s, then a %s", (_what, write, previous, next) => {
    expect(nextRevision(previous, write, () => NOW)).toBe(next);
  });

  test("a Bump of a live key reads no clock", () => {
    expect(
      nextRevision(live(5n), "bump", () => {
        throw new Error("clock read");
      }),
    ).toBe(6n);
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

  test.each([
    ["1700000000000000:2e1891b2fd1f", 1_700_000_000_000_000n, 1_700_000_000_000_000n], // live, with its epoch
    ["1700000000000000abc", 0n, 0n], // not a record of ours: nothing recorded
    ["-5:2e1891b2fd1f", 0n, 0n], // tombstones carry no epoch
    ["12:", 0n, 0n],
  ])("%j is generation %s at revision %s", (raw, generation, revision) => {
    expect(decodeRecord(raw)).toEqual({ generation, revision });
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
