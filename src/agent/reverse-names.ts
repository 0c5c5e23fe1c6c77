/**
 * Reverse DNS names of addresses for people (`--resolve`): the live view and the table show
 * `host.example:443` instead of the address once its name is known. Lookups never wait in the
 * display path: `nameOf()` answers from the cache at once (the address itself until the name
 * arrives) and starts at most MAX_LOOKUPS_IN_FLIGHT lookups at a time. The cache is bounded (least
 * recently used entries leave first), names expire, and failures are cached as well, so a busy
 * host with thousands of peers costs a bounded number of queries.
 */
import { promises as dns } from 'node:dns';

/** Addresses whose answer is kept at most. */
export const MAX_CACHED_NAMES = 4096;
/** How long an answer (a name, or none) is kept. */
export const NAME_TTL_MS = 10 * 60_000;
/** Lookups running at once at most; addresses met while all are busy are looked up later. */
export const MAX_LOOKUPS_IN_FLIGHT = 8;

/** Options of {@link ReverseNames}; tests pass a fake resolver and clock. */
export interface ReverseNamesOptions {
  reverse?: (address: string) => Promise<string[]>;
  nowMs?: () => number;
  maxEntries?: number;
}

interface Entry {
  /** The name, or the address when it has none. */
  name: string;
  expiresAtMs: number;
}

/** See the module comment. */
export class ReverseNames {
  readonly #cache = new Map<string, Entry>();
  readonly #inFlight = new Set<string>();
  readonly #reverse: (address: string) => Promise<string[]>;
  readonly #nowMs: () => number;
  readonly #maxEntries: number;
  /** Lookups that failed (no name, timeout, refused): counted, and cached as the address. */
  failures = 0;

  constructor(options: ReverseNamesOptions = {}) {
    this.#reverse = options.reverse ?? ((address) => dns.reverse(address));
    this.#nowMs = options.nowMs ?? Date.now;
    this.#maxEntries = options.maxEntries ?? MAX_CACHED_NAMES;
  }

  /** The name of `address` if known, else `address` (and a lookup starts when there is room). */
  nameOf(address: string): string {
    const entry = this.#cache.get(address);
    if (entry && entry.expiresAtMs > this.#nowMs()) {
      // Refresh its place: the least recently used entries leave first.
      this.#cache.delete(address);
      this.#cache.set(address, entry);
      return entry.name;
    }
    if (!this.#inFlight.has(address) && this.#inFlight.size < MAX_LOOKUPS_IN_FLIGHT) this.#lookUp(address);
    return entry?.name ?? address;
  }

  #lookUp(address: string): void {
    this.#inFlight.add(address);
    this.#reverse(address).then(
      (names) => this.#remember(address, names[0] ?? address),
      () => {
        this.failures++;
        this.#remember(address, address);
      },
    );
  }

  #remember(address: string, name: string): void {
    this.#inFlight.delete(address);
    this.#cache.delete(address);
    this.#cache.set(address, { name, expiresAtMs: this.#nowMs() + NAME_TTL_MS });
    while (this.#cache.size > this.#maxEntries) {
      const oldest = this.#cache.keys().next().value as string;
      this.#cache.delete(oldest);
    }
  }
}
