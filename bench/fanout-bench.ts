/**
 * Watch fan-out: 1,000 and 10,000 watchers of one key, 100 streams per connection; the time
 * from a Bump to the last watcher receiving it, beside a bare grpc-js server pushing one
 * message to as many streams (both watched at once, trials alternating between them), on
 * each store: on Redis the change reaches the hub through the store's pub/sub, a hop the
 * bare server does not make, so the memory store's rows time the fan-out itself. And server
 * RSS per open stream (Redis store), beside the bare server's, read from several fresh pairs
 * of servers. Each trial's change is sent by a writer process of its own (load/writer.ts
 * says why), once both servers are quiet (processes.ts: untilQuiet).
 */

import { CORES, cpuTimes, KeyWriter, ServerProcess, type TimedWrite, untilQuiet } from "./processes.js";
import {
  type BenchRow,
  measurePair,
  median,
  pairStats,
  percentileOfTrials,
  pooledPercentileOfGroups,
} from "./report.js";
import { WatchLoad } from "./watch-load-process.js";

/**
 * Trials of a Connect fan-out configuration (connect-bench.ts): 7 let its ratio swing by 40%
 * between runs, 15 by 13-26%. A trial at 5,000 watchers takes about 0.7 s.
 */
export const TRIALS = 31;

/** How the watchers reach the server: over gRPC (the default) or Connect on its HTTP port. */
export interface WatchVia {
  protocol?: "grpc" | "connect";
  /** Watchers at the lowest CPU priority, so the trigger's own round trip is not queued behind them. */
  lowPriority?: boolean;
}

/** `streams` watchers open on a server, each trial timing `trigger` to the last of them. */
export class FanOutWatchers {
  private constructor(
    private readonly server: ServerProcess,
    private readonly streams: number,
    private readonly trigger: () => Promise<TimedWrite>,
    private readonly load: WatchLoad,
    private readonly rssBefore: { plain: number; afterGc: number },
    private readonly coreSharers: readonly ServerProcess[],
  ) {}

  /**
   * Opens `streams` watchers of `key` on `server` (over `via`), after a warm-up batch.
   * `coreSharers` are the servers on its core (itself among them), whose work from before
   * must be over when a trial starts.
   */
  static async open(
    server: ServerProcess,
    streams: number,
    key: string,
    trigger: () => Promise<TimedWrite>,
    via: WatchVia = {},
    coreSharers: readonly ServerProcess[] = [server],
  ): Promise<FanOutWatchers> {
    const target = via.protocol === "connect" ? server.httpUrl : server.address;
    if (target === undefined) throw new Error("Connect watchers need a server started with --http-listen");
    const spec = { ...via, target, key, perConnection: 100 };
    // Open and close a first batch, so one-off costs (code, pools, the Redis subscription)
    // are not charged to the streams measured.
    const warmup = await WatchLoad.start({ ...spec, streams: 500 });
    await warmup.arm();
    await trigger();
    await warmup.result();
    await warmup.close();
    const rssBefore = { plain: await server.rssBytes(), afterGc: await server.rssAfterGc() };
    const load = await WatchLoad.start({ ...spec, streams });
    return new FanOutWatchers(server, streams, trigger, load, rssBefore, coreSharers);
  }

  /**
   * Times one `trigger`, from when its writer process sent it until the last watcher received
   * it (ms); and counts the server's CPU time from before the trigger until then (s).
   */
  async trial(): Promise<{ lastMs: number; serverCpuSeconds: number }> {
    await untilQuiet(this.coreSharers);
    await this.arm();
    const cpuBefore = await this.server.cpuSeconds();
    const { start } = await this.trigger();
    const { last } = await this.delivered();
    return { lastMs: last - start, serverCpuSeconds: (await this.server.cpuSeconds()) - cpuBefore };
  }

  /** Arms every watcher to time its next message (trial() does, before its trigger). */
  arm(): Promise<void> {
    return this.load.arm();
  }

  /** Resolves once every armed watcher has its next message, with when the first and last got it (clock.ts). */
  delivered(): Promise<{ first: number; last: number }> {
    return this.load.result();
  }

  /** The server's RSS per open stream, in bytes, since before they opened: as it is, or right after a full GC. */
  async rssPerStream(afterGc = false): Promise<number> {
    const rss = afterGc
      ? (await this.server.rssAfterGc()) - this.rssBefore.afterGc
      : (await this.server.rssBytes()) - this.rssBefore.plain;
    return rss / this.streams;
  }

  close(): Promise<void> {
    return this.load.close();
  }
}

/**
 * Trials per fan-out configuration, alternating between syncgen and the bare server. The p99
 * row needs many: with fewer than 100 trials it is the slowest one, which swung by 30% between
 * runs at 21; at 201 (1,000 watchers) and 101 (10,000) it is the 2nd-3rd slowest, and it still
 * moved between 0.51x and 0.98x. Now the 7th and 3rd slowest.
 */
function fanOutPairs(streams: number): number {
  return streams >= 10_000 ? 201 : 601;
}

/**
 * Fresh pairs of servers whose RSS is read, apart from the timed trials: RSS per stream
 * differs more between two processes than between readings of one. The bare server held
 * 15.0, 19.6 and 16.8 KiB per stream at 1,000 in three runs, each steady within its run
 * (p10-p90 of its readings within 8%), so a row read from one pair of processes was one
 * sample, however many readings it took.
 */
function rssSamples(streams: number): number {
  return streams >= 10_000 ? 3 : 6;
}

/** RSS is read this many times per sample, every RSS_EVERY trials. */
const RSS_READINGS = 3;
const RSS_EVERY = 10;
/**
 * Untimed trials of fresh servers before the pairs. In a trace of every trial of fresh pairs
 * of servers, the first 5-6 trials of both were 1.5-5x the rest at 1,000 watchers (the first
 * 2x at 10,000), and syncgen's 12th took 3-4x its neighbours on each of three fresh pairs.
 */
export const WARM_TRIALS = 20;

/** Runs `count` untimed trials of each of `sides` at once. */
export async function untimedTrials(sides: FanOutWatchers[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.all(sides.map((side) => side.trial()));
}

/** Each side's RSS per stream, as read from one pair of servers. */
interface RssReadings {
  measured: number[];
  baseline: number[];
  measuredGc: number[];
  baselineGc: number[];
}

/** A server whose watchers a fan-out times: how it starts, what triggers a change, how they connect. */
export interface WatchedServer {
  start: () => Promise<ServerProcess>;
  /** Makes the change every watcher is sent, through the writer process of this server. */
  trigger: (writer: KeyWriter) => Promise<TimedWrite>;
  via?: WatchVia;
}

/** Starts both servers, opens `streams` watchers of one key on each, warms them up, and stops them all after `use`. */
export async function withWatchedPair<T>(
  streams: number,
  sides: [WatchedServer, WatchedServer],
  use: (a: FanOutWatchers, b: FanOutWatchers) => Promise<T>,
): Promise<T> {
  const servers: ServerProcess[] = [];
  const writers: KeyWriter[] = [];
  const opened: FanOutWatchers[] = [];
  try {
    for (const side of sides) servers.push(await side.start());
    for (const [index, side] of sides.entries()) {
      const server = servers[index] as ServerProcess;
      const writer = new KeyWriter(server.address);
      writers.push(writer);
      opened.push(await FanOutWatchers.open(server, streams, "fanout", () => side.trigger(writer), side.via, servers));
    }
    const [a, b] = opened as [FanOutWatchers, FanOutWatchers];
    await untimedTrials([a, b], WARM_TRIALS);
    return await use(a, b);
  } finally {
    await Promise.all(opened.map((watchers) => watchers.close()));
    await Promise.all(writers.map((writer) => writer.close()));
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** The store a syncgen server under test keeps its generations in. */
type Store = { kind: "Redis"; url: string } | { kind: "memory" };

/** syncgen (on `store`) and a bare server, each with `streams` watchers, warmed up. */
function withFanOutPair<T>(
  store: Store,
  streams: number,
  use: (measured: FanOutWatchers, baseline: FanOutWatchers) => Promise<T>,
): Promise<T> {
  const storeArgs = store.kind === "Redis" ? ["--redis", store.url, "--prefix", `bench-fanout-${streams}:`] : [];
  const syncgen: WatchedServer = {
    start: () => ServerProcess.syncgen(storeArgs),
    trigger: (writer) => writer.bump("fanout"),
  };
  const bare: WatchedServer = { start: () => ServerProcess.echo(), trigger: (writer) => writer.clear("fanout") };
  return withWatchedPair(streams, [syncgen, bare], use);
}

/**
 * The timed trials, all on one pair of servers: the slowest trials of fresh servers are
 * theirs (above), and with the trials split over six fresh pairs every pair's start-up
 * trials were timed. No RSS is read here: a reading's forced GCs leave both servers
 * sweeping on their core, and the bare server's four slowest of 201 trials at 10,000
 * watchers once each came right after one.
 */
function timedTrials(store: Store, streams: number): Promise<TimedTrials> {
  return withFanOutPair(store, streams, async (measured, baseline) => {
    const trials: TimedTrials = { syncgenMs: [], bareMs: [], unstolen: { syncgenMs: [], bareMs: [] } };
    for (let pair = 0; pair < fanOutPairs(streams); pair++) {
      const [ours, theirs] = await measurePair(
        pair,
        () => trialWithSteal(measured),
        () => trialWithSteal(baseline),
      );
      trials.syncgenMs.push(ours.lastMs);
      trials.bareMs.push(theirs.lastMs);
      if (ours.stolenTicks === 0 && theirs.stolenTicks === 0) {
        trials.unstolen.syncgenMs.push(ours.lastMs);
        trials.unstolen.bareMs.push(theirs.lastMs);
      }
    }
    return trials;
  });
}

/** Each pair's two trials (side by side, by pair). */
interface PairedTrials {
  syncgenMs: number[];
  bareMs: number[];
}

/** Each pair's ratio, syncgen's trial to the bare server's. */
function pairRatios({ syncgenMs, bareMs }: PairedTrials): number[] {
  return syncgenMs.map((ms, pair) => ms / (bareMs[pair] ?? Number.NaN));
}

/** Every pair, and apart those during which the hypervisor took no time from the server core. */
interface TimedTrials extends PairedTrials {
  unstolen: PairedTrials;
}

/**
 * One trial, and how many ticks the hypervisor stole from the server core meanwhile. On a
 * shared host it takes the core 10-40 ms at a time, whatever runs there: in one session's
 * 601 trials at 1,000 watchers, 15-16% of each side's trials lost some, and syncgen's ten
 * slowest all did (39-75 ms, against 11-12 ms at p50).
 */
async function trialWithSteal(side: FanOutWatchers): Promise<{ lastMs: number; stolenTicks: number }> {
  const before = CORES === undefined ? 0 : (await cpuTimes(CORES.server)).steal;
  const { lastMs } = await side.trial();
  const after = CORES === undefined ? 0 : (await cpuTimes(CORES.server)).steal;
  return { lastMs, stolenTicks: after - before };
}

/**
 * RSS per stream of one fresh pair, read during trials, in the steady state: right after
 * opening, garbage from the opening itself (decoded requests, first writes) inflates RSS by
 * chance amounts.
 */
function rssSample(redisUrl: string, streams: number): Promise<RssReadings> {
  return withFanOutPair({ kind: "Redis", url: redisUrl }, streams, async (measured, baseline) => {
    const readings: RssReadings = { measured: [], baseline: [], measuredGc: [], baselineGc: [] };
    for (let reading = 0; reading < RSS_READINGS; reading++) {
      await untimedTrials([measured, baseline], RSS_EVERY);
      readings.measured.push(await measured.rssPerStream());
      readings.baseline.push(await baseline.rssPerStream());
      readings.measuredGc.push(await measured.rssPerStream(true));
      readings.baselineGc.push(await baseline.rssPerStream(true));
    }
    return readings;
  });
}

/**
 * RSS per stream: the median of every reading of every pair of servers, beside the bare server's;
 * the pairs column is over pairs of servers (each one's ratio of medians), and so is the interval.
 */
export function rssRow(
  measured: number[][],
  baseline: number[][],
): Pick<BenchRow, "value" | "baselineValue" | "pairs" | "interval"> {
  const pooled = pooledPercentileOfGroups(measured, baseline, 50);
  const ratios = measured.map((readings, index) => median(readings) / median(baseline[index] ?? []));
  return {
    ...pooled,
    value: pooled.value / 1024,
    baselineValue: pooled.baselineValue / 1024,
    pairs: pairStats(ratios).pairs,
  };
}

/** The Bump-to-last-watcher rows of one store's timed trials. */
function lastWatcherRows(label: string, trials: TimedTrials): BenchRow[] {
  const { syncgenMs, bareMs, unstolen } = trials;
  const lastWatcher = { baselineName: "bare grpc-js push to as many streams", unit: "ms", better: "lower" } as const;
  const latency = { ...lastWatcher, target: 0.8 } as const;
  // Left out when the hypervisor took time during every pair (there is no figure to give),
  // and when it took none during any (the row would repeat the one before it).
  const unstolenP99: BenchRow[] =
    unstolen.syncgenMs.length === 0 || unstolen.syncgenMs.length === syncgenMs.length
      ? []
      : [
          {
            name: `${label}: Bump to last watcher, p99 of the trials the hypervisor took no server-core time from`,
            ...percentileOfTrials(unstolen.syncgenMs, unstolen.bareMs, 99),
            pairs: pairStats(pairRatios(unstolen)).pairs,
            ...lastWatcher,
          },
        ];
  return [
    {
      name: `${label}: Bump to last watcher, p50`,
      value: median(syncgenMs),
      baselineValue: median(bareMs),
      ...latency,
      ...pairStats(pairRatios(trials)),
    },
    {
      name: `${label}: Bump to last watcher, p99 of ${syncgenMs.length} trials`,
      ...percentileOfTrials(syncgenMs, bareMs, 99),
      ...latency,
    },
    ...unstolenP99,
  ];
}

export async function fanOutBench(redisUrl: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const streams of [1000, 10_000]) {
    const label = `fan-out to ${streams.toLocaleString("en-US")} watchers`;
    rows.push(...lastWatcherRows(label, await timedTrials({ kind: "Redis", url: redisUrl }, streams)));
    rows.push(...lastWatcherRows(`${label}, memory store`, await timedTrials({ kind: "memory" }, streams)));
    const samples: RssReadings[] = [];
    for (let sample = 0; sample < rssSamples(streams); sample++) samples.push(await rssSample(redisUrl, streams));
    const rss = (side: keyof RssReadings): number[][] => samples.map((sample) => sample[side]);
    const memory = { baselineName: "bare grpc-js server", unit: "KiB", better: "lower", target: 1 } as const;
    rows.push(
      {
        name: `${label}: server RSS per open stream (no forced GC)`,
        ...rssRow(rss("measured"), rss("baseline")),
        ...memory,
      },
      {
        name: `${label}: server RSS per open stream (after a forced GC)`,
        ...rssRow(rss("measuredGc"), rss("baselineGc")),
        ...memory,
      },
    );
  }
  return rows;
}
