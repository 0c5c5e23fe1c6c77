/**
 * Rows seen as 32-bit words: the accounter, the decoders and the kernel readers copy, compare and
 * merge rows with word loads and stores instead of byte reads. Word indexes are in
 * v2-layout.ts; this module makes the views.
 */
import type { RecordBatch } from './record-batch.ts';
import { V2_ROW_WORDS } from './v2-layout.ts';

/**
 * The first `length` little-endian words of `buf`: a view when `buf` starts 4-byte aligned (as
 * `Buffer.alloc` buffers do), otherwise one aligned copy (a slice of a pooled or concatenated chunk).
 */
export function int32Words(buf: Buffer, length: number): Int32Array {
  if ((buf.byteOffset & 3) === 0) return new Int32Array(buf.buffer, buf.byteOffset, length);
  const copy = new Int32Array(length);
  new Uint8Array(copy.buffer).set(buf.subarray(0, length * 4));
  return copy;
}

/** A batch's rows as words: row `i` starts at word `i * V2_ROW_WORDS`. */
export function rowWords(batch: RecordBatch): Int32Array {
  return int32Words(batch.bytes, batch.count * V2_ROW_WORDS);
}

/**
 * A cached unsigned word view of whichever buffer a row sink currently writes to; a new view is
 * made only when the sink replaces its buffer.
 */
export class RowWords {
  #buffer: Buffer | undefined;
  #words: Uint32Array = new Uint32Array(0);

  /** The words of `buffer`, which must start 4-byte aligned: rows are written in place. */
  of(buffer: Buffer): Uint32Array {
    if (buffer !== this.#buffer) {
      if (buffer.byteOffset % 4 !== 0) throw new RangeError('row buffer is not 4-byte aligned');
      this.#buffer = buffer;
      this.#words = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.length >>> 2);
    }
    return this.#words;
  }
}
