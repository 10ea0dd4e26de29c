/**
 * The generation scheme, shared by every store (redis-scripts.ts mirrors it in Lua, since
 * Redis must apply it atomically).
 *
 * Every write of a key — create, bump and clear — takes a revision
 *
 *     next = max(previous + 1, now in microseconds)
 *
 * where `previous` is the key's last revision (its generation, or the revision kept in its
 * tombstone after a clear; 0 when nothing is recorded) and `now` is the store's clock (Redis's
 * own TIME, so every replica shares one clock). Create and bump store `next` as the key's
 * generation; clear stores a tombstone holding `next` that expires once the clock has passed
 * it (plus a margin). Hence:
 *
 * - While a key's record exists, each write is at least previous + 1: no repeat, whatever the
 *   clock does.
 * - When the record is gone (tombstone expired, Redis restarted empty, a failover lost the
 *   last writes) the next write takes `now`. It repeats nothing provided the clock now reads
 *   later than every lost revision. A revision runs ahead of the clock only by the number of
 *   writes to one key within one microsecond (none: a write takes longer), so this holds
 *   unless the clock steps back — or a promoted replica's clock lags — by more than the time
 *   between the last lost write and the first new one. That is the exact bound.
 * - A clear followed in the same microsecond by re-creation: the tombstone still holds the
 *   clear's revision, so the new generation is at least that + 1.
 * - Numbers stay below 2^53 (exact in JavaScript and in Lua's doubles) until the year 2255.
 *
 * The stored form is one signed integer per key: v > 0 is a live key at generation v; v < 0
 * is a tombstone of a clear at revision -v. Change notifications carry the same form.
 */
import type { KeyState } from "./generation-store.js";

/** The revision of the next write: max(previous + 1, now). */
export function nextRevision(previous: bigint, nowMicros: bigint): bigint {
  const successor = previous + 1n;
  return successor > nowMicros ? successor : nowMicros;
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
 * Decodes the stored signed form (see above). Null, empty or anything that is not an integer
 * (a record someone else wrote) means nothing is recorded — as the Lua script reads it too,
 * so the next write replaces it with a fresh generation.
 */
export function decodeRecord(raw: string | bigint | null | undefined): KeyState {
  if (raw === null || raw === undefined) return { generation: 0n, revision: 0n };
  if (typeof raw === "string" && !INTEGER.test(raw)) return { generation: 0n, revision: 0n };
  const value = typeof raw === "bigint" ? raw : BigInt(raw);
  return value > 0n ? { generation: value, revision: value } : { generation: 0n, revision: -value };
}

const INTEGER = /^-?\d{1,19}$/;

/** Encodes a state into the stored signed form. */
export function encodeRecord(state: KeyState): bigint {
  return state.generation > 0n ? state.generation : -state.revision;
}

/** How long a tombstone outlives its revision, for a lagging clock elsewhere. */
export const TOMBSTONE_MARGIN_MS = 10_000;
