/**
 * Cuts a byte stream (file, pipe) into whole records of a fixed-size layout, carrying the part of
 * a record split across chunks to the next one, and tracking the stream offset for errors.
 */
import { TruncatedRecordError } from '../errors.ts';
import type { RecordBatch } from './record-batch.ts';

/** A fixed-size binary layout and its batch decoder. */
export interface RecordLayout {
  /** Name used in errors, e.g. `v1`. */
  name: string;
  /** Size of one record. */
  recordBytes: number;
  /** Decodes whole records; `baseOffset` is the stream offset of `buf[0]`. */
  decodeBatch(buf: Buffer, baseOffset: number): RecordBatch;
}

/** Turns a stream of chunks into record batches, one batch per chunk. */
export class RecordStreamDecoder {
  #carry: Buffer = Buffer.alloc(0);
  #offset = 0;

  constructor(private readonly layout: RecordLayout) {}

  /** Stream offset of the first byte not yet decoded. */
  get offset(): number {
    return this.#offset;
  }

  /** Decodes the whole records now available; undefined when none is complete yet. */
  push(chunk: Buffer): RecordBatch | undefined {
    const data = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    const whole = data.length - (data.length % this.layout.recordBytes);
    this.#carry = whole === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(whole));
    if (whole === 0) return undefined;
    const batch = this.layout.decodeBatch(data.subarray(0, whole), this.#offset);
    this.#offset += whole;
    return batch;
  }

  /** Ends the stream: throws `TruncatedRecordError` if a partial record remains. */
  end(): void {
    if (this.#carry.length !== 0) {
      throw new TruncatedRecordError(
        this.#offset,
        this.layout.recordBytes,
        this.#carry.length,
        this.layout.name,
      );
    }
  }
}
