/** `poll` discovery: lists /sys/class/net every period and reports what changed. */
import type { InterfaceFilter } from './filter.ts';
import { listInterfaces, SYS_CLASS_NET } from './sysfs.ts';
import { type InterfaceListener, InterfaceTracker } from './tracker.ts';
import type { InterfaceWatcher } from './watcher.ts';

/** Settings of a {@link PollWatcher}. */
export interface PollWatcherOptions {
  filter: InterfaceFilter;
  listener: InterfaceListener;
  /** How often interfaces are listed. */
  pollPeriodMs: number;
  /** Where interfaces are listed. */
  sysClassNet?: string;
  /** Told when a listing fails (the next period tries again). */
  onWarning?: (message: string, err?: unknown) => void;
}

/** Lists interfaces on a timer; owns that timer. */
export class PollWatcher implements InterfaceWatcher {
  readonly #tracker: InterfaceTracker;
  readonly #root: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: PollWatcherOptions) {
    this.#tracker = new InterfaceTracker(options.filter, options.listener);
    this.#root = options.sysClassNet ?? SYS_CLASS_NET;
  }

  async start(): Promise<void> {
    if (this.#timer) return;
    // The first listing throws (no /sys mounted, say): nothing could ever be found then.
    this.#tracker.update(this.#list());
    this.#timer = setInterval(() => this.#poll(), this.options.pollPeriodMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  current(): ReadonlyMap<string, number> {
    return this.#tracker.current;
  }

  #list() {
    return listInterfaces(this.#root, this.options.onWarning);
  }

  #poll(): void {
    try {
      this.#tracker.update(this.#list());
    } catch (err) {
      this.options.onWarning?.(`listing interfaces in ${this.#root} failed; retrying next period`, err);
    }
  }
}
