/**
 * Bounded runs (`flowtap run --duration 30s`, `--count 100`): tells the agent to stop once the run
 * has lasted its duration or evicted its count of flows. The stop is the ordinary one (kernel maps
 * drained, every counted flow flushed), so a run bounded by count exports at least its count: the
 * flows still cached when the count is reached are flushed too.
 */

/** When a run ends on its own; an absent bound never ends it. */
export interface RunBounds {
  /** Stop this long after the process started (start-up included, as `timeout` would count). */
  readonly durationMs?: number;
  /** Stop once this many flows were evicted (and so handed to the exporters). */
  readonly maxFlows?: number;
}

/** Which bound ended a run. */
export type RunLimitReason = 'duration' | 'count';

/** Calls `onReached` once, when the first of `bounds` is reached. */
export class RunLimit {
  #timer: NodeJS.Timeout | undefined;
  #flows = 0;
  #reached = false;

  constructor(
    private readonly bounds: RunBounds,
    private readonly onReached: (reason: RunLimitReason) => void,
  ) {}

  /**
   * Starts the duration clock once the agent runs, `elapsedMs` into the run (the process's start-up:
   * loading the datapath and the exporters); a start-up longer than the duration stops at once.
   */
  start(elapsedMs: number): void {
    if (this.bounds.durationMs === undefined || this.#reached || this.#timer) return;
    const leftMs = Math.max(0, this.bounds.durationMs - elapsedMs);
    this.#timer = setTimeout(() => this.#reach('duration'), leftMs);
  }

  /** Adds `flows` evicted flows; reaching the count asks for the stop. */
  countFlows(flows: number): void {
    this.#flows += flows;
    const max = this.bounds.maxFlows;
    if (max !== undefined && this.#flows >= max) this.#reach('count');
  }

  /** Clears the duration clock; idempotent. */
  stop(): void {
    clearTimeout(this.#timer);
  }

  #reach(reason: RunLimitReason): void {
    if (this.#reached) return;
    this.#reached = true;
    clearTimeout(this.#timer);
    this.onReached(reason);
  }
}
