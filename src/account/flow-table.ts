/**
 * The accounter's cache: flows stored as v2 rows (26 words: 16 of key, 10 of metrics) behind an
 * open-addressing hash index. Adding a record allocates nothing; eviction copies the rows out as
 * one new batch.
 */
import { RecordBatch } from '../codec/record-batch.ts';
import { V2_KEY_WORDS, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';

const ROW_WORDS = V2_RECORD_BYTES / 4;
// Word indexes of the metrics inside a row (see bpf/flow_record.h); u64 values are lo, hi.
const W_BYTES = 16;
const W_PACKETS = 18;
const W_FIRST = 20;
const W_LAST = 22;
const W_FLAGS_DSCP = 24;
const TWO_POW_32 = 4294967296;

/** Why `add` stopped before the end of a batch. */
export type AddStop = 'done' | 'full' | 'deadline';

function nextPowerOfTwo(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

/** Last-seen time of row `i` of `words` in nanoseconds, as a number (rounded to ~256 ns: enough for timeouts). */
export function rowLastSeenNs(words: Int32Array, i: number): number {
  return (words[i * ROW_WORDS + W_LAST + 1] >>> 0) * TWO_POW_32 + (words[i * ROW_WORDS + W_LAST] >>> 0);
}

/**
 * Hash of the 16-word key of the row starting at word `r`, never 0 (its low bit is set). A
 * multilinear hash: independent multiplies by odd constants (no dependency chain), then murmur3's
 * finalizer; keys differing in one word never collide before masking.
 */
export function hashKey(words: Int32Array, r: number): number {
  let h =
    (Math.imul(words[r], 0x9e3779b1) +
      Math.imul(words[r + 1], 0x85ebca77) +
      Math.imul(words[r + 2], 0xc2b2ae3d) +
      Math.imul(words[r + 3], 0x27d4eb2f) +
      Math.imul(words[r + 4], 0x165667b1) +
      Math.imul(words[r + 5], 0xd3a2646d) +
      Math.imul(words[r + 6], 0xfd7046c5) +
      Math.imul(words[r + 7], 0xb55a4f09) +
      Math.imul(words[r + 8], 0x7feb352d) +
      Math.imul(words[r + 9], 0x846ca68b) +
      Math.imul(words[r + 10], 0x9e485565) +
      Math.imul(words[r + 11], 0xef1d6b47) +
      Math.imul(words[r + 12], 0x5bd1e995) +
      Math.imul(words[r + 13], 0x1b873593) +
      Math.imul(words[r + 14], 0xcc9e2d51) +
      Math.imul(words[r + 15], 0xe6546b65)) |
    0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 1;
}

/** A batch's rows as 32-bit words; copies once when the Buffer is not 4-byte aligned. */
export function rowWords(batch: RecordBatch): Int32Array {
  const buf = batch.bytes;
  const length = batch.count * ROW_WORDS;
  if ((buf.byteOffset & 3) === 0) return new Int32Array(buf.buffer, buf.byteOffset, length);
  const aligned = new Int32Array(length);
  new Uint8Array(aligned.buffer).set(buf.subarray(0, length * 4));
  return aligned;
}

/**
 * Fixed-capacity flow cache keyed by v2 keys. Flows are stored densely, in arrival order, as v2
 * rows in `#entries`; an open-addressing index (linear probing) maps key hashes to entries. Dense
 * entries keep a small working set in cache however large `maxEntries` is, and make eviction a
 * single copy of the used prefix.
 */
export class FlowTable {
  /** Most flows the table holds before it reports `full`. */
  readonly maxEntries: number;
  readonly #mask: number;
  /** Entry `e` occupies words `e * ROW_WORDS ..` with the same layout as a v2 row. */
  readonly #entries: Int32Array;
  /** Per index slot, two words: the key hash with its low bit set (0 = empty), and the entry number. */
  readonly #index: Int32Array;
  /** Index slot of each entry, so eviction clears only the slots in use. */
  readonly #entrySlot: Int32Array;
  #size = 0;
  /** Index where the last `add` stopped. */
  stoppedAt = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    }
    this.maxEntries = maxEntries;
    const capacity = nextPowerOfTwo(maxEntries * 2);
    this.#mask = capacity - 1;
    this.#entries = new Int32Array(maxEntries * ROW_WORDS);
    this.#index = new Int32Array(capacity * 2);
    this.#entrySlot = new Int32Array(maxEntries);
  }

  /** Flows cached now. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of typed arrays this table holds, for memory accounting. */
  get heapBytes(): number {
    return this.#entries.byteLength + this.#index.byteLength + this.#entrySlot.byteLength;
  }

  /**
   * Accumulates rows `from`.. of `words` (a batch seen through `rowWords`). Stops before a row
   * that would be a new flow in a full table (`full`), or whose last-seen time reaches
   * `deadlineNs` (`deadline`); the index it stopped at is left in `stoppedAt`.
   */
  add(words: Int32Array, count: number, from = 0, deadlineNs = Number.POSITIVE_INFINITY): AddStop {
    const entries = this.#entries;
    const index = this.#index;
    const mask = this.#mask;
    const checkDeadline = deadlineNs !== Number.POSITIVE_INFINITY;
    for (let i = from; i < count; i++) {
      const r = i * ROW_WORDS;
      if (
        checkDeadline &&
        (words[r + W_LAST + 1] >>> 0) * TWO_POW_32 + (words[r + W_LAST] >>> 0) >= deadlineNs
      ) {
        this.stoppedAt = i;
        return 'deadline';
      }

      const h = hashKey(words, r);
      let slot = h & mask;
      let e = -1;
      for (;;) {
        const sh = index[slot * 2];
        if (sh === 0) break;
        if (sh === h) {
          const s = index[slot * 2 + 1] * ROW_WORDS;
          let w = 0;
          while (w < V2_KEY_WORDS && entries[s + w] === words[r + w]) w++;
          if (w === V2_KEY_WORDS) {
            e = index[slot * 2 + 1];
            break;
          }
        }
        slot = (slot + 1) & mask;
      }

      if (e < 0) {
        if (this.#size >= this.maxEntries) {
          this.stoppedAt = i;
          return 'full';
        }
        e = this.#size++;
        index[slot * 2] = h;
        index[slot * 2 + 1] = e;
        this.#entrySlot[e] = slot;
        const s = e * ROW_WORDS;
        for (let w = 0; w < ROW_WORDS; w++) entries[s + w] = words[r + w];
        continue;
      }

      const s = e * ROW_WORDS;
      addU64(entries, s + W_BYTES, words[r + W_BYTES], words[r + W_BYTES + 1]);
      addU64(entries, s + W_PACKETS, words[r + W_PACKETS], words[r + W_PACKETS + 1]);
      const firstHi = words[r + W_FIRST + 1] >>> 0;
      const storedFirstHi = entries[s + W_FIRST + 1] >>> 0;
      if (
        firstHi < storedFirstHi ||
        (firstHi === storedFirstHi && words[r + W_FIRST] >>> 0 < entries[s + W_FIRST] >>> 0)
      ) {
        entries[s + W_FIRST] = words[r + W_FIRST];
        entries[s + W_FIRST + 1] = firstHi;
      }
      const lastHi = words[r + W_LAST + 1] >>> 0;
      const storedLastHi = entries[s + W_LAST + 1] >>> 0;
      if (
        lastHi > storedLastHi ||
        (lastHi === storedLastHi && words[r + W_LAST] >>> 0 > entries[s + W_LAST] >>> 0)
      ) {
        entries[s + W_LAST] = words[r + W_LAST];
        entries[s + W_LAST + 1] = lastHi;
      }
      const fd = words[r + W_FLAGS_DSCP];
      entries[s + W_FLAGS_DSCP] = ((entries[s + W_FLAGS_DSCP] | fd) & 0xffff) | (fd & 0xff0000);
    }
    this.stoppedAt = count;
    return 'done';
  }

  /** Every cached flow as one batch, in the order the flows were first cached; the table is then empty. */
  evictAll(interfaces: InterfaceNames = NO_INTERFACE_NAMES): RecordBatch {
    const count = this.#size;
    const bytes = Buffer.allocUnsafeSlow(count * V2_RECORD_BYTES);
    bytes.set(new Uint8Array(this.#entries.buffer, 0, count * V2_RECORD_BYTES));
    const index = this.#index;
    if (count * 8 > this.#mask) {
      index.fill(0);
    } else {
      for (let e = 0; e < count; e++) index[this.#entrySlot[e] * 2] = 0;
    }
    this.#size = 0;
    return new RecordBatch(bytes, count, interfaces);
  }
}

/** Adds the u64 (lo, hi) to the u64 stored at words[at], words[at + 1], with carry. */
function addU64(words: Int32Array, at: number, lo: number, hi: number): void {
  const sumLo = (words[at] >>> 0) + (lo >>> 0);
  words[at] = sumLo;
  words[at + 1] = (words[at + 1] >>> 0) + (hi >>> 0) + (sumLo >= TWO_POW_32 ? 1 : 0);
}
