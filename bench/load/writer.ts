/**
 * A writer process: one Bump or Clear per line, timed here, in a process that does nothing
 * else, so its round trip does not wait on the orchestrator's own work (its garbage
 * collector's threads, its other children's pipes). On a busy core the scheduler can hand the
 * core to a low-priority watcher for a whole time slice (milliseconds) when the timing
 * process is briefly pre-empted by one of its own threads; a process with little to collect
 * has few. Driven over stdin/stdout, one JSON line each way:
 *
 *   -> {"op":"bump","key":"k"}   a Bump (or with "clear", a Clear) of k
 *   <- {"start":t,"ms":1.23}     when it was sent (ms on the machine's monotonic clock:
 *                                clock.ts), and its round trip
 *   <- {"error":"..."}           or why it failed
 *
 * argv[2] is the server's gRPC HOST:PORT.
 */
import { createInterface } from "node:readline";
import { createGenerationClient } from "../../src/client/index.js";
import { monotonicMs } from "../clock.js";

const client = createGenerationClient(process.argv[2] ?? "");
let queue = Promise.resolve();

/** Bumps or clears `key` and answers with when it started and its round trip, or with why it failed. */
async function write(op: "bump" | "clear", key: string): Promise<object> {
  const start = monotonicMs();
  try {
    await (op === "clear" ? client.clear(key) : client.bump(key));
    return { start, ms: monotonicMs() - start };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const { op, key } = JSON.parse(line) as { op: "bump" | "clear"; key: string };
    queue = queue.then(async () => {
      process.stdout.write(`${JSON.stringify(await write(op, key))}\n`);
    });
  })
  .on("close", () => void queue.then(() => client.close()));
