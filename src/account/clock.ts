/** The timer the accounter's active timeout runs on; tests substitute a fake one. */

/** Starts and stops a repeating timer. */
export interface Clock {
  /** Calls `callback` every `periodMs` until cleared; returns a handle for `clearInterval`. */
  setInterval(callback: () => void, periodMs: number): unknown;
  /** Stops a timer started by `setInterval`. */
  clearInterval(handle: unknown): void;
}

/** Node's timers, unref()'d so an idle accounter never keeps the process alive. */
export const systemClock: Clock = {
  setInterval(callback, periodMs) {
    const timer = setInterval(callback, periodMs);
    timer.unref();
    return timer;
  },
  clearInterval(handle) {
    clearInterval(handle as NodeJS.Timeout);
  },
};
