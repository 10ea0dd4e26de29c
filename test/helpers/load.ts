import { expect } from "vitest";
import { type Code, type GenerationClient, GenerationServiceError } from "../../src/client/index.js";
import { withDeadline } from "./deadline.js";
import type { WatchRecorder } from "./watch-recorder.js";

/** A generation handed out, and when. */
export interface Handed {
  generation: bigint;
  at: number;
}

/**
 * Bumps `keys` round robin from `workers` loops until stopped; records every outcome. The
 * deadline is well above the stores' Redis timeouts: a call the store cannot serve fails with
 * the store's UNAVAILABLE, not with the client's own DEADLINE_EXCEEDED on a busy machine.
 */
export function bumpLoad(c: GenerationClient, keys: string[], workers: number, deadlineMs = 5000) {
  const generations = new Map<string, Handed[]>(keys.map((k) => [k, []]));
  const failures: { code: Code; message: string; at: number }[] = [];
  let running = true;
  let turn = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const key = keys[turn++ % keys.length] as string;
      try {
        const generation = await c.bump(key, { deadlineMs });
        generations.get(key)?.push({ generation, at: Date.now() });
      } catch (error) {
        const failure = GenerationServiceError.from(error);
        failures.push({ code: failure.code, message: failure.message, at: Date.now() });
        // Do not spin while the service is down.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });
  return {
    generations,
    failures,
    /** Resolves once every key has been given more than `count` generations. */
    async each(count: number, ms = 5000): Promise<void> {
      await expect.poll(() => [...generations.values()].every((g) => g.length > count), { timeout: ms }).toBe(true);
    },
    async stop(): Promise<void> {
      running = false;
      await withDeadline(Promise.all(loops), 15_000, "the load to stop");
    },
  };
}

/** No key was given the same generation twice. */
export function expectNoRepeats(generations: Map<string, { generation: bigint }[]>): void {
  for (const [key, handed] of generations) {
    expect(new Set(handed.map((h) => h.generation)).size, `repeats on ${key}`).toBe(handed.length);
  }
}

/** Every watcher holds each key's current generation. */
export async function expectAllCurrent(c: GenerationClient, recorders: WatchRecorder[], keys: string[]): Promise<void> {
  for (const key of keys) {
    const current = await c.get(key, { peek: true });
    for (const recorder of recorders) await recorder.sees(key, current, 10_000);
  }
}
