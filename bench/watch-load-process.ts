/** Drives a watch-load.ts process (see there) from the orchestrator. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./load/watch-load.ts", import.meta.url));

export class WatchLoad {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #waiter: (() => void) | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.#lines.push(line);
      this.#waiter?.();
    });
  }

  /** Starts the watchers; resolves once every stream is live. */
  static async start(spec: {
    target: string;
    key: string;
    streams: number;
    perConnection: number;
  }): Promise<WatchLoad> {
    const child = spawn(process.execPath, ["--import", "tsx", SCRIPT, JSON.stringify(spec)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const load = new WatchLoad(child);
    await load.#next(60_000);
    return load;
  }

  /** Arms every stream to time its next message. */
  async arm(): Promise<void> {
    this.#child.stdin?.write(`${JSON.stringify({ op: "arm" })}\n`);
    await this.#next(10_000);
  }

  /** Resolves with the arrival times of the first and last stream's message (epoch ms). */
  async result(): Promise<{ first: number; last: number }> {
    return JSON.parse(await this.#next(30_000)) as { first: number; last: number };
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, "exit");
    this.#child.stdin?.write(`${JSON.stringify({ op: "close" })}\n`);
    await exited;
  }

  #next(ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the watch load did not answer in time")), ms);
      const check = (): void => {
        const line = this.#lines.shift();
        if (line === undefined) return;
        clearTimeout(timer);
        this.#waiter = undefined;
        resolve(line);
      };
      this.#waiter = check;
      check();
    });
  }
}
