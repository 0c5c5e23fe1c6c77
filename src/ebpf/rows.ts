/**
 * Writing kernel records into batch rows word by word: the map drain and the ring-buffer reader
 * copy kernel events into rows with 32-bit loads and stores (no native call, no object per row) and shift
 * their times in the same pass.
 */
import type { SplitOffset } from './clock.ts';

// The row view lives with the other row views; ringbuf.ts still takes it from here.
export { RowWords } from '../codec/row-words.ts';

/** Where drained rows go: `RecordBatchBuilder`, or a wrapper that cuts batches at a size. */
export interface RowSink {
  /** Reserves one zeroed row and returns its byte offset in `bytes`. */
  appendRow(): number;
  /** The buffer rows are written to; re-read after `appendRow()`, which may replace it. */
  readonly bytes: Buffer;
}

/** Adds `offset` to the little-endian u64 held in `words[i]` (low) and `words[i + 1]` (high). */
export function addOffsetWords(words: Uint32Array, i: number, offset: SplitOffset): void {
  const lo = words[i] + offset.lo;
  words[i] = lo; // stores wrap modulo 2^32
  words[i + 1] = words[i + 1] + offset.hi + (lo > 0xffffffff ? 1 : 0);
}
