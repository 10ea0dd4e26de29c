/** The memory store's side of the generation scheme, on a clock we control. */
import { describe, expect, test } from "vitest";
import { MemoryStore } from "../../src/server/store/memory-store.js";
import { cleanupsAfterEach } from "../helpers/cleanups.js";

const cleanups = cleanupsAfterEach();

async function storeAt(clock: { now: bigint }): Promise<MemoryStore> {
  const store = new MemoryStore({ clock: () => clock.now });
  cleanups.push(() => store.close());
  await store.connect();
  return store;
}

describe("MemoryStore", () => {
  test("a key cleared and re-created in the same microsecond gets a new generation (the tombstone)", async () => {
    const clock = { now: 1_800_000_000_000_000n };
    const store = await storeAt(clock);
    const created = await store.get("k");
    expect(created).toBe(clock.now);
    await store.clear("k");
    const recreated = await store.get("k");
    expect(recreated).toBeGreaterThan(created);
    await store.clear("k");
    expect(await store.bump("k")).toBeGreaterThan(recreated);
  });

  test("with the clock standing still, bumps still advance by one", async () => {
    const clock = { now: 1_800_000_000_000_000n };
    const store = await storeAt(clock);
    const generations = [];
    for (let i = 0; i < 5; i++) generations.push(await store.bump("k"));
    expect(generations).toEqual([0n, 1n, 2n, 3n, 4n].map((d) => clock.now + d));
  });

  test("with the clock stepping back, generations still never repeat while the record exists", async () => {
    const clock = { now: 1_800_000_000_000_000n };
    const store = await storeAt(clock);
    const first = await store.bump("k");
    clock.now -= 60_000_000n;
    await store.clear("k");
    const second = await store.get("k");
    expect(second).toBeGreaterThan(first);
  });
});
