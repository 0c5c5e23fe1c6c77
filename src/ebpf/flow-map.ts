/**
 * Drains the kernel flow map into batch rows: swap in the empty map, then lookup-and-delete the
 * old one in batches, merging per-CPU values into one row per flow and turning kernel monotonic
 * times into Unix-epoch nanoseconds. No object is made per flow.
 */
import { constants } from 'node:os';
import { V2, V2_KEY_BYTES, V2_METRICS_BYTES } from '../codec/v2-layout.ts';
import type { SplitOffset } from './clock.ts';
import { kernelError } from './kernel-error.ts';
import { batchOpts, libbpf } from './libbpf.ts';
import type { FlowObject } from './object.ts';
import { addOffsetWords, type RowSink, RowWords } from './rows.ts';

const MAX_BATCH_ENTRIES = 4096;
const MAX_BATCH_VALUE_BYTES = 4 << 20;
const KEY_WORDS = V2_KEY_BYTES / 4;
const METRICS_WORDS = V2_METRICS_BYTES / 4;
// Word indexes inside struct flow_metrics (a row's metrics start at word KEY_WORDS).
const W_BYTES = (V2.BYTES - V2_KEY_BYTES) / 4;
const W_PACKETS = (V2.PACKETS - V2_KEY_BYTES) / 4;
const W_FIRST = (V2.FIRST_SEEN_NS - V2_KEY_BYTES) / 4;
const W_LAST = (V2.LAST_SEEN_NS - V2_KEY_BYTES) / 4;
/** tcp_flags (u16), dscp (u8) and a pad byte share one word. */
const W_FLAGS_DSCP = (V2.TCP_FLAGS - V2_KEY_BYTES) / 4;
const TWO_POW_32 = 2 ** 32;

/** Moves every flow out of the kernel into rows. One per `FlowObject`. */
export class FlowMapDrainer {
  #entries: number;
  #keys: Buffer;
  #values: Buffer;
  #keyWords: Uint32Array;
  #valueWords: Uint32Array;
  readonly #rowWords = new RowWords();
  readonly #inBatch = Buffer.alloc(8);
  readonly #outBatch = Buffer.alloc(8);
  readonly #count = Buffer.alloc(4);
  readonly #opts = batchOpts();

  constructor(private readonly obj: FlowObject) {
    this.#entries = Math.max(
      64,
      Math.min(MAX_BATCH_ENTRIES, Math.floor(MAX_BATCH_VALUE_BYTES / obj.flowValueBytes)),
    );
    this.#keys = Buffer.alloc(this.#entries * V2_KEY_BYTES);
    this.#values = Buffer.alloc(this.#entries * obj.flowValueBytes);
    this.#keyWords = new Uint32Array(this.#keys.buffer, this.#keys.byteOffset, this.#keys.length / 4);
    this.#valueWords = new Uint32Array(this.#values.buffer, this.#values.byteOffset, this.#values.length / 4);
  }

  /**
   * Swaps the flow maps and appends every flow of the previous one to `sink`, times shifted by
   * `offset` (monotonic → Unix). Returns the number of rows appended.
   */
  drainInto(sink: RowSink, offset: SplitOffset): number {
    const fd = this.obj.swapFlowMaps();
    const lib = libbpf();
    let rows = 0;
    let first = true;
    for (;;) {
      this.#count.writeUInt32LE(this.#entries, 0);
      const result: number = lib.mapLookupAndDeleteBatch(
        fd,
        first ? null : this.#inBatch,
        this.#outBatch,
        this.#keys,
        this.#values,
        this.#count,
        this.#opts,
      );
      if (result < 0 && -result === constants.errno.ENOSPC) {
        // One hash bucket holds more flows than a batch: retry the same position with room for it.
        this.#grow();
        continue;
      }
      if (result < 0 && -result !== constants.errno.ENOENT)
        throw kernelError('draining the flow map', result);
      const n = this.#count.readUInt32LE(0);
      for (let i = 0; i < n; i++) this.#appendFlow(sink, i, offset);
      rows += n;
      if (result < 0) return rows; // ENOENT: the map is empty now
      this.#outBatch.copy(this.#inBatch);
      first = false;
    }
  }

  #grow(): void {
    this.#entries *= 2;
    this.#keys = Buffer.alloc(this.#entries * V2_KEY_BYTES);
    this.#values = Buffer.alloc(this.#entries * this.obj.flowValueBytes);
    this.#keyWords = new Uint32Array(this.#keys.buffer, this.#keys.byteOffset, this.#keys.length / 4);
    this.#valueWords = new Uint32Array(this.#values.buffer, this.#values.byteOffset, this.#values.length / 4);
  }

  #appendFlow(sink: RowSink, i: number, offset: SplitOffset): void {
    const o = sink.appendRow() >>> 2;
    const row = this.#rowWords.of(sink.bytes);
    const keys = this.#keyWords;
    const k = i * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) row[o + w] = keys[k + w];
    const m = o + KEY_WORDS;
    const v = (i * this.obj.flowValueBytes) >>> 2;
    if (this.obj.options.mapKind === 'shared') {
      const values = this.#valueWords;
      for (let w = 0; w < METRICS_WORDS; w++) row[m + w] = values[v + w];
    } else {
      this.#mergePerCpu(v, row, m);
    }
    addOffsetWords(row, m + W_FIRST, offset);
    addOffsetWords(row, m + W_LAST, offset);
  }

  /** Sums one flow's per-CPU slots (from word `v`) into the metrics at word `m` of `row`; idle CPUs are skipped. */
  #mergePerCpu(v: number, row: Uint32Array, m: number): void {
    const values = this.#valueWords;
    let bytes = 0;
    let packets = 0;
    let firstHi = 0xffffffff;
    let firstLo = 0xffffffff;
    let lastHi = 0;
    let lastLo = 0;
    let flags = 0;
    let dscp = 0;
    for (let cpu = 0, s = v; cpu < this.obj.possibleCpus; cpu++, s += METRICS_WORDS) {
      const cpuPackets = values[s + W_PACKETS] + values[s + W_PACKETS + 1] * TWO_POW_32;
      if (cpuPackets === 0) continue;
      packets += cpuPackets;
      bytes += values[s + W_BYTES] + values[s + W_BYTES + 1] * TWO_POW_32;
      const flagsDscp = values[s + W_FLAGS_DSCP];
      flags |= flagsDscp & 0xffff;
      const fLo = values[s + W_FIRST];
      const fHi = values[s + W_FIRST + 1];
      if (fHi < firstHi || (fHi === firstHi && fLo < firstLo)) {
        firstHi = fHi;
        firstLo = fLo;
      }
      const lLo = values[s + W_LAST];
      const lHi = values[s + W_LAST + 1];
      if (lHi > lastHi || (lHi === lastHi && lLo >= lastLo)) {
        lastHi = lHi;
        lastLo = lLo;
        dscp = (flagsDscp >>> 16) & 0xff; // DSCP of the flow's latest packet
      }
    }
    row[m + W_BYTES] = bytes % TWO_POW_32;
    row[m + W_BYTES + 1] = Math.floor(bytes / TWO_POW_32);
    row[m + W_PACKETS] = packets % TWO_POW_32;
    row[m + W_PACKETS + 1] = Math.floor(packets / TWO_POW_32);
    row[m + W_FIRST] = firstLo;
    row[m + W_FIRST + 1] = firstHi;
    row[m + W_LAST] = lastLo;
    row[m + W_LAST + 1] = lastHi;
    row[m + W_FLAGS_DSCP] = flags | (dscp << 16);
  }
}
