/** A clock whose timers fire only when a test calls `tick()`. */
import type { Clock } from '../../src/account/clock.ts';

/** Manual timer source for accounter tests. */
export class FakeClock implements Clock {
  readonly #timers = new Map<number, () => void>();
  #next = 1;

  setInterval(callback: () => void): unknown {
    const id = this.#next++;
    this.#timers.set(id, callback);
    return id;
  }

  clearInterval(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Fires every running timer once. */
  tick(): void {
    for (const callback of [...this.#timers.values()]) callback();
  }

  /** Timers still running. */
  get running(): number {
    return this.#timers.size;
  }
}
