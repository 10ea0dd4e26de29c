/**
 * Where a key lives in Redis: its record and its change channel. Both carry the same hash
 * tag, so in a Cluster they share a slot (one shard holds the record, runs the write script
 * and publishes the change), and the layout is the same on one server, under Sentinel and in
 * a Cluster. A key containing braces (which would end or empty the tag) is tagged by its
 * SHA-1 instead and appended after the tag, so every key keeps a name of its own.
 *
 *   users/42  ->  syncgen:gen:{users/42}         syncgen:chg:{users/42}
 *   a{b}      ->  syncgen:gen:{#<sha1>}a{b}      syncgen:chg:{#<sha1>}a{b}
 */
import { createHash } from "node:crypto";

/** The record and channel names of keys under one prefix (which must hold no braces). */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** The key's record (a signed integer; see generation-scheme.ts). */
  record(key: string): string {
    return `${this.prefix}gen:${tagged(key)}`;
  }

  /** The channel the key's changes are published on. */
  channel(key: string): string {
    return `${this.prefix}chg:${tagged(key)}`;
  }
}

function tagged(key: string): string {
  if (!/[{}]/.test(key)) return `{${key}}`;
  return `{#${createHash("sha1").update(key, "utf8").digest("hex")}}${key}`;
}
