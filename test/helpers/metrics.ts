/** Reading a server's Prometheus metrics over HTTP, as an operator's scraper does. */
import { withDeadline } from "./deadline.js";

/** One scrape of http://ADDRESS/metrics: its samples, and the names of the metrics it declares. */
async function scrape(address: string): Promise<{ samples: Map<string, number>; declared: Set<string> }> {
  const response = await withDeadline(fetch(`http://${address}/metrics`), 20_000, `a scrape of ${address}`);
  if (response.status !== 200) throw new Error(`GET http://${address}/metrics answered ${response.status}`);
  const samples = new Map<string, number>();
  const declared = new Set<string>();
  for (const line of (await response.text()).split("\n")) {
    if (line.startsWith("# TYPE ")) declared.add(line.split(" ")[2] as string);
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { samples, declared };
}

/** Every sample of one scrape, keyed by its name and labels as the exposition text spells them. */
export async function scrapeMetrics(address: string): Promise<Map<string, number>> {
  return (await scrape(address)).samples;
}

/**
 * The sum of `name`'s samples whose labels contain `labels` (all of them by default): 0 when
 * none matches (a labelled counter has no sample until first counted); throws when the server
 * does not declare `name` at all.
 */
export async function metricValue(address: string, name: string, labels = ""): Promise<number> {
  const { samples, declared } = await scrape(address);
  if (!declared.has(name)) throw new Error(`${address} declares no metric ${name}`);
  let sum = 0;
  for (const [series, value] of samples) {
    const brace = series.indexOf("{");
    if ((brace === -1 ? series : series.slice(0, brace)) === name && series.includes(labels)) sum += value;
  }
  return sum;
}
