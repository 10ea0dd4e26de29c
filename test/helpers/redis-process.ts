/**
 * Private redis-server processes on free loopback ports, for tests that kill, pause or
 * restart Redis. Never touches the shared Redis on 6379. Keeps nothing on disk.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { withDeadline } from "./deadline.js";
import { freePort } from "./free-port.js";

export class RedisProcess {
  #child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server on a free port and waits until it accepts connections. */
  static async start(): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort());
    await redis.restart();
    return redis;
  }

  /** (Re)starts the server on the same port, empty. */
  async restart(): Promise<void> {
    if (this.#child) throw new Error("redis-server is already running");
    const child = spawn(
      "redis-server",
      ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    let output = "";
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) resolve();
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
    // --loglevel warning still prints the ready line at notice level on some builds; ping too.
    await withDeadline(Promise.race([ready, this.#pingUntilUp()]), 10_000, `redis-server on ${this.port}`);
  }

  async #pingUntilUp(): Promise<void> {
    const { Redis } = await import("ioredis");
    for (;;) {
      const probe = new Redis({
        port: this.port,
        host: "127.0.0.1",
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      probe.on("error", () => {});
      try {
        await probe.connect();
        await probe.ping();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      } finally {
        probe.disconnect();
      }
    }
  }

  /** Kills the server at once (SIGKILL), losing all its data; resolves when it has exited. */
  async kill(): Promise<void> {
    await this.#signal("SIGKILL");
  }

  /** Stops the server (SIGTERM). */
  async stop(): Promise<void> {
    await this.#signal("SIGTERM");
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

/**
 * A Redis for tests that only read and write: REDIS_URL when set (CI's shared one), else a
 * private server. Tests isolate themselves with a unique key prefix, never by flushing.
 */
export async function sharedRedis(): Promise<{ url: string; close(): Promise<void> }> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) return { url: fromEnv, close: async () => {} };
  const redis = await RedisProcess.start();
  return { url: redis.url, close: () => redis.stop() };
}

/** A prefix no other test uses. */
export function uniquePrefix(): string {
  return `syncgen-test:${process.pid}:${Math.random().toString(36).slice(2)}:`;
}
