/** The one way tests make a client of their own: closed by the test's teardown. */
import { createGenerationClient, type GenerationClient, type GenerationClientOptions } from "../../src/client/index.js";
import type { Cleanups } from "./cleanups.js";

/**
 * A client with a 3 s deadline and a short backoff (of its retries and reconnects), on a
 * connection of its own as a separate process would have (grpc-js shares connections between
 * the clients of a process unless told not to). `options` override, channel options merged.
 */
export function isolatedClient(
  cleanups: Cleanups,
  target: string,
  options: GenerationClientOptions = {},
): GenerationClient {
  const c = createGenerationClient(target, {
    deadlineMs: 3000,
    backoff: { initialMs: 20, maxMs: 250 },
    ...options,
    channelOptions: { "grpc.use_local_subchannel_pool": 1, ...options.channelOptions },
  });
  cleanups.push(() => c.close());
  return c;
}
