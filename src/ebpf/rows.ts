/**
 * Writing kernel records into batch rows word by word: the map drain and the ring-buffer reader
 * copy 104-byte rows with 32-bit loads and stores (no native call, no object per row) and shift
 * their times in the same pass.
 */
import type { SplitOffset } from './clock.ts';

/** Where drained rows go: `RecordBatchBuilder`, or a wrapper that cuts batches at a size. */
export interface RowSink {
  /** Reserves one zeroed row and returns its byte offset in `bytes`. */
  appendRow(): number;
  /** The buffer rows are written to; re-read after `appendRow()`, which may replace it. */
  readonly bytes: Buffer;
}

/** A cached 32-bit view of whichever buffer a sink currently writes to. */
export class RowWords {
  #buffer: Buffer | undefined;
  #words: Uint32Array = new Uint32Array(0);

  /** The words of `buffer` (which must start 4-byte aligned, as `Buffer.alloc` buffers do). */
  of(buffer: Buffer): Uint32Array {
    if (buffer !== this.#buffer) {
      if (buffer.byteOffset % 4 !== 0) throw new RangeError('row buffer is not 4-byte aligned');
      this.#buffer = buffer;
      this.#words = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.length >>> 2);
    }
    return this.#words;
  }
}

/** Adds `offset` to the little-endian u64 held in `words[i]` (low) and `words[i + 1]` (high). */
export function addOffsetWords(words: Uint32Array, i: number, offset: SplitOffset): void {
  const lo = words[i] + offset.lo;
  words[i] = lo; // stores wrap modulo 2^32
  words[i + 1] = words[i + 1] + offset.hi + (lo > 0xffffffff ? 1 : 0);
}
