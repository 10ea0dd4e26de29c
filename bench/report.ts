/**
 * The benchmark table: each row a figure beside its baseline measured in the same run, the
 * ratio, and the target the issues set. Printed, and written as JSON and Markdown.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "../test/helpers/prng.js";

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
  /**
   * Where the ratio lands in 90% of bootstrap resamples of the samples it was made from: how
   * far another run would move it by the luck of its samples alone. A row whose runs disagree
   * beyond their intervals moved with the machine, not for want of pairs.
   */
  interval?: Interval;
}

/** The 5th and 95th percentiles of a ratio over resamples. */
export interface Interval {
  low: number;
  high: number;
}

/** Resamples per interval: the 5th and 95th percentiles are then the 50th-from-the-end of each side. */
const RESAMPLES = 1000;

/**
 * A 90% bootstrap interval: `statistic` is computed RESAMPLES times, each time over samples
 * drawn with replacement (it asks `resample(n)` for n indices into each list it draws from).
 * Seeded, so the same samples give the same interval.
 */
export function bootstrapInterval(
  statistic: (resample: (count: number) => Uint32Array) => number,
  resamples = RESAMPLES,
): Interval {
  const random = mulberry32(0x5eed);
  const resample = (count: number): Uint32Array => {
    const indices = new Uint32Array(count);
    for (let i = 0; i < count; i++) indices[i] = Math.floor(random() * count);
    return indices;
  };
  const values = Array.from({ length: resamples }, () => statistic(resample));
  return { low: percentile(values, 5), high: percentile(values, 95) };
}

/** The values at `indices`. */
function pick(values: ArrayLike<number>, indices: Uint32Array): Float64Array {
  const picked = new Float64Array(indices.length);
  for (let i = 0; i < indices.length; i++) picked[i] = values[indices[i] as number] as number;
  return picked;
}

/** A row's paired fields from per-pair ratios: the median, the count, the spread and its interval. */
export function pairStats(ratios: number[]): Pick<BenchRow, "pairedRatio" | "pairs" | "interval"> {
  return {
    pairedRatio: median(ratios),
    pairs: { count: ratios.length, p10: percentile(ratios, 10), p90: percentile(ratios, 90) },
    interval: bootstrapInterval((resample) => median(pick(ratios, resample(ratios.length)))),
  };
}

/**
 * A row comparing the p-th percentile of trials with the baseline's, where trial i of each was
 * taken together (so resampling keeps them together).
 */
export function percentileOfTrials(
  trials: number[],
  baselineTrials: number[],
  p: number,
): Pick<BenchRow, "value" | "baselineValue" | "interval"> {
  return {
    value: percentile(trials, p),
    baselineValue: percentile(baselineTrials, p),
    interval: bootstrapInterval((resample) => {
      const indices = resample(trials.length);
      return percentile(pick(trials, indices), p) / percentile(pick(baselineTrials, indices), p);
    }),
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
    "| measurement | value | baseline | baseline value | ratio | 90% interval | pairs (p10–p90 of their ratios) | target | met |",
    "| --- | ---: | --- | ---: | ---: | --- | --- | ---: | :---: |",
  ];
  for (const row of rows) {
    const target = row.target === undefined ? "" : `${row.better === "higher" ? "≥" : "≤"} ${row.target}x`;
    const met = meets(row);
    const pairs =
      row.pairs === undefined ? "" : `${row.pairs.count} (${format(row.pairs.p10)}–${format(row.pairs.p90)}x)`;
    const interval = row.interval === undefined ? "" : `${format(row.interval.low)}–${format(row.interval.high)}x`;
    lines.push(
      `| ${row.name} | ${format(row.value)} ${row.unit} | ${row.baselineName} | ${format(row.baselineValue)} ${row.unit} | ${format(ratio(row))}x | ${interval} | ${pairs} | ${target} | ${met === undefined ? "" : met ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

/** A row as publish() writes it to latest.json. */
export interface PublishedRow {
  name: string;
  ratio: number;
  interval?: Interval;
}

/** How far apart two runs' ratios of one row may be and still agree (issue 15: ±10%). */
export const AGREEMENT = 0.1;

/** A row whose ratio moved by more than AGREEMENT between two runs. */
export interface Disagreement {
  name: string;
  before: number;
  after: number;
  /**
   * Whether the two runs' intervals overlap: if so, the luck of the samples may explain the
   * move and more pairs would steady it; if not, the machine differed between the runs.
   * Undefined when a run has no interval for the row.
   */
  withinIntervals?: boolean;
}

/** Compares two runs' rows by name: how many agree within AGREEMENT, and those that do not. */
export function compareRuns(
  before: PublishedRow[],
  after: PublishedRow[],
): { compared: number; agreed: number; disagreements: Disagreement[] } {
  const afterByName = new Map(after.map((row) => [row.name, row]));
  let compared = 0;
  const disagreements: Disagreement[] = [];
  for (const row of before) {
    const other = afterByName.get(row.name);
    if (other === undefined) continue;
    compared++;
    if (Math.abs(other.ratio / row.ratio - 1) <= AGREEMENT) continue;
    const [a, b] = [row.interval, other.interval];
    disagreements.push({
      name: row.name,
      before: row.ratio,
      after: other.ratio,
      ...(a && b ? { withinIntervals: a.low <= b.high && b.low <= a.high } : {}),
    });
  }
  return { compared, agreed: compared - disagreements.length, disagreements };
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
 * A row comparing the p-th percentile of samples pooled from several groups (the calls of
 * several runs, the readings of several processes) with the baseline's. Its interval
 * resamples whole groups: samples of one group move together (a stall delays every call in
 * flight; a process's heap decides all its readings). Fewer resamples than elsewhere, as
 * each pools up to tens of thousands of samples.
 */
export function pooledPercentileOfGroups(
  groups: number[][],
  baselineGroups: number[][],
  p: number,
): Pick<BenchRow, "value" | "baselineValue" | "interval"> {
  const pooled = (from: number[][], indices: Uint32Array): number =>
    percentile(Array.from(indices, (index) => from[index] ?? []).flat(), p);
  return {
    value: percentile(groups.flat(), p),
    baselineValue: percentile(baselineGroups.flat(), p),
    interval: bootstrapInterval(
      (resample) => pooled(groups, resample(groups.length)) / pooled(baselineGroups, resample(baselineGroups.length)),
      200,
    ),
  };
}

/** The p-th percentile (0-100) of samples. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(samples).sort();
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** The median of repeated measurements. */
export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}
