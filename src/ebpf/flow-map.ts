/**
 * Drains the kernel flow map into batch rows: swap in the empty map, then lookup-and-delete the
 * old one in batches, merging per-CPU values into one row per flow and turning kernel monotonic
 * times into Unix-epoch nanoseconds. No object is made per flow.
 */
import { constants } from 'node:os';
import type { RecordBatchBuilder } from '../codec/record-batch.ts';
import { V2, V2_KEY_BYTES, V2_METRICS_BYTES } from '../codec/v2-layout.ts';
import { addOffsetAt, type SplitOffset } from './clock.ts';
import { kernelError } from './kernel-error.ts';
import { batchOpts, libbpf } from './libbpf.ts';
import type { FlowObject } from './object.ts';

const TWO_POW_32 = 2 ** 32;
const MAX_BATCH_ENTRIES = 4096;
const MAX_BATCH_VALUE_BYTES = 4 << 20;
// Offsets inside struct flow_metrics (a row's metrics start at V2.BYTES).
const M_BYTES = V2.BYTES - V2_KEY_BYTES;
const M_PACKETS = V2.PACKETS - V2_KEY_BYTES;
const M_FIRST = V2.FIRST_SEEN_NS - V2_KEY_BYTES;
const M_LAST = V2.LAST_SEEN_NS - V2_KEY_BYTES;
const M_TCP_FLAGS = V2.TCP_FLAGS - V2_KEY_BYTES;
const M_DSCP = V2.DSCP - V2_KEY_BYTES;

function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value % TWO_POW_32 >>> 0, at);
  buf.writeUInt32LE(Math.floor(value / TWO_POW_32) >>> 0, at + 4);
}

/** Moves every flow out of the kernel into rows. One per `FlowObject`. */
export class FlowMapDrainer {
  #entries: number;
  #keys: Buffer;
  #values: Buffer;
  readonly #inBatch = Buffer.alloc(8);
  readonly #outBatch = Buffer.alloc(8);
  readonly #count = Buffer.alloc(4);
  readonly #opts = batchOpts();

  constructor(private readonly obj: FlowObject) {
    this.#entries = Math.max(64, Math.min(MAX_BATCH_ENTRIES, Math.floor(MAX_BATCH_VALUE_BYTES / obj.flowValueBytes)));
    this.#keys = Buffer.alloc(this.#entries * V2_KEY_BYTES);
    this.#values = Buffer.alloc(this.#entries * obj.flowValueBytes);
  }

  /**
   * Swaps the flow maps and appends every flow of the previous one to `builder`, times shifted by
   * `offset` (monotonic → Unix). Returns the number of rows appended.
   */
  drainInto(builder: RecordBatchBuilder, offset: SplitOffset): number {
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
      if (result < 0 && -result !== constants.errno.ENOENT) throw kernelError('draining the flow map', result);
      const n = this.#count.readUInt32LE(0);
      for (let i = 0; i < n; i++) this.#appendFlow(builder, i, offset);
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
  }

  #appendFlow(builder: RecordBatchBuilder, i: number, offset: SplitOffset): void {
    const o = builder.appendRow();
    const row = builder.bytes;
    this.#keys.copy(row, o, i * V2_KEY_BYTES, (i + 1) * V2_KEY_BYTES);
    const values = this.#values;
    const base = i * this.obj.flowValueBytes;
    const m = o + V2_KEY_BYTES;
    if (this.obj.options.mapKind === 'shared') {
      values.copy(row, m, base, base + V2_METRICS_BYTES);
    } else {
      this.#mergePerCpu(values, base, row, m);
    }
    addOffsetAt(row, o + V2.FIRST_SEEN_NS, offset);
    addOffsetAt(row, o + V2.LAST_SEEN_NS, offset);
  }

  /** Sums one flow's per-CPU slots into the metrics at `m` of `row`; CPUs that saw none are skipped. */
  #mergePerCpu(values: Buffer, base: number, row: Buffer, m: number): void {
    let bytes = 0;
    let packets = 0;
    let firstHi = 0xffffffff;
    let firstLo = 0xffffffff;
    let lastHi = 0;
    let lastLo = 0;
    let flags = 0;
    let dscp = 0;
    for (let cpu = 0; cpu < this.obj.possibleCpus; cpu++) {
      const s = base + cpu * V2_METRICS_BYTES;
      const cpuPackets = values.readUInt32LE(s + M_PACKETS) + values.readUInt32LE(s + M_PACKETS + 4) * TWO_POW_32;
      if (cpuPackets === 0) continue;
      packets += cpuPackets;
      bytes += values.readUInt32LE(s + M_BYTES) + values.readUInt32LE(s + M_BYTES + 4) * TWO_POW_32;
      flags |= values.readUInt16LE(s + M_TCP_FLAGS);
      const fHi = values.readUInt32LE(s + M_FIRST + 4);
      const fLo = values.readUInt32LE(s + M_FIRST);
      if (fHi < firstHi || (fHi === firstHi && fLo < firstLo)) {
        firstHi = fHi;
        firstLo = fLo;
      }
      const lHi = values.readUInt32LE(s + M_LAST + 4);
      const lLo = values.readUInt32LE(s + M_LAST);
      if (lHi > lastHi || (lHi === lastHi && lLo >= lastLo)) {
        lastHi = lHi;
        lastLo = lLo;
        dscp = values[s + M_DSCP]; // DSCP of the flow's latest packet
      }
    }
    writeU64(row, m + M_BYTES, bytes);
    writeU64(row, m + M_PACKETS, packets);
    row.writeUInt32LE(firstLo, m + M_FIRST);
    row.writeUInt32LE(firstHi, m + M_FIRST + 4);
    row.writeUInt32LE(lastLo, m + M_LAST);
    row.writeUInt32LE(lastHi, m + M_LAST + 4);
    row.writeUInt16LE(flags, m + M_TCP_FLAGS);
    row[m + M_DSCP] = dscp;
  }
}
