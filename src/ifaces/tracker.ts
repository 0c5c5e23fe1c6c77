/**
 * Turns successive listings of interfaces into added/removed events for the selected ones: an
 * interface is added when it appears up (or comes up) and passes the filter, and removed when it
 * goes down or away. A name whose index changed between two listings (deleted and recreated) is
 * reported removed, then added.
 */
import type { InterfaceFilter } from './filter.ts';
import type { InterfaceState } from './sysfs.ts';

/** An interface to attach to (`added`) or to forget (`removed`). */
export interface InterfaceEvent {
  kind: 'added' | 'removed';
  /** Interface name. */
  name: string;
  /** Its index when it was added. */
  ifIndex: number;
}

/** Receives interface events in the order they happened. */
export type InterfaceListener = (event: InterfaceEvent) => void;

/** Remembers which selected interfaces are up and reports what changed. */
export class InterfaceTracker {
  readonly #current = new Map<string, number>();

  constructor(
    private readonly filter: InterfaceFilter,
    private readonly listener: InterfaceListener,
  ) {}

  /** Selected interfaces that are up, name → index. */
  get current(): ReadonlyMap<string, number> {
    return this.#current;
  }

  /** Compares `listing` with the last one and emits one event per change. */
  update(listing: ReadonlyMap<string, InterfaceState>): void {
    for (const [name, ifIndex] of [...this.#current]) {
      const now = listing.get(name);
      if (now?.up && now.ifIndex === ifIndex) continue;
      this.#current.delete(name);
      this.listener({ kind: 'removed', name, ifIndex });
    }
    for (const [name, state] of listing) {
      if (!state.up || this.#current.has(name) || !this.filter.allows(name)) continue;
      this.#current.set(name, state.ifIndex);
      this.listener({ kind: 'added', name, ifIndex: state.ifIndex });
    }
  }
}
