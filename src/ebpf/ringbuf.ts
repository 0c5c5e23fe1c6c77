/**
 * Reads the BPF ring buffer straight from its memory mapping, as cilium/ebpf's `ringbuf.Reader`
 * does: records are copied into batch rows in a loop, with no JS callback per record and no
 * syscall when the buffer is empty. Every record is one `struct flow_record` (packets = 1).
 */
import koffi from 'koffi';
import { V2, V2_EVENT_BYTES } from '../codec/v2-layout.ts';
import { ClosedError } from '../errors.ts';
import type { SplitOffset } from './clock.ts';
import { kernelError } from './kernel-error.ts';
import { lastErrno, libbpf } from './libbpf.ts';
import { addOffsetWords, type RowSink, RowWords } from './rows.ts';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const RECORD_HEADER_BYTES = 8;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const LENGTH_MASK = 0x3fffffff;
const EVENT_WORDS = V2_EVENT_BYTES / 4;
const W_FIRST = V2.FIRST_SEEN_NS / 4;
const W_LAST = V2.LAST_SEEN_NS / 4;

/**
 * Consumer of one ring buffer map. After `close()` the mappings are gone: every read throws
 * ClosedError rather than touching unmapped memory (which would kill the process).
 */
export class RingBufferReader {
  readonly #pageBytes: number;
  readonly #dataBytes: number;
  #consumerMapping: bigint | null;
  #producerMapping: bigint | null;
  readonly #consumerPos: BigUint64Array;
  readonly #producerPos: BigUint64Array;
  readonly #dataWords: Uint32Array;
  readonly #rowWords = new RowWords();
  #malformedRecords = 0;

  /** Maps the ring buffer `mapFd` of `dataBytes` (its max_entries). */
  constructor(mapFd: number, dataBytes: number) {
    const lib = libbpf();
    this.#pageBytes = lib.getpagesize();
    this.#dataBytes = dataBytes;
    this.#consumerMapping = lib.mmap(null, this.#pageBytes, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0);
    if (koffi.address(this.#consumerMapping) === MAP_FAILED)
      throw kernelError('mapping the ring buffer', lastErrno());
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
    this.#dataWords = new Uint32Array(producer, this.#pageBytes, (2 * dataBytes) / 4);
  }

  /** Bytes written by the kernel and not yet consumed. Throws ClosedError after close(). */
  pendingBytes(): number {
    this.#checkOpen('pendingBytes');
    return Number(Atomics.load(this.#producerPos, 0) - Atomics.load(this.#consumerPos, 0));
  }

  /**
   * Appends every committed record to `sink` with times shifted by `offset`, frees their space
   * for the kernel, and returns how many rows were appended. Throws ClosedError after close().
   */
  readInto(sink: RowSink, offset: SplitOffset): number {
    this.#checkOpen('readInto');
    const start = Atomics.load(this.#consumerPos, 0);
    const producer = Number(Atomics.load(this.#producerPos, 0) - start);
    const mask = this.#dataBytes - 1;
    let consumed = 0;
    let rows = 0;
    const base = Number(start & BigInt(mask));
    while (consumed < producer) {
      const at = (base + consumed) & mask;
      const header = Atomics.load(this.#dataWords, at >>> 2);
      if (header & BUSY_BIT) break; // reserved but not yet submitted: read it next time
      const length = header & LENGTH_MASK;
      if ((header & DISCARD_BIT) === 0) {
        if (length === V2_EVENT_BYTES) {
          const o = sink.appendRow() >>> 2;
          const row = this.#rowWords.of(sink.bytes);
          const data = this.#dataWords;
          const s = (at + RECORD_HEADER_BYTES) >>> 2;
          for (let w = 0; w < EVENT_WORDS; w++) row[o + w] = data[s + w];
          addOffsetWords(row, o + W_FIRST, offset);
          addOffsetWords(row, o + W_LAST, offset);
          rows++;
        } else {
          this.#malformedRecords++;
        }
      }
      consumed += (length + RECORD_HEADER_BYTES + 7) & ~7;
    }
    if (consumed > 0) Atomics.store(this.#consumerPos, 0, start + BigInt(consumed));
    return rows;
  }

  /** Records that were not a whole `struct flow_event` (never expected; counted, not kept). Readable after close. */
  get malformedRecords(): number {
    return this.#malformedRecords;
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#consumerMapping === null;
  }

  /** Unmaps the buffer (the map itself belongs to the object); later calls do nothing. */
  close(): void {
    if (this.#consumerMapping === null || this.#producerMapping === null) return;
    const lib = libbpf();
    lib.munmap(this.#consumerMapping, this.#pageBytes);
    lib.munmap(this.#producerMapping, this.#pageBytes + 2 * this.#dataBytes);
    this.#consumerMapping = null;
    this.#producerMapping = null;
  }

  #checkOpen(operation: string): void {
    if (this.#consumerMapping === null) throw new ClosedError('ring buffer reader', operation);
  }
}
