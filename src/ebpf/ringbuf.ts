/**
 * Reads the BPF ring buffer straight from its memory mapping, as cilium/ebpf's `ringbuf.Reader`
 * does: records are copied into batch rows in a loop, with no JS callback per record and no
 * syscall when the buffer is empty. Every record is one `struct flow_record` (packets = 1).
 */
import koffi from 'koffi';
import type { RecordBatchBuilder } from '../codec/record-batch.ts';
import { V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { addOffsetAt, type SplitOffset } from './clock.ts';
import { kernelError } from './kernel-error.ts';
import { lastErrno, libbpf } from './libbpf.ts';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const RECORD_HEADER_BYTES = 8;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LENGTH_MASK = 0x3fffffff;

/** Consumer of one ring buffer map. */
export class RingBufferReader {
  readonly #pageBytes: number;
  readonly #dataBytes: number;
  #consumerMapping: bigint;
  #producerMapping: bigint;
  readonly #consumerPos: BigUint64Array;
  readonly #producerPos: BigUint64Array;
  readonly #data: Buffer;
  readonly #dataWords: Int32Array;
  /** Records that were not a whole `struct flow_record` (never expected; counted, not kept). */
  malformedRecords = 0;

  /** Maps the ring buffer `mapFd` of `dataBytes` (its max_entries). */
  constructor(mapFd: number, dataBytes: number) {
    const lib = libbpf();
    this.#pageBytes = lib.getpagesize();
    this.#dataBytes = dataBytes;
    this.#consumerMapping = lib.mmap(null, this.#pageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
    if (koffi.address(this.#consumerMapping) === MAP_FAILED) throw kernelError('mapping the ring buffer', lastErrno());
    // The kernel maps the data area twice in a row, so a record that wraps around reads as one.
    const producerLength = this.#pageBytes + 2 * dataBytes;
    this.#producerMapping = lib.mmap(null, producerLength, PROT_READ, MAP_SHARED, mapFd, this.#pageBytes);
    if (koffi.address(this.#producerMapping) === MAP_FAILED) {
      lib.munmap(this.#consumerMapping, this.#pageBytes);
      throw kernelError('mapping the ring buffer', lastErrno());
    }
    this.#consumerPos = new BigUint64Array(koffi.view(this.#consumerMapping, 8));
    const producer = koffi.view(this.#producerMapping, producerLength);
    this.#producerPos = new BigUint64Array(producer, 0, 1);
    this.#data = Buffer.from(producer, this.#pageBytes, 2 * dataBytes);
    this.#dataWords = new Int32Array(producer, this.#pageBytes, (2 * dataBytes) / 4);
  }

  /** Bytes written by the kernel and not yet consumed. */
  pendingBytes(): number {
    return Number(Atomics.load(this.#producerPos, 0) - Atomics.load(this.#consumerPos, 0));
  }

  /**
   * Appends every committed record to `builder` with times shifted by `offset`, frees their space
   * for the kernel, and returns how many rows were appended.
   */
  readInto(builder: RecordBatchBuilder, offset: SplitOffset): number {
    const start = Atomics.load(this.#consumerPos, 0);
    const producer = Number(Atomics.load(this.#producerPos, 0) - start);
    const mask = this.#dataBytes - 1;
    let consumed = 0;
    let rows = 0;
    const base = Number(start & BigInt(mask));
    while (consumed < producer) {
      const at = (base + consumed) & mask;
      const header = Atomics.load(this.#dataWords, at >>> 2) >>> 0;
      if (header & BUSY_BIT) break; // reserved but not yet submitted: read it next time
      const length = header & LENGTH_MASK;
      if ((header & DISCARD_BIT) === 0) {
        if (length === V2_RECORD_BYTES) {
          const o = builder.appendRow();
          const row = builder.bytes;
          this.#data.copy(row, o, at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + V2_RECORD_BYTES);
          addOffsetAt(row, o + V2.FIRST_SEEN_NS, offset);
          addOffsetAt(row, o + V2.LAST_SEEN_NS, offset);
          rows++;
        } else {
          this.malformedRecords++;
        }
      }
      consumed += (length + RECORD_HEADER_BYTES + 7) & ~7;
    }
    if (consumed > 0) Atomics.store(this.#consumerPos, 0, start + BigInt(consumed));
    return rows;
  }

  /** Unmaps the buffer (the map itself belongs to the object). */
  close(): void {
    const lib = libbpf();
    if (this.#consumerMapping) lib.munmap(this.#consumerMapping, this.#pageBytes);
    if (this.#producerMapping) lib.munmap(this.#producerMapping, this.#pageBytes + 2 * this.#dataBytes);
    this.#consumerMapping = 0n;
    this.#producerMapping = 0n;
  }
}
