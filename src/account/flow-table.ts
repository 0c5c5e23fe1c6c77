/**
 * The accounter's cache: flows stored as the key and metrics of v2 rows (46 words: 16 of key, 30
 * of metrics; the user section is written after accounting, so the cache does not keep it) behind
 * an open-addressing hash index. Adding a record allocates nothing; eviction copies the entries
 * out as one new batch of whole rows. A health section that arrives with a record (a row's own,
 * or the section row of a capture's event for which the TCP analysis measured something,
 * src/codec/event-sections.ts) is kept beside its flow and merged by `mergeFlowHealth`; the
 * arrays for that are made when the first such section arrives.
 */
import type { EventSections } from '../codec/event-sections.ts';
import { mergeFlowHealth, mergeFlowMetrics } from '../codec/merge-rule.ts';
import { RecordBatch } from '../codec/record-batch.ts';
import {
  V2,
  V2_HEALTH_WORD,
  V2_HEALTH_WORDS,
  V2_KEY_WORDS,
  V2_METRICS_WORD,
  V2_METRICS_WORDS,
  V2_RECORD_BYTES,
  V2_ROW_WORDS,
} from '../codec/v2-layout.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { TWO_POW_32 } from '../model/u64.ts';
import { hashKey } from './key-hash.ts';

const ROW_WORDS = V2_ROW_WORDS;
/** A cached flow: key and metrics, as the first words of a v2 row. */
const ENTRY_WORDS = V2_KEY_WORDS + V2_METRICS_WORDS;
const W_LAST = V2_KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;
/** First word of a row's health section, and the words that say whether it holds anything. */
const W_HEALTH = V2.RTT_MIN_NS / 4;
const W_HEALTH_FLAGS = W_HEALTH + V2_HEALTH_WORD.DROP_FLAGS_STATE;
const W_RETRANS = W_HEALTH + V2_HEALTH_WORD.RETRANS_PACKETS;
const W_DROPS = W_HEALTH + V2_HEALTH_WORD.DROP_PACKETS;

/** Whether the row at word `r` carries a health section (health flags, retransmissions or drops). */
function rowCarriesHealth(words: Int32Array, r: number): boolean {
  return (
    ((words[r + W_HEALTH_FLAGS] >>> 24) |
      words[r + W_RETRANS] |
      words[r + W_RETRANS + 1] |
      words[r + W_DROPS] |
      words[r + W_DROPS + 1]) !==
    0
  );
}

/** Why `add` stopped before the end of a batch. */
export type AddStop = 'done' | 'full' | 'deadline';

/** Index slots a table starts with; it doubles as flows arrive, up to twice `maxEntries`. */
const MIN_INDEX_SLOTS = 1024;

function nextPowerOfTwo(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

// rowsOf zeroes a row's tail as doubles: entries and rows must be whole doubles.
if (ENTRY_WORDS % 2 !== 0 || ROW_WORDS % 2 !== 0)
  throw new Error(
    'FlowTable rowsOf zeroes rows 8 bytes at a time: entries and rows must be 8-byte multiples',
  );

// sameKey is written out for the v2 key's 16 words; a key of another size must change it.
if (V2_KEY_WORDS !== 16)
  throw new Error('FlowTable sameKey compares 16 key words, the v2 key has another size');

/**
 * Whether the 16-word keys at word `i` of `a` and word `j` of `b` are equal. Written out word by
 * word: V8 does not unroll the loop, and the unrolled form took a sixth off the time per record.
 */
function sameKey(a: Int32Array, i: number, b: Int32Array, j: number): boolean {
  return (
    a[i] === b[j] &&
    a[i + 1] === b[j + 1] &&
    a[i + 2] === b[j + 2] &&
    a[i + 3] === b[j + 3] &&
    a[i + 4] === b[j + 4] &&
    a[i + 5] === b[j + 5] &&
    a[i + 6] === b[j + 6] &&
    a[i + 7] === b[j + 7] &&
    a[i + 8] === b[j + 8] &&
    a[i + 9] === b[j + 9] &&
    a[i + 10] === b[j + 10] &&
    a[i + 11] === b[j + 11] &&
    a[i + 12] === b[j + 12] &&
    a[i + 13] === b[j + 13] &&
    a[i + 14] === b[j + 14] &&
    a[i + 15] === b[j + 15]
  );
}

/**
 * Fixed-capacity flow cache keyed by v2 keys. Flows are stored densely, in arrival order, as the
 * key and metrics of v2 rows in `#entries`; an open-addressing index (linear probing) maps key
 * hashes to entries. Dense entries keep a small working set in cache however large `maxEntries`
 * is, and make eviction a single copy of the used prefix. The index too is sized by the flows
 * cached, not by `maxEntries`: it doubles whenever it would be more than half full, so 20 000
 * flows in a cache of 100 000 probe a 512 KiB index instead of a 2 MiB one (measured: a tenth
 * less time per packet of `read`). Records of a cached flow are merged by the one merge rule
 * (src/codec/merge-rule.ts).
 */
export class FlowTable {
  /** Most flows the table holds before it reports `full`. */
  readonly maxEntries: number;
  /** Index slots - 1 (slots are a power of two). */
  #mask: number;
  /** Index slots at most: twice `maxEntries`, so the index is at most half full. */
  readonly #maxSlots: number;
  /** Entry `e` occupies words `e * ENTRY_WORDS ..` with the layout of a v2 row's key and metrics. */
  readonly #entries: Int32Array;
  /** Per index slot, two words: the key's tag, its hash plus one (0 = empty), and the entry number; probing starts at the tag's slot. */
  #index: Int32Array;
  /** Index slot of each entry, so eviction clears only the slots in use. */
  readonly #entrySlot: Int32Array;
  #size = 0;
  /** Health sections of the cached flows (`V2_HEALTH_WORDS` each), made for the first row with one. */
  #health: Int32Array | undefined;
  /** Per entry: 1 when its health section holds something. */
  #hasHealth: Uint8Array | undefined;
  /** Index where the last `add` stopped. */
  stoppedAt = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    this.#maxSlots = nextPowerOfTwo(maxEntries * 2);
    const slots = Math.min(this.#maxSlots, MIN_INDEX_SLOTS);
    this.#mask = slots - 1;
    this.#entries = new Int32Array(maxEntries * ENTRY_WORDS);
    this.#index = new Int32Array(slots * 2);
    this.#entrySlot = new Int32Array(maxEntries);
  }

  /** Flows cached now. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of typed arrays this table holds, for memory accounting. */
  get heapBytes(): number {
    const health = (this.#health?.byteLength ?? 0) + (this.#hasHealth?.byteLength ?? 0);
    return this.#entries.byteLength + this.#index.byteLength + this.#entrySlot.byteLength + health;
  }

  /**
   * Index slots a lookup of the worst-placed cached flow visits (1 when every flow sits in its
   * home slot): how long the longest probe chain is. Computed on demand, off the hot path.
   */
  get longestProbe(): number {
    const index = this.#index;
    const mask = this.#mask;
    let longest = 0;
    for (let e = 0; e < this.#size; e++) {
      const slot = this.#entrySlot[e];
      const home = index[slot * 2] & mask; // where add() started probing for this key
      longest = Math.max(longest, ((slot - home) & mask) + 1);
    }
    return longest;
  }

  /**
   * Accumulates records `from`.. of `words`, record `i` at word `i * strideWords` beginning with
   * a key and metrics: v2 rows (`rowWords(batch)`, stride V2_ROW_WORDS) or flow events
   * (`EventBatch.words()`, stride V2_EVENT_WORDS, with the batch's `sections`). Stops before a
   * record that would be a new flow in a full table (`full`), or whose last-seen time is at or
   * past `deadlineNs` (`deadline`); the index it stopped at is left in `stoppedAt`.
   */
  add(
    words: Int32Array,
    strideWords: number,
    count: number,
    from = 0,
    deadlineNs?: bigint,
    sections?: EventSections,
  ): AddStop {
    const entries = this.#entries;
    let index = this.#index;
    let mask = this.#mask;
    // Rows carry their own health sections; events, the section rows of `sections`.
    const rows = strideWords === ROW_WORDS;
    let k = sections === undefined ? 0 : sections.firstAtOrAfter(from);
    let sectionEvent = sections !== undefined && k < sections.count ? sections.events[k] : -1;
    // The deadline as u64 words, compared exactly; past every u64 when there is none.
    const deadlineHi = deadlineNs === undefined ? TWO_POW_32 : Number(deadlineNs >> 32n);
    const deadlineLo = deadlineNs === undefined ? 0 : Number(deadlineNs & 0xffffffffn);
    for (let i = from; i < count; i++) {
      const r = i * strideWords;
      const lastHi = words[r + W_LAST + 1] >>> 0;
      if (lastHi > deadlineHi || (lastHi === deadlineHi && words[r + W_LAST] >>> 0 >= deadlineLo)) {
        this.stoppedAt = i;
        return 'deadline';
      }

      const tag = hashKey(words, r) + 1;
      let slot = tag & mask;
      let e = -1;
      for (;;) {
        const st = index[slot * 2];
        if (st === 0) break;
        if (st === tag) {
          const s = index[slot * 2 + 1] * ENTRY_WORDS;
          if (sameKey(entries, s, words, r)) {
            e = index[slot * 2 + 1];
            break;
          }
        }
        slot = (slot + 1) & mask;
      }

      if (e >= 0) {
        mergeFlowMetrics(entries, e * ENTRY_WORDS + V2_KEY_WORDS, words, r + V2_KEY_WORDS);
      } else {
        if (this.#size >= this.maxEntries) {
          this.stoppedAt = i;
          return 'full';
        }
        if (this.#size * 2 >= mask && mask + 1 < this.#maxSlots) {
          this.#growIndex();
          index = this.#index;
          mask = this.#mask;
          slot = tag & mask;
          while (index[slot * 2] !== 0) slot = (slot + 1) & mask;
        }
        e = this.#size++;
        index[slot * 2] = tag;
        index[slot * 2 + 1] = e;
        this.#entrySlot[e] = slot;
        const s = e * ENTRY_WORDS;
        for (let w = 0; w < ENTRY_WORDS; w++) entries[s + w] = words[r + w];
      }
      if (i === sectionEvent && sections !== undefined) {
        const sr = k * ROW_WORDS;
        if (rowCarriesHealth(sections.words, sr)) this.#addHealth(e, sections.words, sr, words, r);
        k++;
        sectionEvent = k < sections.count ? sections.events[k] : -1;
      } else if (rows && rowCarriesHealth(words, r)) {
        this.#addHealth(e, words, r, words, r);
      }
    }
    this.stoppedAt = count;
    return 'done';
  }

  /**
   * Merges the health section of the row at word `h` of `healthWords` into entry `e`'s; the
   * record it came with (merged into `e` already) is at word `r` of `words`.
   */
  #addHealth(e: number, healthWords: Int32Array, h: number, words: Int32Array, r: number): void {
    if (this.#health === undefined || this.#hasHealth === undefined) {
      this.#health = new Int32Array(this.maxEntries * V2_HEALTH_WORDS);
      this.#hasHealth = new Uint8Array(this.maxEntries);
    }
    const stored = e * V2_HEALTH_WORDS;
    if (this.#hasHealth[e] === 0) {
      this.#hasHealth[e] = 1;
      for (let w = 0; w < V2_HEALTH_WORDS; w++) this.#health[stored + w] = healthWords[h + W_HEALTH + w];
      return;
    }
    // The record is the later one when the merged last-seen is its own (ties: the later arrival).
    const last = e * ENTRY_WORDS + W_LAST;
    const later =
      words[r + W_LAST] === this.#entries[last] && words[r + W_LAST + 1] === this.#entries[last + 1];
    mergeFlowHealth(this.#health, stored, healthWords, h + W_HEALTH, later);
  }

  /** Doubles the index and places every cached flow in it again by its tag. */
  #growIndex(): void {
    const old = this.#index;
    const slots = (this.#mask + 1) * 2;
    const mask = slots - 1;
    const index = new Int32Array(slots * 2);
    const entrySlot = this.#entrySlot;
    for (let e = 0; e < this.#size; e++) {
      const tag = old[entrySlot[e] * 2];
      let slot = tag & mask;
      while (index[slot * 2] !== 0) slot = (slot + 1) & mask;
      index[slot * 2] = tag;
      index[slot * 2 + 1] = e;
      entrySlot[e] = slot;
    }
    this.#index = index;
    this.#mask = mask;
  }

  /**
   * Every cached flow as one batch, in the order the flows were first cached, its rows' user
   * sections zero; the table is then empty. The rows are written into `spare` (an 8-byte aligned
   * buffer nothing reads any more) when it is large enough, else into a new buffer.
   */
  evictAll(interfaces: InterfaceNames = NO_INTERFACE_NAMES, spare?: Buffer): RecordBatch {
    const batch = this.rowsOf(0, this.#size, interfaces, spare);
    this.clear();
    return batch;
  }

  /**
   * Cached flows `from` to `to` - 1 (in the order they were first cached) as one batch of rows,
   * as {@link evictAll} writes them, leaving the table as it is: an eviction taken in parts, the
   * table cleared after the last.
   */
  rowsOf(
    from: number,
    to: number,
    interfaces: InterfaceNames = NO_INTERFACE_NAMES,
    spare?: Buffer,
  ): RecordBatch {
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to > this.#size)
      throw new RangeError(`rows ${from}..${to} are not within the ${this.#size} cached flows`);
    const count = to - from;
    const reuse =
      spare !== undefined && spare.length >= count * V2_RECORD_BYTES && spare.byteOffset % 8 === 0;
    // Every word of each row is written below, so a new buffer need not be zeroed first.
    const bytes = reuse ? spare : Buffer.allocUnsafeSlow(count * V2_RECORD_BYTES);
    const rows = new Int32Array(bytes.buffer, bytes.byteOffset, count * ROW_WORDS);
    // The zeros after the key and metrics are stored 8 bytes at a time (rows and their tails are
    // 8-byte multiples): half the stores of word by word, and a tenth less time per record where
    // every record is evicted (bench/account.bench.ts, 10 000 flows / 1000).
    const zeros = new Float64Array(bytes.buffer, bytes.byteOffset, (count * ROW_WORDS) >>> 1);
    const entries = this.#entries;
    const health = this.#health;
    const hasHealth = this.#hasHealth;
    for (let e = from; e < to; e++) {
      const s = e * ENTRY_WORDS;
      const r = (e - from) * ROW_WORDS;
      for (let w = 0; w < ENTRY_WORDS; w++) rows[r + w] = entries[s + w];
      for (let z = (r + ENTRY_WORDS) >>> 1, end = (r + ROW_WORDS) >>> 1; z < end; z++) zeros[z] = 0;
      if (hasHealth !== undefined && health !== undefined && hasHealth[e] !== 0) {
        for (let w = 0, h = e * V2_HEALTH_WORDS; w < V2_HEALTH_WORDS; w++)
          rows[r + W_HEALTH + w] = health[h + w];
      }
    }
    return new RecordBatch(bytes, count, interfaces);
  }

  /** Forgets every cached flow. */
  clear(): void {
    const count = this.#size;
    const index = this.#index;
    if (count * 8 > this.#mask) {
      index.fill(0);
    } else {
      for (let e = 0; e < count; e++) index[this.#entrySlot[e] * 2] = 0;
    }
    const hasHealth = this.#hasHealth;
    if (hasHealth !== undefined) hasHealth.fill(0, 0, count);
    this.#size = 0;
  }
}
