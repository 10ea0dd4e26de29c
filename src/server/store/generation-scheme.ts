/**
 * The generation scheme, shared by every store (redis-scripts.ts mirrors it in Lua, since
 * Redis must apply it atomically).
 *
 * A Bump of a key whose record exists gives exactly its generation + 1, as djblets'
 * GenerationSynchronizer.mark_updated() does with the cache's increment — provided the record
 * was written by the same Redis history (see "epoch" below). Every other write — creating a
 * key, re-creating it after a clear or after its record was lost, and clearing it — takes the
 * revision
 *
 *     next = max(previous + 1, now in microseconds)
 *
 * where `previous` is the key's last revision (its generation, or the revision kept in its
 * tombstone after a clear; 0 when nothing is recorded) and `now` is the store's clock (Redis's
 * own TIME, so every replica shares one clock). Create and bump store the revision as the
 * key's generation; clear stores a tombstone holding it that expires once the clock has
 * passed it (plus a margin). Hence:
 *
 * - While a key's record exists, each write is at least previous + 1: no repeat, whatever the
 *   clock does.
 * - A key's generation runs ahead of the clock only if it was bumped more than once per
 *   microsecond on average since it last took the clock: never, in practice (a write takes
 *   longer).
 * - When the record is gone (tombstone expired, Redis restarted empty, a failover lost the
 *   last writes) the next write takes `now`. It repeats nothing provided the clock now reads
 *   later than every lost generation, which (by the point above) it does unless the clock
 *   steps back — or a promoted replica's clock lags — by more than the time between the last
 *   lost write and the first new one. That is the exact bound.
 * - A clear followed in the same microsecond by re-creation: the tombstone still holds the
 *   clear's revision, so the new generation is at least that + 1.
 * - Numbers stay below 2^53 (exact in JavaScript and in Lua's doubles) until the year 2255.
 *
 * - A record can also outlive writes made after it: a failover to a replica that had not yet
 *   received the last Bumps keeps the key at an older generation, and + 1 would hand out a
 *   lost one again. So in Redis every live record carries the epoch it was written in: the
 *   first 12 hex digits of the master's replication ID (INFO replication's master_replid,
 *   read by the write script), which a promoted replica replaces with a new one. A Bump of a
 *   record from another epoch takes the clock, as a creation does: above every lost value,
 *   by the point about the clock above. (The memory store has one history: no epochs.)
 *
 * The stored form is one signed integer per key, and for a live key in Redis its epoch:
 * "v:epoch" (or "v") with v > 0 is a live key at generation v; "-v" is a tombstone of a
 * clear at revision v. Change notifications carry the same form.
 */
import type { KeyState } from "./generation-store.js";

/** What a write does to a key. */
export type Write = "create" | "bump" | "clear";

/**
 * The revision a write gives a key in state `previous`: its generation + 1 for a Bump of a
 * live key; max(previous revision + 1, now) for anything else. `now` is read only when needed.
 */
export function nextRevision(previous: KeyState, write: Write, nowMicros: () => bigint): bigint {
  if (write === "bump" && previous.generation > 0n) return previous.generation + 1n;
  const successor = previous.revision + 1n;
  const now = nowMicros();
  return successor > now ? successor : now;
}

/**
 * How long a tombstone of `revision` must last: until the clock has passed the revision,
 * plus `marginMs` so a lagging clock elsewhere (a promoted replica) still sees it.
 */
export function tombstoneTtlMs(revision: bigint, nowMicros: bigint, marginMs: number): number {
  const ahead = revision > nowMicros ? Number((revision - nowMicros + 999n) / 1000n) : 0;
  return ahead + marginMs;
}

/**
 * Decodes the stored form (see above); the epoch is the write script's alone. Null, empty or
 * anything else (a record someone else wrote) means nothing is recorded — as the Lua script
 * reads it too, so the next write replaces it with a fresh generation.
 */
export function decodeRecord(raw: string | bigint | null | undefined): KeyState {
  if (raw === null || raw === undefined) return { generation: 0n, revision: 0n };
  let value: bigint;
  if (typeof raw === "bigint") {
    value = raw;
  } else {
    const number = LIVE_RECORD.exec(raw)?.[1] ?? (TOMBSTONE.test(raw) ? raw : undefined);
    if (number === undefined) return { generation: 0n, revision: 0n };
    value = BigInt(number);
  }
  return value > 0n ? { generation: value, revision: value } : { generation: 0n, revision: -value };
}

/** A live key's record: its generation, and (in Redis) the epoch it was written in. */
const LIVE_RECORD = /^(\d{1,19})(?::[0-9a-f]{1,40})?$/;
/** A tombstone's record: its revision, negated. */
const TOMBSTONE = /^-\d{1,19}$/;

/** Encodes a state into the stored signed form. */
export function encodeRecord(state: KeyState): bigint {
  return state.generation > 0n ? state.generation : -state.revision;
}

/** How long a tombstone outlives its revision, for a lagging clock elsewhere. */
export const TOMBSTONE_MARGIN_MS = 10_000;
