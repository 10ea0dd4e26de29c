/**
 * A writer process: one Bump per line, timed here, in a process that does nothing else, so
 * its round trip does not wait on the orchestrator's own work (its garbage collector's
 * threads, its other children's pipes). On a busy core the scheduler can hand the core to
 * a low-priority watcher for a whole time slice (milliseconds) when the timing process is
 * briefly pre-empted by one of its own threads; a process with little to collect has few.
 * Driven over stdin/stdout, one JSON line each way:
 *
 *   -> {"key":"k"}          a Bump of k
 *   <- {"ms":1.23}          its round trip
 *   <- {"error":"..."}      or why it failed
 *
 * argv[2] is the server's gRPC HOST:PORT.
 */
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { createGenerationClient } from "../../src/client/index.js";

const client = createGenerationClient(process.argv[2] ?? "");
let queue = Promise.resolve();

/** Bumps `key` and answers with its round trip, or with why it failed. */
async function bump(key: string): Promise<object> {
  const start = performance.now();
  try {
    await client.bump(key);
    return { ms: performance.now() - start };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const { key } = JSON.parse(line) as { key: string };
    queue = queue.then(async () => {
      process.stdout.write(`${JSON.stringify(await bump(key))}\n`);
    });
  })
  .on("close", () => void queue.then(() => client.close()));
