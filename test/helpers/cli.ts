/** Runs the real `syncgen` CLI (bin/syncgen.js, built by `npm ci`) as a child process. */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Condition, withDeadline } from "./deadline.js";

export const CLI = fileURLToPath(new URL("../../bin/syncgen.js", import.meta.url));

/** Runs one CLI command to completion. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
  });
}

/** How to start the CLI besides its arguments. */
export interface CliLaunch {
  /** Options for node itself, e.g. a capped heap. */
  nodeArgs?: string[];
  /** The script to run instead of bin/syncgen.js (e.g. serve-with-gc.mjs). */
  script?: string;
}

/** A long-running CLI process whose output lines can be awaited. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  readonly stderrLines: string[] = [];
  /** Notified of every line and of the exit. */
  readonly #output = new Condition();

  constructor(args: string[], env: NodeJS.ProcessEnv = {}, launch: CliLaunch = {}) {
    this.child = spawn(process.execPath, [...(launch.nodeArgs ?? []), launch.script ?? CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#collect(this.child.stdout, this.lines);
    this.#collect(this.child.stderr, this.stderrLines);
    this.child.on("exit", () => this.#output.notify());
  }

  /** Resolves with the first stdout line that `match` accepts; rejects at the deadline, or if syncgen exits first. */
  line(match: (line: string) => boolean, ms = 10_000, stream: "stdout" | "stderr" = "stdout"): Promise<string> {
    const lines = stream === "stdout" ? this.lines : this.stderrLines;
    return this.#output.until(
      () => {
        const found = lines.find(match);
        if (found === undefined && this.child.exitCode !== null) {
          throw new Error(`syncgen exited (${this.child.exitCode}) first; stderr: ${this.stderrLines.join("\n")}`);
        }
        return found;
      },
      ms,
      () => `a matching line from syncgen ${stream}; got: ${lines.slice(-5).join(" | ")}`,
    );
  }

  /**
   * For `syncgen serve`: waits for its start line and resolves with the addresses it
   * actually bound. Start it with `--listen 127.0.0.1:0` (and `--metrics-listen 127.0.0.1:0`,
   * `--http-listen 127.0.0.1:0`):
   * a port chosen free beforehand can be taken by another test before the server binds it.
   */
  async listening(
    ms = 20_000,
  ): Promise<{ address: string; metricsAddress: string | undefined; httpAddress: string | undefined }> {
    const start = JSON.parse(await this.line((line) => line.includes('"event":"start"'), ms)) as {
      address: string;
      metrics?: string;
      http?: string;
    };
    return {
      address: start.address,
      metricsAddress: start.metrics?.replace(/^http:\/\/|\/metrics$/g, ""),
      httpAddress: start.http,
    };
  }

  /** Resident memory, in bytes (from /proc, the counter process.memoryUsage().rss reads inside). */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.child.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  }

  /** CPU seconds (user + system) the process has used (from /proc, as process.cpuUsage() inside). */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.child.pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces): utime is 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Sends `signal` and resolves with the exit code; SIGKILLs if it does not exit in time. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 10_000): Promise<number | null> {
    // A process killed by a signal has no exit code, only a signal code.
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = once(this.child, "exit");
    this.child.kill(signal);
    try {
      await withDeadline(exited, ms, "syncgen to exit");
    } catch (error) {
      this.child.kill("SIGKILL");
      throw error;
    }
    return this.child.exitCode;
  }

  #collect(stream: NodeJS.ReadableStream | null, into: string[]): void {
    let rest = "";
    stream?.on("data", (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split("\n");
      rest = parts.pop() ?? "";
      into.push(...parts);
      this.#output.notify();
    });
  }
}
