/** Which Redis a store uses: one server, the master of a Sentinel group, or a Cluster. */
import { formatHostPort, type HostPort } from "../host-port.js";

/** One Redis server, by redis:// or rediss:// URL, or the master of the Sentinel group `name`. */
export type RedisServerTarget =
  | { mode: "single"; url: string }
  | { mode: "sentinel"; sentinels: HostPort[]; name: string; username?: string; password?: string };

/** A Redis Cluster, found through any of `nodes`. */
export type RedisClusterTarget = { mode: "cluster"; nodes: HostPort[] };

/** Which Redis to use, and how to reach it. */
export type RedisTarget = RedisServerTarget | RedisClusterTarget;

/** A short description for logs (never a password). */
export function describeTarget(target: RedisTarget): string {
  switch (target.mode) {
    case "single":
      return `redis ${new URL(target.url).host}`;
    case "sentinel":
      return `redis sentinel "${target.name}" via ${target.sentinels.map(formatHostPort).join(",")}`;
    case "cluster":
      return `redis cluster via ${target.nodes.map(formatHostPort).join(",")}`;
  }
}
