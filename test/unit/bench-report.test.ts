/** The benchmark table's arithmetic: percentiles, ratios and whether a target is met. */
import { describe, expect, test } from "vitest";
import {
  bootstrapInterval,
  compareRuns,
  markdownTable,
  measurePair,
  median,
  pairStats,
  percentile,
  percentileOfTrials,
  pooledPercentileOfGroups,
} from "../../bench/report.js";

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
    const slowTail = [...Array(98).fill(1), 100, 100];
    const even = Array(100).fill(1);
    expect(percentile(slowTail, 99)).toBe(100);
    expect(pooledPercentileOfGroups([slowTail, even], [even], 99).value).toBe(1);
    expect(pooledPercentileOfGroups([slowTail, slowTail], [even], 99).value).toBe(100);
  });
});

describe("bootstrap intervals", () => {
  const noisy = Array.from({ length: 40 }, (_, i) => 1 + ((i * 37) % 40) / 100);

  test("are repeatable, hold the point estimate, and narrow as pairs are added", () => {
    const few = pairStats(noisy.slice(0, 8));
    expect(pairStats(noisy.slice(0, 8)).interval).toEqual(few.interval);
    const many = pairStats([...noisy, ...noisy, ...noisy, ...noisy]);
    for (const stats of [few, many]) {
      expect(stats.interval?.low).toBeLessThanOrEqual(stats.pairedRatio as number);
      expect(stats.interval?.high).toBeGreaterThanOrEqual(stats.pairedRatio as number);
    }
    const width = (stats: typeof few) => (stats.interval?.high ?? 0) - (stats.interval?.low ?? 0);
    expect(width(many)).toBeLessThan(width(few));
  });

  test("of identical pairs is a point", () => {
    expect(pairStats([1.5, 1.5, 1.5]).interval).toEqual({ low: 1.5, high: 1.5 });
  });

  test("of trials keep each trial's two sides together", () => {
    // Both sides slow in the same trials: however resampled, the p99s move together.
    const trials = Array.from({ length: 100 }, (_, i) => (i % 10 === 0 ? 50 : 10));
    const row = percentileOfTrials(
      trials.map((ms) => ms * 2),
      trials,
      99,
    );
    expect(row.value / row.baselineValue).toBe(2);
    expect(row.interval).toEqual({ low: 2, high: 2 });
  });

  test("of groups resample whole groups", () => {
    // Every group is one value repeated: a resample's pooled median is one of the groups'.
    const groups = [Array(5).fill(10), Array(5).fill(20), Array(5).fill(30)];
    const row = pooledPercentileOfGroups(groups, [Array(5).fill(10)], 50);
    expect(row.value).toBe(20);
    expect([1, 2, 3]).toContain(row.interval?.low);
    expect([1, 2, 3]).toContain(row.interval?.high);
  });

  test("take the 5th and 95th percentiles of the statistic", () => {
    let calls = 0;
    const interval = bootstrapInterval(() => calls++, 100);
    expect(interval).toEqual({ low: 4, high: 94 });
  });
});

describe("compareRuns()", () => {
  test("counts the rows within ±10% and says whether the others moved within their intervals", () => {
    const before = [
      { name: "steady", ratio: 1.0 },
      { name: "lucky", ratio: 1.0, interval: { low: 0.8, high: 1.2 } },
      { name: "drifted", ratio: 1.0, interval: { low: 0.98, high: 1.02 } },
      { name: "gone", ratio: 1.0 },
    ];
    const after = [
      { name: "steady", ratio: 1.09 },
      { name: "lucky", ratio: 1.15, interval: { low: 0.95, high: 1.3 } },
      { name: "drifted", ratio: 0.8, interval: { low: 0.78, high: 0.82 } },
      { name: "new", ratio: 1.0 },
    ];
    expect(compareRuns(before, after)).toEqual({
      compared: 3,
      agreed: 1,
      disagreements: [
        { name: "lucky", before: 1.0, after: 1.15, withinIntervals: true },
        { name: "drifted", before: 1.0, after: 0.8, withinIntervals: false },
      ],
    });
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
    expect(table).toContain("| fast | 950 calls/s | echo | 1,000 calls/s | 0.950x |  |  | ≥ 0.9x | yes |");
    expect(table).toContain("| slow | 3.00 ms | raw | 1.00 ms | 3.00x |  |  | ≤ 2x | **no** |");
  });

  test("a paired row shows the median of its pair ratios, its interval, how many pairs, and their spread", () => {
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
    expect(table).toMatch(
      /\| paired \| 5\.00 ms \| base \| 4\.00 ms \| 1\.05x \| [\d.]+–[\d.]+x \| 10 \(0\.900–1\.25x\) \| ≤ 1\.5x \| yes \|/,
    );
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
