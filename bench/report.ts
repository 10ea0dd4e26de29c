/**
 * The benchmark table: each row a figure beside its baseline measured in the same run, the
 * ratio, and the target the issues set. Printed, and written as JSON and Markdown.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** One measured figure against its baseline. */
export interface BenchRow {
  /** What was measured. */
  name: string;
  value: number;
  /** The baseline, measured in the same run. */
  baselineName: string;
  baselineValue: number;
  unit: string;
  /** "higher" when more is better (throughput), "lower" when less is (latency, cost). */
  better: "higher" | "lower";
  /** The target ratio value/baseline (at least for "higher", at most for "lower"), if any. */
  target?: number;
  /**
   * The ratio, when measured pair by pair (the median of per-pair ratios is steadier on a
   * drifting machine than the ratio of two medians); value/baselineValue otherwise.
   */
  pairedRatio?: number;
  /** When paired: how many pairs, and the 10th and 90th percentiles of their ratios. */
  pairs?: { count: number; p10: number; p90: number };
}

/** A row's paired fields from per-pair ratios: the median, the count and the spread. */
export function pairStats(ratios: number[]): Pick<BenchRow, "pairedRatio" | "pairs"> {
  return {
    pairedRatio: median(ratios),
    pairs: { count: ratios.length, p10: percentile(ratios, 10), p90: percentile(ratios, 90) },
  };
}

function ratio(row: BenchRow): number {
  return row.pairedRatio ?? row.value / row.baselineValue;
}

function meets(row: BenchRow): boolean | undefined {
  if (row.target === undefined) return undefined;
  return row.better === "higher" ? ratio(row) >= row.target : ratio(row) <= row.target;
}

function format(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toPrecision(3);
}

/** The table as Markdown. */
export function markdownTable(rows: BenchRow[]): string {
  const lines = [
    "| measurement | value | baseline | baseline value | ratio | pairs (p10–p90 of their ratios) | target | met |",
    "| --- | ---: | --- | ---: | ---: | --- | ---: | :---: |",
  ];
  for (const row of rows) {
    const target = row.target === undefined ? "" : `${row.better === "higher" ? "≥" : "≤"} ${row.target}x`;
    const met = meets(row);
    const pairs =
      row.pairs === undefined ? "" : `${row.pairs.count} (${format(row.pairs.p10)}–${format(row.pairs.p90)}x)`;
    lines.push(
      `| ${row.name} | ${format(row.value)} ${row.unit} | ${row.baselineName} | ${format(row.baselineValue)} ${row.unit} | ${format(ratio(row))}x | ${pairs} | ${target} | ${met === undefined ? "" : met ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

/** Prints the table and writes bench/results/latest.{json,md}. */
export async function publish(rows: BenchRow[], context: Record<string, string>): Promise<void> {
  const table = markdownTable(rows);
  console.log(`\n${table}\n`);
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  const results = rows.map((row) => ({ ...row, ratio: ratio(row), met: meets(row) }));
  await writeFile(`${dir}latest.json`, `${JSON.stringify({ context, results }, null, 2)}\n`);
  const header = Object.entries(context)
    .map(([k, v]) => `- ${k}: ${v}`)
    .join("\n");
  await writeFile(`${dir}latest.md`, `# syncgen benchmarks\n\n${header}\n\n${table}\n`);
}

/**
 * Runs one pair's two measurements, `a` first in even pairs and `b` first in odd ones, so a
 * drift within a pair cancels out over pairs; resolves with [a's, b's].
 */
export async function measurePair<A, B>(pair: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (pair % 2 === 0) {
    const first = await a();
    return [first, await b()];
  }
  const first = await b();
  return [await a(), first];
}

/**
 * The p-th percentile of every call of several runs, pooled. A p99 taken per 1-second run is
 * its 10th-50th slowest call, and the median of such ratios swung by 13-38% between full
 * runs; pooled over the rounds it rests on hundreds of calls.
 */
export function pooledPercentile(runs: { latencies: number[] }[], p: number): number {
  return percentile(
    runs.flatMap((run) => run.latencies),
    p,
  );
}

/** The p-th percentile (0-100) of samples. */
export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** The median of repeated measurements. */
export function median(values: number[]): number {
  return percentile(values, 50);
}
