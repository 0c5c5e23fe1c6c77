/**
 * The one home of the rule by which batch buffers are written, lent and reused, for both kinds of
 * batch: v2 rows (RecordBatch, record-batch.ts) and flow events (EventBatch, event-batch.ts).
 * Parsers write fields straight into `bytes` at the offset `appendRow()` returns, so no object is
 * made per record.
 *
 * Ownership: `finish()` lends its buffer to the batch it returns and starts over with another.
 * A consumer that is done with a batch may give the buffer back with `recycle(batch)`; the next
 * `finish()` then starts over with that buffer (zeroed) instead of a fresh one, so a stream of
 * batches reuses two buffers instead of allocating one per batch. A buffer is only ever reused
 * after `recycle()`: a batch never recycled keeps its buffer, and recycling a batch twice, or
 * one this builder did not make, gives nothing back.
 */

/** What every batch a {@link BatchBuilder} finishes has: its buffer and the records in use. */
export interface BatchBytes {
  /** The records, one after another; may be longer than `count` records. */
  readonly bytes: Buffer;
  /** Number of records in use. */
  readonly count: number;
}

/** Appends fixed-size, zeroed records and hands them out as batches of type `B`; see the module comment. */
export abstract class BatchBuilder<B extends BatchBytes> {
  #bytes: Buffer;
  #count = 0;
  /**
   * Finished batches whose buffers are not yet recycled (weakly: a batch may be kept forever). By
   * batch, not by buffer: a stale batch whose buffer now serves a later one is not on loan.
   */
  readonly #lent = new WeakSet<B>();
  /** A recycled, zeroed buffer the next `finish()` starts over with. */
  #spare: Buffer | undefined;

  protected constructor(
    /** Size of one record. */
    readonly recordBytes: number,
    private readonly initialRecords: number,
  ) {
    this.#bytes = Buffer.alloc(Math.max(initialRecords, 1) * recordBytes);
  }

  /** The batch that holds `count` records of `bytes`. */
  protected abstract batchOf(bytes: Buffer, count: number): B;

  /** The buffer records are written to; re-read it after `appendRow()`, which may replace it. */
  get bytes(): Buffer {
    return this.#bytes;
  }

  /** Records appended since the last `finish()`. */
  get count(): number {
    return this.#count;
  }

  /** Reserves one zeroed record and returns its byte offset in `bytes`. */
  appendRow(): number {
    const offset = this.#count * this.recordBytes;
    if (offset + this.recordBytes > this.#bytes.length) {
      const grown = Buffer.alloc(this.#bytes.length * 2);
      this.#bytes.copy(grown, 0, 0, offset);
      this.#bytes = grown;
    }
    this.#count++;
    return offset;
  }

  /** Drops the record `appendRow()` reserved last (a parser that found the packet unusable). */
  dropLastRow(): void {
    if (this.#count === 0) return;
    this.#count--;
    const offset = this.#count * this.recordBytes;
    this.#bytes.fill(0, offset, offset + this.recordBytes);
  }

  /**
   * The records appended so far as a batch, which owns the buffer until it is recycled; the
   * builder starts over with the recycled spare buffer, or a fresh one.
   */
  finish(): B {
    const batch = this.batchOf(this.#bytes, this.#count);
    this.#lent.add(batch);
    this.#bytes = this.#spare ?? Buffer.alloc(Math.max(this.initialRecords, 1) * this.recordBytes);
    this.#spare = undefined;
    this.#count = 0;
    return batch;
  }

  /**
   * Takes back the buffer of `batch`, a batch this builder finished, for a later `finish()`: the
   * caller promises that nothing reads `batch` any more. Returns false, changing nothing, when
   * `batch` is not on loan from this builder (recycled already, or another builder's) or a spare
   * is already kept.
   */
  recycle(batch: B): boolean {
    if (!this.#lent.has(batch) || this.#spare !== undefined) return false;
    this.#lent.delete(batch);
    const bytes = batch.bytes;
    // Records past `count` are zero already: dropLastRow() zeroes what it drops.
    bytes.fill(0, 0, batch.count * this.recordBytes);
    this.#spare = bytes;
    return true;
  }
}
