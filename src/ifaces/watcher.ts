/**
 * Follows the selected interfaces as they come and go, by one of two strategies behind one
 * interface: `watch` (link events from the kernel, the default) or `poll` (a listing every period).
 */
import type { InterfaceFilter } from './filter.ts';
import { LinkMonitorWatcher } from './link-monitor.ts';
import { PollWatcher } from './poll-watcher.ts';
import type { InterfaceListener } from './tracker.ts';

/** How interfaces are discovered: kernel link events or periodic listings. */
export type ListenMode = 'watch' | 'poll';

/** Reports selected interfaces: every one present at start, then each change, until stopped. */
export interface InterfaceWatcher {
  /** Lists the interfaces (emitting `added` for each selected one that is up), then follows changes. */
  start(): Promise<void>;
  /** Stops following and releases what start acquired (timer, child process); emits nothing more. */
  stop(): Promise<void>;
  /** Selected interfaces that are up now, name → index. */
  current(): ReadonlyMap<string, number>;
}

/** Settings of {@link createInterfaceWatcher}. */
export interface InterfaceWatcherOptions {
  mode: ListenMode;
  filter: InterfaceFilter;
  /** Told about every change, in order. */
  listener: InterfaceListener;
  /** Listing period in `poll` mode. */
  pollPeriodMs: number;
  /** Where interfaces are listed (tests point it at a fake tree). */
  sysClassNet?: string;
  /** Told when the link monitor fails and is restarted (watch mode). */
  onWarning?: (message: string, err?: unknown) => void;
}

/** The watcher for `options.mode`. */
export function createInterfaceWatcher(options: InterfaceWatcherOptions): InterfaceWatcher {
  return options.mode === 'poll' ? new PollWatcher(options) : new LinkMonitorWatcher(options);
}
