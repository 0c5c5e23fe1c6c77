/**
 * The accounter's cache: open addressing with linear probing over typed arrays. A v2 row's 64-byte
 * key is hashed and compared as 16 words; metrics live in parallel arrays. Adding a record allocates
 * nothing; eviction writes every cached flow into one new batch and empties the table.
 */
import { RecordBatch } from '../codec/record-batch.ts';
import { V2_KEY_WORDS, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';

const ROW_WORDS = V2_RECORD_BYTES / 4;
// Word indexes of the metrics inside a row (see bpf/flow_record.h).
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

/** A batch's rows as 32-bit words; copies once when the Buffer is not 4-byte aligned. */
export function rowWords(batch: RecordBatch): Int32Array {
  const buf = batch.bytes;
  const length = batch.count * ROW_WORDS;
  if ((buf.byteOffset & 3) === 0) return new Int32Array(buf.buffer, buf.byteOffset, length);
  const aligned = new Int32Array(length);
  new Uint8Array(aligned.buffer).set(buf.subarray(0, length * 4));
  return aligned;
}

/** Fixed-capacity flow cache keyed by v2 keys. */
export class FlowTable {
  /** Most flows the table holds before it reports `full`. */
  readonly maxEntries: number;
  readonly #mask: number;
  readonly #keys: Int32Array;
  /** Per slot: hash with the low bit set, 0 when empty. */
  readonly #slotHash: Int32Array;
  readonly #bytes: Float64Array;
  readonly #packets: Float64Array;
  readonly #firstHi: Uint32Array;
  readonly #firstLo: Uint32Array;
  readonly #lastHi: Uint32Array;
  readonly #lastLo: Uint32Array;
  readonly #flags: Uint16Array;
  readonly #dscp: Uint8Array;
  /** Occupied slots in insertion order, so eviction visits only them. */
  readonly #order: Int32Array;
  #size = 0;
  /** Index where the last `add` stopped. */
  stoppedAt = 0;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer, got ${maxEntries}`);
    this.maxEntries = maxEntries;
    const capacity = nextPowerOfTwo(maxEntries * 2);
    this.#mask = capacity - 1;
    this.#keys = new Int32Array(capacity * V2_KEY_WORDS);
    this.#slotHash = new Int32Array(capacity);
    this.#bytes = new Float64Array(capacity);
    this.#packets = new Float64Array(capacity);
    this.#firstHi = new Uint32Array(capacity);
    this.#firstLo = new Uint32Array(capacity);
    this.#lastHi = new Uint32Array(capacity);
    this.#lastLo = new Uint32Array(capacity);
    this.#flags = new Uint16Array(capacity);
    this.#dscp = new Uint8Array(capacity);
    this.#order = new Int32Array(maxEntries);
  }

  /** Flows cached now. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of typed arrays this table holds, for memory accounting. */
  get heapBytes(): number {
    return (
      this.#keys.byteLength +
      this.#slotHash.byteLength +
      this.#bytes.byteLength +
      this.#packets.byteLength +
      this.#firstHi.byteLength * 4 +
      this.#flags.byteLength +
      this.#dscp.byteLength +
      this.#order.byteLength
    );
  }

  /**
   * Accumulates rows `from`.. of `words` (a batch seen through `rowWords`). Stops before a row
   * that would be a new flow in a full table (`full`), or whose last-seen time reaches
   * `deadlineNs` (`deadline`); returns the index it stopped at (also in `stoppedAt`).
   */
  add(words: Int32Array, count: number, from = 0, deadlineNs = Number.POSITIVE_INFINITY): AddStop {
    const keys = this.#keys;
    const slotHash = this.#slotHash;
    const mask = this.#mask;
    for (let i = from; i < count; i++) {
      const r = i * ROW_WORDS;
      const lastHi = words[r + W_LAST + 1] >>> 0;
      const lastLo = words[r + W_LAST] >>> 0;
      const lastNs = lastHi * TWO_POW_32 + lastLo;
      if (lastNs >= deadlineNs) {
        this.stoppedAt = i;
        return 'deadline';
      }

      let h = 0x2f0b3c5d;
      for (let w = 0; w < V2_KEY_WORDS; w++) {
        h = Math.imul(h ^ words[r + w], 0x9e3779b1);
        h ^= h >>> 15;
      }
      h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
      h = (h ^ (h >>> 16)) | 1;

      let slot = h & mask;
      for (;;) {
        const sh = slotHash[slot];
        if (sh === 0) break;
        if (sh === h) {
          const k = slot * V2_KEY_WORDS;
          let w = 0;
          while (w < V2_KEY_WORDS && keys[k + w] === words[r + w]) w++;
          if (w === V2_KEY_WORDS) break;
        }
        slot = (slot + 1) & mask;
      }

      if (slotHash[slot] === 0) {
        if (this.#size >= this.maxEntries) {
          this.stoppedAt = i;
          return 'full';
        }
        slotHash[slot] = h;
        keys.set(words.subarray(r, r + V2_KEY_WORDS), slot * V2_KEY_WORDS);
        this.#bytes[slot] = (words[r + W_BYTES] >>> 0) + (words[r + W_BYTES + 1] >>> 0) * TWO_POW_32;
        this.#packets[slot] = (words[r + W_PACKETS] >>> 0) + (words[r + W_PACKETS + 1] >>> 0) * TWO_POW_32;
        this.#firstLo[slot] = words[r + W_FIRST];
        this.#firstHi[slot] = words[r + W_FIRST + 1];
        this.#lastLo[slot] = lastLo;
        this.#lastHi[slot] = lastHi;
        const fd = words[r + W_FLAGS_DSCP];
        this.#flags[slot] = fd & 0xffff;
        this.#dscp[slot] = (fd >>> 16) & 0xff;
        this.#order[this.#size++] = slot;
        continue;
      }

      this.#bytes[slot] += (words[r + W_BYTES] >>> 0) + (words[r + W_BYTES + 1] >>> 0) * TWO_POW_32;
      this.#packets[slot] += (words[r + W_PACKETS] >>> 0) + (words[r + W_PACKETS + 1] >>> 0) * TWO_POW_32;
      const firstHi = words[r + W_FIRST + 1] >>> 0;
      const firstLo = words[r + W_FIRST] >>> 0;
      if (
        firstHi < this.#firstHi[slot] ||
        (firstHi === this.#firstHi[slot] && firstLo < this.#firstLo[slot])
      ) {
        this.#firstHi[slot] = firstHi;
        this.#firstLo[slot] = firstLo;
      }
      if (lastHi > this.#lastHi[slot] || (lastHi === this.#lastHi[slot] && lastLo > this.#lastLo[slot])) {
        this.#lastHi[slot] = lastHi;
        this.#lastLo[slot] = lastLo;
      }
      const fd = words[r + W_FLAGS_DSCP];
      this.#flags[slot] |= fd & 0xffff;
      this.#dscp[slot] = (fd >>> 16) & 0xff;
    }
    this.stoppedAt = count;
    return 'done';
  }

  /** Every cached flow as one batch, in first-seen order of their keys; the table is then empty. */
  evictAll(interfaces: InterfaceNames = NO_INTERFACE_NAMES): RecordBatch {
    const count = this.#size;
    const out = new Int32Array(count * ROW_WORDS);
    const keys = this.#keys;
    for (let i = 0; i < count; i++) {
      const slot = this.#order[i];
      const r = i * ROW_WORDS;
      out.set(keys.subarray(slot * V2_KEY_WORDS, (slot + 1) * V2_KEY_WORDS), r);
      const bytes = this.#bytes[slot];
      out[r + W_BYTES] = bytes % TWO_POW_32;
      out[r + W_BYTES + 1] = Math.floor(bytes / TWO_POW_32);
      const packets = this.#packets[slot];
      out[r + W_PACKETS] = packets % TWO_POW_32;
      out[r + W_PACKETS + 1] = Math.floor(packets / TWO_POW_32);
      out[r + W_FIRST] = this.#firstLo[slot];
      out[r + W_FIRST + 1] = this.#firstHi[slot];
      out[r + W_LAST] = this.#lastLo[slot];
      out[r + W_LAST + 1] = this.#lastHi[slot];
      out[r + W_FLAGS_DSCP] = this.#flags[slot] | (this.#dscp[slot] << 16);
      this.#slotHash[slot] = 0;
    }
    this.#size = 0;
    return new RecordBatch(Buffer.from(out.buffer, 0, out.byteLength), count, interfaces);
  }
}
