/**
 * Bytes, packets, records and TCP health sums (dropped packets and bytes, retransmitted
 * segments) per key (a flow, a talker) over a sliding window, in bounded memory.
 *
 * The window is a ring of `segmentCount` segments of `segmentSeconds` each; a segment is a map of
 * the keys seen in it, and `totals` holds each key's sum over the live segments so a snapshot
 * reads one map instead of merging several. When time moves past a segment its counts are
 * subtracted from `totals` and the segment is reused. A segment that reaches `segmentCapacity`
 * keys is pruned to the keys ranking in its top quarter by bytes, by packets or by dropped
 * packets (small flows without drops are the ones forgotten; the count of pruned keys is kept),
 * so memory stays within
 * `segmentCount × segmentCapacity` entries however many distinct flows arrive.
 */

/** One key's counts in one segment. */
interface SegmentCounts {
  bytes: number;
  packets: number;
  records: number;
  dropPackets: number;
  dropBytes: number;
  retransPackets: number;
}

/** One key's counts over the whole window, plus what its consumer attached to it. */
export interface WindowEntry<Info> {
  /** The key as given to `add`. */
  readonly key: string;
  bytes: number;
  packets: number;
  /** Records (flow evictions) counted for the key. */
  records: number;
  /** Packets and bytes of the key's flows the kernel dropped. */
  dropPackets: number;
  dropBytes: number;
  /** Retransmitted TCP segments. */
  retransPackets: number;
  /** Set by the consumer when the entry is new (`records === 0` before `add` returned it). */
  info: Info | undefined;
}

/** Shape of a {@link TopWindow}. */
export interface TopWindowOptions {
  /** Seconds each segment covers. */
  segmentSeconds: number;
  /** Segments in the window: the window is `segmentSeconds × segmentCount` seconds. */
  segmentCount: number;
  /** Keys one segment holds before it is pruned. */
  segmentCapacity: number;
}

/** Sliding-window counters per key; see the module comment for the bounds. */
export class TopWindow<Info> {
  readonly #segments: Map<string, SegmentCounts>[];
  /** Segment number (`floor(second / segmentSeconds)`) each ring slot holds; -1 when unused. */
  readonly #segmentIds: number[];
  readonly #totals = new Map<string, WindowEntry<Info>>();
  #endSegment = -1;
  /** Keys forgotten by pruning since start. */
  prunedKeys = 0;

  constructor(readonly options: TopWindowOptions) {
    this.#segments = Array.from({ length: options.segmentCount }, () => new Map());
    this.#segmentIds = new Array<number>(options.segmentCount).fill(-1);
  }

  /** Length of the window in seconds. */
  get windowSeconds(): number {
    return this.options.segmentSeconds * this.options.segmentCount;
  }

  /** Keys in the window now. */
  get size(): number {
    return this.#totals.size;
  }

  /** Every key in the window with its totals (read-only use: do not change the counts). */
  entries(): IterableIterator<WindowEntry<Info>> {
    return this.#totals.values();
  }

  /** Moves the window end to the segment of `second`; segments that fall out are subtracted. */
  advanceTo(second: number): void {
    const segment = Math.floor(second / this.options.segmentSeconds);
    if (segment <= this.#endSegment) return;
    const count = this.options.segmentCount;
    const from = Math.max(this.#endSegment + 1, segment - count + 1);
    for (let id = from; id <= segment; id++) {
      const slot = id % count;
      this.#expire(slot);
      this.#segmentIds[slot] = id;
    }
    this.#endSegment = segment;
  }

  /**
   * Counts a record of `key` at `second` (the window must have been advanced to it), with its
   * TCP health sums when it has any. Returns the key's window entry, or undefined when `second`
   * is older than the window.
   */
  add(
    key: string,
    second: number,
    bytes: number,
    packets: number,
    dropPackets = 0,
    dropBytes = 0,
    retransPackets = 0,
  ): WindowEntry<Info> | undefined {
    const segment = Math.floor(second / this.options.segmentSeconds);
    const count = this.options.segmentCount;
    if (segment <= this.#endSegment - count || segment > this.#endSegment) return undefined;
    const counts = this.#segments[segment % count];
    let own = counts.get(key);
    if (!own) {
      if (counts.size >= this.options.segmentCapacity) this.#prune(counts);
      own = { bytes: 0, packets: 0, records: 0, dropPackets: 0, dropBytes: 0, retransPackets: 0 };
      counts.set(key, own);
    }
    own.bytes += bytes;
    own.packets += packets;
    own.records++;
    own.dropPackets += dropPackets;
    own.dropBytes += dropBytes;
    own.retransPackets += retransPackets;
    let total = this.#totals.get(key);
    if (!total) {
      total = {
        key,
        bytes: 0,
        packets: 0,
        records: 0,
        dropPackets: 0,
        dropBytes: 0,
        retransPackets: 0,
        info: undefined,
      };
      this.#totals.set(key, total);
    }
    total.bytes += bytes;
    total.packets += packets;
    total.records++;
    total.dropPackets += dropPackets;
    total.dropBytes += dropBytes;
    total.retransPackets += retransPackets;
    return total;
  }

  #expire(slot: number): void {
    const counts = this.#segments[slot];
    for (const [key, own] of counts) this.#subtract(key, own);
    counts.clear();
  }

  #subtract(key: string, own: SegmentCounts): void {
    const total = this.#totals.get(key);
    if (!total) return;
    total.records -= own.records;
    if (total.records <= 0) {
      this.#totals.delete(key);
      return;
    }
    total.bytes -= own.bytes;
    total.packets -= own.packets;
    total.dropPackets -= own.dropPackets;
    total.dropBytes -= own.dropBytes;
    total.retransPackets -= own.retransPackets;
  }

  /**
   * Keeps the keys in the top quarter by bytes, by packets or by dropped packets (those with
   * drops: "who is dropping" must not forget a small flow the kernel drops); at most three
   * quarters of the capacity remain.
   */
  #prune(counts: Map<string, SegmentCounts>): void {
    const keep = Math.max(1, Math.floor(this.options.segmentCapacity / 4));
    const all = [...counts];
    const kept = new Set<string>();
    all.sort((a, b) => b[1].bytes - a[1].bytes);
    for (let i = 0; i < keep && i < all.length; i++) kept.add(all[i][0]);
    all.sort((a, b) => b[1].packets - a[1].packets);
    for (let i = 0; i < keep && i < all.length; i++) kept.add(all[i][0]);
    all.sort((a, b) => b[1].dropPackets - a[1].dropPackets);
    for (let i = 0; i < keep && i < all.length && all[i][1].dropPackets > 0; i++) kept.add(all[i][0]);
    for (const [key, own] of all) {
      if (kept.has(key)) continue;
      counts.delete(key);
      this.#subtract(key, own);
      this.prunedKeys++;
    }
  }
}
