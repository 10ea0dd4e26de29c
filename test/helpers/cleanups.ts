/** What a test opens, closed after it in reverse order: processes, servers, clients, streams. */
import { afterEach } from "vitest";

/** Things to close; push a function per thing opened. */
export type Cleanups = (() => unknown)[];

/** A list the calling test file pushes its cleanups to; each test's run after it, last first. */
export function cleanupsAfterEach(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}
