/** Every wait in the tests has a deadline: this turns a promise into one that rejects at it. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
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
