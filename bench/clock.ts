/**
 * The one clock a time taken in one process may be subtracted from a time taken in another.
 */

/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, read by process.hrtime),
 * which every process on the machine shares. Not `performance.timeOrigin + performance.now()`:
 * timeOrigin is the wall clock when the process started, so two processes differ by however
 * far the wall clock was set or slewed between their starts. In one run on this bench's
 * virtual machine, a watcher process's clock read 19 ms ahead of the bench's: a fan-out whose
 * watchers had every message 13 ms after the Bump (seen in a scheduler trace) was timed at 32.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}
