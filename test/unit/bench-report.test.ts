/** The benchmark table's arithmetic: percentiles, ratios and whether a target is met. */
import { describe, expect, test } from "vitest";
import { markdownTable, measurePair, median, pairStats, percentile, pooledPercentile } from "../../bench/report.js";

describe("percentile()", () => {
  test.each([
    [50, 5],
    [99, 10],
    [100, 10],
    [0, 1],
    [10, 1],
    [11, 2],
  ])("p%i of 1..10 is %i", (p, expected) => {
    expect(percentile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], p)).toBe(expected);
  });

  test("median of an odd count is the middle value", () => {
    expect(median([3, 1, 2])).toBe(2);
  });

  test("a pooled percentile is taken over every run's calls, not per run", () => {
    // Per run, p99 is the 2nd slowest of 100 calls (100 here, 1 in the even run); pooled,
    // the 3rd slowest of 200.
    const slowTail = { latencies: [...Array(98).fill(1), 100, 100] };
    const even = { latencies: Array(100).fill(1) };
    expect(percentile(slowTail.latencies, 99)).toBe(100);
    expect(pooledPercentile([slowTail, even], 99)).toBe(1);
    expect(pooledPercentile([slowTail, slowTail], 99)).toBe(100);
  });
});

describe("markdownTable()", () => {
  test("shows value, baseline, ratio and whether the target is met, for both directions", () => {
    const table = markdownTable([
      {
        name: "fast",
        value: 950,
        baselineName: "echo",
        baselineValue: 1000,
        unit: "calls/s",
        better: "higher",
        target: 0.9,
      },
      { name: "slow", value: 3, baselineName: "raw", baselineValue: 1, unit: "ms", better: "lower", target: 2 },
    ]);
    expect(table).toContain("| fast | 950 calls/s | echo | 1,000 calls/s | 0.950x |  | ≥ 0.9x | yes |");
    expect(table).toContain("| slow | 3.00 ms | raw | 1.00 ms | 3.00x |  | ≤ 2x | **no** |");
  });

  test("a paired row shows the median of its pair ratios, how many pairs, and their spread", () => {
    const ratios = [1.2, 0.9, 1.0, 1.1, 1.3, 0.95, 1.05, 1.15, 1.0, 1.25];
    const table = markdownTable([
      {
        name: "paired",
        value: 5,
        baselineName: "base",
        baselineValue: 4,
        unit: "ms",
        better: "lower",
        target: 1.5,
        ...pairStats(ratios),
      },
    ]);
    expect(table).toContain("| paired | 5.00 ms | base | 4.00 ms | 1.05x | 10 (0.900–1.25x) | ≤ 1.5x | yes |");
  });
});

describe("measurePair()", () => {
  test("runs the first measurement first in even pairs and second in odd ones, and answers in its own order", async () => {
    const order: string[] = [];
    const measure = (name: string) => async () => {
      order.push(name);
      return name;
    };
    expect(await measurePair(0, measure("a"), measure("b"))).toEqual(["a", "b"]);
    expect(await measurePair(1, measure("a"), measure("b"))).toEqual(["a", "b"]);
    expect(order).toEqual(["a", "b", "b", "a"]);
  });
});
