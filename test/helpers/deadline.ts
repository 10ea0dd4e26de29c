/**
 * Every wait in the tests has a deadline, and waits on events, not on sleeps: withDeadline
 * bounds a promise, waitForEvent an emitter's event, Condition a state that changes as
 * events arrive (output lines, Watch responses). What sends no event is polled: in tests
 * with vitest's expect.poll; in helpers that run outside vitest too (bench/ imports them), with
 * pollUntil (a Redis node's view of its cluster, a synchronizer going live).
 */

/** Turns a promise into one that rejects at the deadline, saying what was awaited. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`)),
      ms,
    );
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Resolves when `emitter` emits `event` with arguments `accept` likes; rejects at the deadline. */
export function waitForEvent<A extends unknown[]>(
  emitter: {
    on(event: string, listener: (...args: A) => void): unknown;
    off(event: string, listener: (...args: A) => void): unknown;
  },
  event: string,
  accept: (...args: A) => boolean,
  ms: number,
): Promise<A> {
  let listener: ((...args: A) => void) | undefined;
  const seen = new Promise<A>((resolve) => {
    listener = (...args: A) => {
      if (accept(...args)) resolve(args);
    };
    emitter.on(event, listener);
  });
  return withDeadline(seen, ms, `event "${event}"`).finally(() => {
    if (listener) emitter.off(event, listener);
  });
}

/**
 * A state others wait on: whoever changes it calls notify(); until() resolves with the first
 * value `check` returns other than undefined, checked now and after every notify, and rejects
 * when `check` throws (the awaited thing can no longer happen) or at the deadline.
 */
export class Condition {
  readonly #waiters = new Set<() => void>();

  notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  until<T>(check: () => T | undefined, ms: number, what: string | (() => string)): Promise<T> {
    let waiter: (() => void) | undefined;
    const met = new Promise<T>((resolve, reject) => {
      waiter = () => {
        try {
          const value = check();
          if (value !== undefined) resolve(value);
        } catch (error) {
          reject(error);
        }
      };
      this.#waiters.add(waiter);
      waiter();
    });
    return withDeadline(met, ms, what).finally(() => {
      if (waiter) this.#waiters.delete(waiter);
    });
  }
}

/** Checks `condition` every `intervalMs` until it holds; rejects at the deadline. For what sends no event. */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms = 20_000,
  intervalMs = 100,
): Promise<void> {
  let stopped = false;
  const polled = (async () => {
    while (!stopped && !(await condition())) await new Promise((resolve) => setTimeout(resolve, intervalMs));
  })();
  try {
    await withDeadline(polled, ms, what);
  } finally {
    stopped = true;
  }
}
