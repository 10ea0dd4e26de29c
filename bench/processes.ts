/**
 * The processes a benchmark runs: servers under test and load generators, each its own
 * process so no figure includes another's CPU. Server CPU and memory are read from /proc
 * (the same counters process.cpuUsage() and process.memoryUsage().rss report inside).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/helpers/free-port.js";

const CLI = fileURLToPath(new URL("../bin/syncgen.js", import.meta.url));
const BENCH = fileURLToPath(new URL(".", import.meta.url));

/** A process under test with a gRPC address. */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly address: string,
  ) {}

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Starts `syncgen serve` with `args` on a free port; resolves once its store is ready. */
  static async syncgen(args: string[]): Promise<ServerProcess> {
    const address = `127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, [CLI, "serve", "--listen", address, "--log-level", "info", ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, REDIS_URL: "" },
    });
    await waitForOutput(child, '"state":"ready"', "syncgen serve");
    return new ServerProcess(child, address);
  }

  /** Starts the bare grpc-js echo server (peers/echo-server.ts). */
  static async echo(): Promise<ServerProcess> {
    const child = spawn(process.execPath, ["--import", "tsx", `${BENCH}peers/echo-server.ts`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await waitForOutput(child, "ready ", "the echo server");
    const port = /ready (\d+)/.exec(line)?.[1];
    return new ServerProcess(child, `127.0.0.1:${port}`);
  }

  /** CPU seconds (user + system) the process has used. */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces): utime is 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Resident memory, in bytes. */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Resolves with the first stdout chunk containing `marker`, keeps draining stdout after. */
function waitForOutput(child: ChildProcess, marker: string, what: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(marker)) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        child.stdout?.resume();
        resolve(output);
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}: ${output}`)));
  });
}

/** A long-lived load/unary-load.ts process: one run per call, in order. */
export class UnaryLoad {
  readonly #child: ChildProcess;
  readonly #answers: string[] = [];
  #waiter: (() => void) | undefined;

  constructor() {
    this.#child = spawn(process.execPath, ["--import", "tsx", `${BENCH}load/unary-load.ts`], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.#answers.push(line);
      this.#waiter?.();
    });
  }

  /** Runs one load and resolves with its JSON result. */
  run<T>(spec: object): Promise<T> {
    this.#child.stdin?.write(`${JSON.stringify(spec)}\n`);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the unary load did not answer in time")), 120_000);
      const check = (): void => {
        const line = this.#answers.shift();
        if (line === undefined) return;
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve(JSON.parse(line) as T);
      };
      this.#waiter = check;
      check();
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, "exit");
    this.#child.stdin?.end();
    await exited;
  }
}
