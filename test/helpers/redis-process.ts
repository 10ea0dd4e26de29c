/**
 * Private redis-server processes on free loopback ports, for tests that kill, pause or
 * restart Redis. Never touches the shared Redis on 6379. Saves nothing; what a replica
 * writes while it syncs goes to a directory of its own, removed when it stops.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RedisTarget } from "../../src/server/store/redis-target.js";
import { withDeadline } from "./deadline.js";
import { freePort } from "./free-port.js";

export class RedisProcess {
  #child: ChildProcess | undefined;
  /** Its working directory: a replica's sync files land here, never in the work tree. */
  readonly #dir = mkdtempSync(join(tmpdir(), "syncgen-redis-"));

  /** `args` go to redis-server after the port and persistence settings; `config` is a config file to start from. */
  private constructor(
    readonly port: number,
    private readonly args: readonly string[],
    private readonly config: string | undefined,
    private readonly readyLine: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** This server, as the server's configuration names a Redis. */
  get target(): RedisTarget {
    return { mode: "single", url: this.url };
  }

  /**
   * Starts redis-server on a free port and waits until it accepts connections. `args` are
   * further settings (e.g. `--replicaof`); `config(port)` writes a config file to start from
   * (a Sentinel's), given the port chosen.
   */
  static async start(
    options: { args?: (port: number) => string[]; config?: (port: number) => string; readyLine?: string } = {},
  ): Promise<RedisProcess> {
    // A free port can be taken by another test worker before redis-server binds it: retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const readyLine = options.readyLine ?? "Ready to accept connections";
      const redis = new RedisProcess(port, options.args?.(port) ?? [], options.config?.(port), readyLine);
      try {
        await redis.restart();
        return redis;
      } catch (error) {
        redis.#removeDir();
        if (attempt === 3) throw error;
      }
    }
  }

  /** (Re)starts the server on the same port, empty. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("redis-server is already running");
    const child = spawn(
      "redis-server",
      [
        ...(this.config ? [this.config] : []),
        ...["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.#dir],
        ...["--loglevel", "notice", ...this.args],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    let output = "";
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes(this.readyLine)) resolve();
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
    await withDeadline(ready, 10_000, `redis-server on ${this.port}`).catch((error: unknown) => {
      child.kill("SIGKILL");
      this.#child = undefined;
      throw error;
    });
  }

  /** Kills the server at once (SIGKILL), losing all its data; resolves when it has exited. */
  async kill(): Promise<void> {
    await this.#signal("SIGKILL");
  }

  /** Stops the server (SIGTERM) and removes its directory. */
  async stop(): Promise<void> {
    await this.#signal("SIGTERM");
    this.#removeDir();
  }

  #removeDir(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** Freezes the server: connections stay open, nothing is answered. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    if (signal !== "SIGKILL") child.kill("SIGCONT");
    await withDeadline(exited, 10_000, `redis-server on ${this.port} to exit`);
  }
}

/** A Redis to read and write in, isolated by key prefix. */
export interface SharedRedis {
  readonly url: string;
  /** The same, as the server's configuration names a Redis. */
  readonly target: RedisTarget;
  /** A prefix no other test uses; its keys are deleted by close(). */
  prefix(): string;
  close(): Promise<void>;
}

/**
 * A Redis for tests that only read and write: REDIS_URL when set (CI's shared one), else a
 * private server. Tests isolate themselves with a unique key prefix, never by flushing, and
 * delete what they wrote under it when done.
 */
export async function sharedRedis(): Promise<SharedRedis> {
  const fromEnv = process.env.REDIS_URL;
  const own = fromEnv ? undefined : await RedisProcess.start();
  const url = fromEnv ?? (own as RedisProcess).url;
  const prefixes: string[] = [];
  return {
    url,
    target: { mode: "single", url },
    prefix() {
      const prefix = uniquePrefix();
      prefixes.push(prefix);
      return prefix;
    },
    async close() {
      if (own) return own.stop();
      const { Redis } = await import("ioredis");
      const redis = new Redis(url);
      try {
        for (const prefix of prefixes) {
          // Prefixes contain no glob characters (see uniquePrefix).
          for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
            if (keys.length > 0) await redis.unlink(...keys);
          }
        }
      } finally {
        redis.disconnect();
      }
    },
  };
}

/** A prefix no other test uses (letters, digits and colons only). */
export function uniquePrefix(): string {
  return `syncgen-test:${process.pid}:${Math.random().toString(36).slice(2)}:`;
}
