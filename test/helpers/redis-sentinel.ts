/**
 * A private Redis Sentinel group on free loopback ports: a master, a replica and three
 * Sentinels (quorum 2) that fail over after one second of silence. The replica replicates
 * through a proxy that can be stalled, so a test can make the master acknowledge writes the
 * replica never gets, as asynchronous replication allows.
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { formatHostPort } from "../../src/server/host-port.js";
import type { RedisTarget } from "../../src/server/store/redis-target.js";
import { pollUntil } from "./deadline.js";
import { RedisProcess } from "./redis-process.js";
import { type StallingProxy, stallingProxy } from "./stalling-proxy.js";

export class RedisSentinelGroup {
  private constructor(
    readonly name: string,
    /** The servers, master first as started; after a failover the roles differ. */
    readonly servers: RedisProcess[],
    readonly sentinels: RedisProcess[],
    private readonly replication: StallingProxy,
    private readonly dir: string,
  ) {}

  /** The URL the server takes: redis+sentinel://HOST:PORT,.../NAME. */
  get url(): string {
    return `redis+sentinel://${this.target.sentinels.map(formatHostPort).join(",")}/${this.name}`;
  }

  /** The group's master, as the server's configuration names a Redis. */
  get target(): Extract<RedisTarget, { mode: "sentinel" }> {
    return {
      mode: "sentinel",
      sentinels: this.sentinels.map((sentinel) => ({ host: "127.0.0.1", port: sentinel.port })),
      name: this.name,
    };
  }

  static async start(name = "syncgen"): Promise<RedisSentinelGroup> {
    const dir = mkdtempSync(join(tmpdir(), "syncgen-sentinel-"));
    const started: RedisProcess[] = [];
    let replication: StallingProxy | undefined;
    try {
      const master = await RedisProcess.start();
      started.push(master);
      replication = await stallingProxy(`127.0.0.1:${master.port}`);
      const through = replication.port;
      const replica = await RedisProcess.start({ args: () => ["--replicaof", "127.0.0.1", String(through)] });
      started.push(replica);
      const sentinels: RedisProcess[] = [];
      for (let i = 0; i < 3; i++) {
        const sentinel = await RedisProcess.start({
          config: (port) => {
            const file = join(dir, `sentinel-${port}.conf`);
            writeFileSync(
              file,
              [
                `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
                `sentinel down-after-milliseconds ${name} 1000`,
                // Sentinels "fix" a replica whose master address is not the one they monitor (this
                // one replicates through the stalling proxy) once it has been so for this long:
                // long enough that a test's stalled replication stays stalled.
                `sentinel failover-timeout ${name} 120000`,
                `sentinel parallel-syncs ${name} 1`,
                "",
              ].join("\n"),
            );
            return file;
          },
          args: () => ["--sentinel"],
          readyLine: "+monitor master",
        });
        sentinels.push(sentinel);
        started.push(sentinel);
      }
      const group = new RedisSentinelGroup(name, [master, replica], sentinels, replication, dir);
      await group.#waitFor(async () => {
        const info = await group.#ask(replica.port, (r) => r.info("replication"));
        const known = await group.#ask(sentinels[0]?.port ?? 0, (r) => r.call("SENTINEL", "REPLICAS", name));
        return info.includes("master_link_status:up") && Array.isArray(known) && known.length === 1;
      }, "the replica to sync and the Sentinels to know it");
      return group;
    } catch (error) {
      await Promise.all(started.map((p) => p.stop()));
      await replication?.close();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Resolves once the replica has every write the master has acknowledged so far (WAIT);
   * rejects after `ms`. Under load replication can lag well behind the clients' replies.
   */
  async replicaCaughtUp(ms = 20_000): Promise<void> {
    const acknowledged = await this.#ask(await this.masterPort(), (r) => r.call("WAIT", "1", String(ms)));
    if (Number(acknowledged) < 1) throw new Error(`the replica did not catch up with the master within ${ms} ms`);
  }

  /** From now on the master's writes no longer reach the replica (its link stays up). */
  stallReplication(): void {
    this.replication.stall();
  }

  /** The port of the master the Sentinels name now. */
  async masterPort(): Promise<number> {
    const address = (await this.#ask(this.sentinels[0]?.port ?? 0, (r) =>
      r.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.name),
    )) as [string, string];
    return Number(address[1]);
  }

  /** The server process that is master now. */
  async master(): Promise<RedisProcess> {
    const port = await this.masterPort();
    const found = this.servers.find((s) => s.port === port);
    if (!found) throw new Error(`the Sentinels name an unknown master on port ${port}`);
    return found;
  }

  /** Resolves once the Sentinels name a master other than the one on `oldPort`. */
  async failedOver(oldPort: number, ms = 20_000): Promise<void> {
    await this.#waitFor(async () => (await this.masterPort()) !== oldPort, "the Sentinels to fail over", ms);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((p) => p.stop()));
    await this.replication.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #ask<T>(port: number, question: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await redis.connect();
      return await question(redis);
    } finally {
      redis.disconnect();
    }
  }

  async #waitFor(condition: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
    await pollUntil(() => condition().catch(() => false), what, ms);
  }
}
