/** A promise settled from outside: the collector's sinks settle a batch's `stored` this way. */

/** A promise with the functions that settle it. */
export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * A new {@link Deferred}. Its promise has a handler already: who waits on it attaches their own,
 * and a rejection nobody waits for (a give-up at close) is not an unhandled rejection.
 */
export function deferred(): Deferred {
  let resolve = () => {};
  let reject: (err: unknown) => void = () => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
