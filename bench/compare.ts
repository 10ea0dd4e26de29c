/**
 * `npm run bench:compare -- A.json B.json`: how far two runs' ratios (each a copy of
 * bench/results/latest.json) agree. Lists every row that moved by more than ±10% between
 * them, and whether it moved within the two runs' bootstrap intervals (the luck of too few
 * pairs: more would steady it) or beyond them (the machine differed between the runs).
 */
import { readFile } from "node:fs/promises";
import { AGREEMENT, compareRuns, type PublishedRow } from "./report.js";

async function rows(path: string): Promise<PublishedRow[]> {
  try {
    const parsed: { results: PublishedRow[] } = JSON.parse(await readFile(path, "utf8"));
    return parsed.results;
  } catch (error) {
    console.error(`cannot read ${path} as a bench report (bench/results/latest.json): ${(error as Error).message}`);
    process.exit(2);
  }
}

const [first, second] = process.argv.slice(2);
if (first === undefined || second === undefined) {
  console.error("usage: npm run bench:compare -- A.json B.json");
  process.exit(2);
}
const { compared, agreed, disagreements } = compareRuns(await rows(first), await rows(second));
for (const { name, before, after, withinIntervals } of disagreements) {
  const change = after / before - 1;
  const percent = `${change > 0 ? "+" : ""}${(change * 100).toFixed(1)}%`;
  const why =
    withinIntervals === undefined ? "no interval" : withinIntervals ? "within the intervals" : "beyond the intervals";
  console.log(`${percent.padStart(8)}  ${before.toPrecision(3)}x -> ${after.toPrecision(3)}x  (${why})  ${name}`);
}
console.log(`${agreed} of ${compared} ratios agree within ±${AGREEMENT * 100}%`);
