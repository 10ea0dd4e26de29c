/**
 * The processes a benchmark runs: servers under test and load generators, each its own
 * process so no figure includes another's CPU. Server CPU and memory are read from /proc
 * (the same counters process.cpuUsage() and process.memoryUsage().rss report inside).
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CliProcess } from "../test/helpers/cli.js";
import { LineAgent } from "../test/helpers/line-agent.js";
import { memoryAfterGc, ServeProcess } from "../test/helpers/serve-process.js";

const BENCH = fileURLToPath(new URL(".", import.meta.url));

/**
 * Where the processes run: servers under test on one core, everything else (load
 * generators, Redis, this process) on another, so load and server never take turns on one
 * core and figures drift less between runs. Nothing is pinned on a one-core machine.
 */
export const CORES = os.cpus().length >= 2 ? { server: 0, load: 1 } : undefined;

/**
 * CPU time so far (in the kernel's ticks) of all cores, or of core `cpu`, and how much of it
 * the hypervisor stole: on a shared virtual machine, how busy the host was. A stolen stretch
 * on the server core lands in whatever that core was running, tens of ms at a time.
 */
export async function cpuTimes(cpu?: number): Promise<{ total: number; steal: number }> {
  const line = cpu === undefined ? "cpu" : `cpu${cpu}`;
  const fields =
    (await readFile("/proc/stat", "utf8"))
      .split("\n")
      .find((entry) => entry.split(/\s+/)[0] === line)
      ?.trim()
      .split(/\s+/)
      .slice(1)
      .map(Number) ?? [];
  // user nice system idle iowait irq softirq steal (guest time is counted in user already).
  const counted = fields.slice(0, 8);
  return { total: counted.reduce((sum, value) => sum + value, 0), steal: counted[7] ?? 0 };
}

/** Pins every thread of process `pid` to `cpu` (taskset, from util-linux). */
export async function pin(pid: number | undefined, cpu: number): Promise<void> {
  if (pid === undefined) throw new Error("the process has no pid: it did not start");
  await promisify(execFile)("taskset", ["--all-tasks", "--cpu-list", "--pid", String(cpu), String(pid)]);
}

/** Pins this process, and so every process it starts from now on, to the load core. */
export async function pinLoad(): Promise<string> {
  if (CORES === undefined) return "not pinned (one core)";
  await pin(process.pid, CORES.load);
  return `servers under test on CPU ${CORES.server}; load generators, Redis and the bench on CPU ${CORES.load} (taskset)`;
}

/** A process under test with a gRPC address (and, for `syncgen serve --http-listen`, an HTTP one). */
export class ServerProcess {
  private constructor(
    readonly cli: CliProcess,
    readonly address: string,
    /** http://HOST:PORT of its HTTP port (Connect, gRPC-Web), when started with --http-listen. */
    readonly httpUrl?: string,
  ) {}

  /**
   * Starts `syncgen serve` with `args` (no metrics: they cost CPU per call); resolves once its
   * store is ready. With `--http-listen` in `args`, httpUrl is the HTTP port it bound.
   */
  static async syncgen(args: string[]): Promise<ServerProcess> {
    // With the GC hook, so rssAfterGc() can be read; it costs nothing until asked.
    const served = await ServeProcess.start(["--metrics-listen", "", "--log-level", "info", ...args], {
      gcHook: true,
    });
    if (CORES !== undefined) await pin(served.cli.child.pid, CORES.server);
    const http = served.httpAddress;
    return new ServerProcess(served.cli, served.address, http === undefined ? undefined : `http://${http}`);
  }

  /** Starts the bare grpc-js echo server (peers/echo-server.ts). */
  static async echo(): Promise<ServerProcess> {
    const cli = new CliProcess(
      [],
      {},
      {
        nodeArgs: ["--expose-gc", "--import", "tsx"],
        script: `${BENCH}peers/echo-server.ts`,
      },
    );
    const line = await cli.line((candidate) => candidate.startsWith("ready "), 20_000);
    if (CORES !== undefined) await pin(cli.child.pid, CORES.server);
    return new ServerProcess(cli, `127.0.0.1:${/ready (\d+)/.exec(line)?.[1]}`);
  }

  /** CPU seconds (user + system) the process has used. */
  cpuSeconds(): Promise<number> {
    return this.cli.cpuSeconds();
  }

  /** Resident memory, in bytes. */
  rssBytes(): Promise<number> {
    return this.cli.rssBytes();
  }

  /** Resident memory right after a full garbage collection, in bytes. */
  async rssAfterGc(): Promise<number> {
    return (await memoryAfterGc(this.cli)).rss;
  }

  /**
   * Nanoseconds every thread of the process has run: from /proc/PID/task/TID/schedstat, which
   * counts in nanoseconds where /proc/PID/stat counts in 10 ms ticks. Threads matter: V8's
   * marking and sweeping run on helper threads, after the main thread has moved on.
   */
  async runNanoseconds(): Promise<number> {
    const pid = this.cli.child.pid;
    if (pid === undefined) return 0;
    const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
    // A thread may end between the listing and its reading.
    const readings = await Promise.all(
      tasks.map((task) => readFile(`/proc/${pid}/task/${task}/schedstat`, "utf8").catch(() => "0")),
    );
    return readings.reduce((sum, reading) => sum + Number(reading.split(" ")[0]), 0);
  }

  async stop(): Promise<void> {
    await this.cli.stop("SIGTERM", 15_000).catch(() => this.cli.stop("SIGKILL"));
  }
}

/** untilQuiet(): a server is quiet when it ran less than this share of a window's time. */
const QUIET = { windowMs: 10, busyShare: 0.05, timeoutMs: 5_000 };

/**
 * Resolves once none of `servers` has done more than a trace of work for a short window, or
 * after a few seconds (then the trial runs anyway, and stderr says so). Servers under test share a core, and one
 * server's leftover work runs in the other's trials: at 10,000 watchers, the bare server's
 * major GCs (60 ms of marking, finished on helper threads after its trial) fell in syncgen's
 * next trial, and made syncgen's three slowest of 150 (133-162 ms against a 51 ms median).
 */
export async function untilQuiet(servers: readonly ServerProcess[]): Promise<void> {
  const deadline = Date.now() + QUIET.timeoutMs;
  let before = await Promise.all(servers.map((server) => server.runNanoseconds()));
  while (Date.now() < deadline) {
    await sleep(QUIET.windowMs);
    const after = await Promise.all(servers.map((server) => server.runNanoseconds()));
    if (after.every((ns, index) => ns - (before[index] ?? 0) < QUIET.windowMs * 1e6 * QUIET.busyShare)) return;
    before = after;
  }
  console.error(`a server under test was still busy after ${QUIET.timeoutMs / 1000} s; timing the trial anyway`);
}

/**
 * V8 flags of the load generators: a young generation of 64 MB a half (V8's default tops
 * out at 16), so fewer of the objects a run allocates are promoted, the old generation fills
 * slowly, and the generator's major GCs, whose marking shares the load core with what is
 * timed, are rare. With the default, the 10,000-watcher fan-out trials a major GC of the
 * watcher process fell in took 2-3x the median and decided the p99 of 201 trials (564 ms
 * against a 226 ms median; 312 against 176 with this).
 */
export const LOAD_NODE_ARGS = ["--max-semi-space-size=64"];

/** A long-lived load/unary-load.ts process: one run per call, in order. */
export class UnaryLoad {
  readonly #agent = new LineAgent(
    process.execPath,
    [...LOAD_NODE_ARGS, "--import", "tsx", `${BENCH}load/unary-load.ts`],
    process.cwd(),
  );

  /** Runs one load and resolves with its JSON result. */
  async run<T>(spec: object): Promise<T> {
    // The load process answers with T's JSON form.
    return (await this.#agent.ask(JSON.stringify(spec), 120_000)) as T;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** A Bump or Clear the writer made: when it was sent (monotonicMs()) and its round trip (ms). */
export interface TimedWrite {
  start: number;
  ms: number;
}

/** A load/writer.ts process: Bumps and Clears timed in a process that does nothing else. */
export class KeyWriter {
  readonly #agent: LineAgent;

  /** Starts a writer of the server at `address` (gRPC HOST:PORT). */
  constructor(address: string) {
    this.#agent = new LineAgent(
      process.execPath,
      ["--import", "tsx", `${BENCH}load/writer.ts`, address],
      process.cwd(),
    );
  }

  /** Bumps `key`; resolves with when the writer sent it and the round trip it timed. */
  bump(key: string): Promise<TimedWrite> {
    return this.#write("bump", key);
  }

  /** Clears `key`, as bump() does. */
  clear(key: string): Promise<TimedWrite> {
    return this.#write("clear", key);
  }

  async #write(op: "bump" | "clear", key: string): Promise<TimedWrite> {
    const answer = await this.#agent.ask(JSON.stringify({ op, key }), 30_000);
    if (typeof answer.ms !== "number" || typeof answer.start !== "number") {
      throw new Error(`the writer's ${op} of "${key}" failed: ${String(answer.error)}`);
    }
    return { start: answer.start, ms: answer.ms };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
