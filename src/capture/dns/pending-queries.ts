/**
 * DNS queries awaiting their response, at most `capacity` of them (the kernel's pending-query map,
 * struct flow_dns_query_key → struct flow_dns_pending, in user space): keyed by the query key's
 * bytes as a string, their values in typed arrays indexed by a slot, so a query costs its key and
 * no object. The map keeps insertion order, which is the queries' age order: the oldest comes
 * first, for expiry and for making room.
 */
import { V2_DNS_WORDS, V2_KEY_WORDS } from '../../codec/v2-layout.ts';

/** Pending queries by key; see the module comment. */
export class PendingQueries {
  /** Slot of each waiting query, oldest first. */
  readonly #slots = new Map<string, number>();
  /** Free slots, a stack. */
  readonly #free: Int32Array;
  #freeCount: number;
  /** Time of the query in each slot: Unix seconds and nanoseconds. */
  readonly seconds: Float64Array;
  readonly nanos: Float64Array;
  /** The query's flow: its key (16 words per slot), interface and direction. */
  readonly flowKeys: Int32Array;
  readonly ifIndex: Uint32Array;
  readonly direction: Uint8Array;
  /** The query's DNS section (26 words per slot): id, flags and name, no counts. */
  readonly sections: Int32Array;

  constructor(readonly capacity: number) {
    this.#free = Int32Array.from({ length: capacity }, (_, i) => capacity - 1 - i);
    this.#freeCount = capacity;
    this.seconds = new Float64Array(capacity);
    this.nanos = new Float64Array(capacity);
    this.flowKeys = new Int32Array(capacity * V2_KEY_WORDS);
    this.ifIndex = new Uint32Array(capacity);
    this.direction = new Uint8Array(capacity);
    this.sections = new Int32Array(capacity * V2_DNS_WORDS);
  }

  /** Queries waiting now. */
  get size(): number {
    return this.#slots.size;
  }

  /** The slot of the query waiting under `key`, or undefined. */
  slotOf(key: string): number | undefined {
    return this.#slots.get(key);
  }

  /**
   * Adds a query (the map must not be full): its time, its flow's key (16 words at `k` of
   * `flowKey`), interface and direction, and its section. Returns its slot.
   */
  add(
    key: string,
    seconds: number,
    nanos: number,
    flowKey: Int32Array,
    k: number,
    ifIndex: number,
    direction: number,
    section: Int32Array,
  ): number {
    const slot = this.#free[--this.#freeCount];
    this.#slots.set(key, slot);
    this.seconds[slot] = seconds;
    this.nanos[slot] = nanos;
    this.flowKeys.set(flowKey.subarray(k, k + V2_KEY_WORDS), slot * V2_KEY_WORDS);
    this.ifIndex[slot] = ifIndex;
    this.direction[slot] = direction;
    this.sections.set(section.subarray(0, V2_DNS_WORDS), slot * V2_DNS_WORDS);
    return slot;
  }

  /** Forgets the query under `key` (its slot's values stay readable until the next `add`). */
  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (slot === undefined) return;
    this.#slots.delete(key);
    this.#free[this.#freeCount++] = slot;
  }

  /** The oldest waiting query's key and slot, or undefined when none waits. */
  oldest(): [string, number] | undefined {
    return this.#slots.entries().next().value;
  }
}
