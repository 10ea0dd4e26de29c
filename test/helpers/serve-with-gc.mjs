// Runs the syncgen CLI (as bin/syncgen.js does) with one addition for tests that measure
// memory: on SIGUSR2 it collects garbage and prints the heap figures as one JSON line on
// stderr. Start it with `node --expose-gc`.
process.on("SIGUSR2", () => {
  globalThis.gc();
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  process.stderr.write(`${JSON.stringify({ memory: { heapUsed, external, arrayBuffers, rss } })}\n`);
});
await import("../../bin/syncgen.js");
