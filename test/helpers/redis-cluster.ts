/**
 * A private Redis Cluster of three masters (and, if asked, a replica each) on free loopback
 * ports, made with `redis-cli --cluster create`, for the cluster tests. A shard without a
 * master leaves the others serving (cluster-require-full-coverage no). Nothing is kept on
 * disk beyond a temporary directory for the nodes' cluster config files, removed on stop.
 */

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { formatHostPort } from "../../src/server/host-port.js";
import type { RedisClusterTarget } from "../../src/server/store/redis-target.js";
import { pollUntil } from "./deadline.js";
import { RedisProcess } from "./redis-process.js";

const run = promisify(execFile);

export class RedisCluster {
  private constructor(
    readonly nodes: RedisProcess[],
    private readonly dir: string,
  ) {}

  /** HOST:PORT of every node, comma-separated, as --redis-cluster takes them. */
  get seeds(): string {
    return this.target.nodes.map(formatHostPort).join(",");
  }

  /** The cluster, as the server's configuration names a Redis. */
  get target(): RedisClusterTarget {
    return { mode: "cluster", nodes: this.nodes.map((node) => ({ host: "127.0.0.1", port: node.port })) };
  }

  /** Starts three masters (and `replicas` per master), joins them and waits until every node says the cluster is ok. */
  static async start({ replicas = 0 }: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), "syncgen-cluster-"));
    const nodes: RedisProcess[] = [];
    try {
      for (let i = 0; i < 3 * (1 + replicas); i++) {
        nodes.push(
          await RedisProcess.start({
            args: (port) => [
              ...["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`)],
              ...["--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no", "--dir", dir],
            ],
          }),
        );
      }
      const cluster = new RedisCluster(nodes, dir);
      await run("redis-cli", [
        "--cluster",
        "create",
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ]);
      await cluster.waitUntilOk();
      if (replicas > 0) await cluster.#replicasInSync();
      return cluster;
    } catch (error) {
      await Promise.all(nodes.map((node) => node.stop()));
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Resolves once every replica's link to its master is up. */
  async #replicasInSync(ms = 20_000): Promise<void> {
    const inSync = async (): Promise<boolean> => {
      const infos = await Promise.all(
        this.nodes.map(
          async (node) => (await run("redis-cli", ["-p", String(node.port), "info", "replication"])).stdout,
        ),
      );
      return infos.every((info) => info.includes("role:master") || info.includes("master_link_status:up"));
    };
    await pollUntil(inSync, "the replicas to sync", ms);
  }

  /** Resolves once every node reports cluster_state:ok and agrees on the slots. */
  async waitUntilOk(ms = 20_000, nodes: RedisProcess[] = this.nodes): Promise<void> {
    const ok = async (): Promise<boolean> => {
      for (const node of nodes) {
        const { stdout } = await run("redis-cli", ["-p", String(node.port), "cluster", "info"]);
        if (!stdout.includes("cluster_state:ok") || !stdout.includes("cluster_slots_assigned:16384")) return false;
      }
      return true;
    };
    await pollUntil(ok, "the cluster to be ok", ms);
  }

  /** The master node serving `slot`, and its id, as `via` (by default the first node) sees it. */
  async ownerOf(
    slot: number,
    via: RedisProcess = this.nodes[0] as RedisProcess,
  ): Promise<{ node: RedisProcess; id: string }> {
    const redis = new Redis(via.port, "127.0.0.1");
    try {
      const ranges = (await redis.call("CLUSTER", "SLOTS")) as [number, number, [string, number, string]][];
      for (const [from, to, [, port, id]] of ranges) {
        if (slot >= from && slot <= to) {
          const node = this.nodes.find((n) => n.port === port);
          if (node) return { node, id };
        }
      }
    } finally {
      redis.disconnect();
    }
    throw new Error(`no node serves slot ${slot}`);
  }

  /**
   * Moves `slot` with its keys to another master, step by step as `redis-cli --cluster
   * reshard` does: IMPORTING on the target, MIGRATING on the source, MIGRATE of every key,
   * then SETSLOT NODE on every node. `between` runs once the keys have moved and before
   * ownership changes hands (writes then get ASK redirections). Resolves with the new owner.
   */
  async moveSlot(slot: number, between: () => Promise<void> = async () => {}): Promise<RedisProcess> {
    const { node: from, id: fromId } = await this.ownerOf(slot);
    const to = this.nodes.find((node) => node !== from) as RedisProcess;
    const connections = new Map(this.nodes.map((node) => [node, new Redis(node.port, "127.0.0.1")]));
    const on = (node: RedisProcess): Redis => connections.get(node) as Redis;
    try {
      const toId = (await on(to).call("CLUSTER", "MYID")) as string;
      await on(to).call("CLUSTER", "SETSLOT", slot, "IMPORTING", fromId);
      await on(from).call("CLUSTER", "SETSLOT", slot, "MIGRATING", toId);
      for (;;) {
        const keys = (await on(from).call("CLUSTER", "GETKEYSINSLOT", slot, 100)) as string[];
        if (keys.length === 0) break;
        await on(from).call("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", ...keys);
      }
      await between();
      for (const node of [to, from, ...this.nodes.filter((n) => n !== to && n !== from)]) {
        await on(node).call("CLUSTER", "SETSLOT", slot, "NODE", toId);
      }
    } finally {
      for (const connection of connections.values()) connection.disconnect();
    }
    await this.waitUntilOk();
    return to;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
