/**
 * What the status page is sent every interval (replica-status.ts makes it, the page's script
 * reads it): a type only, shared by the server and the browser code.
 */

/** One snapshot of a replica, as the status page reads it. */
export interface StatusSnapshot {
  version: string;
  uptimeSeconds: number;
  /** The store: its kind (memory, Redis, Sentinel, Cluster), how many nodes it names, its state. */
  store: { kind: string; nodes: number; state: string };
  /** SERVING while the store is ready (as grpc.health.v1 says). */
  health: "SERVING" | "NOT_SERVING";
  /** Whether calls need a token. */
  auth: boolean;
  watchStreams: number;
  watchedKeys: number;
  blockedStreams: number;
  /** Bumps this replica made, per second, over the last interval. */
  bumpsPerSecond: number;
  /** Watch responses with changes written, per second, over the last interval. */
  fanOutPerSecond: number;
  /** From a change reaching this replica to its last write to a watcher, over the last interval; 0 without fan-out. */
  fanOutLagMs: { mean: number; max: number };
}
