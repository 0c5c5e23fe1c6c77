/**
 * Cuts a byte stream (file, pipe) into whole records of a fixed-size layout, carrying the part of
 * a record split across chunks to the next one, and tracking the stream offset for errors.
 */
import { type MalformedRecordError, TruncatedRecordError } from '../errors.ts';
import type { RecordBatch } from './record-batch.ts';

/** Records decoded from a buffer up to the first malformed one. */
export interface DecodedRecords {
  /** The good records before the first malformed one: all of them when none is malformed. */
  readonly batch: RecordBatch;
  /** What is wrong with the first malformed record; undefined when every record is good. */
  readonly error: MalformedRecordError | undefined;
}

/** A fixed-size binary layout and its batch decoder. */
export interface RecordLayout {
  /** Name used in errors, e.g. `v1`. */
  name: string;
  /** Size of one record. */
  recordBytes: number;
  /** Decodes whole records up to the first malformed one; `baseOffset` is the stream offset of `buf[0]`. */
  decodeRecords(buf: Buffer, baseOffset: number): DecodedRecords;
}

/**
 * Turns a stream of chunks into record batches, one batch per chunk. A malformed record ends the
 * stream without losing what came before it: `push` returns the good records before it, then
 * `failure` holds its error and the next `push` or `end` throws it.
 */
export class RecordStreamDecoder {
  #carry: Buffer = Buffer.alloc(0);
  #offset = 0;
  #failure: MalformedRecordError | undefined;

  constructor(private readonly layout: RecordLayout) {}

  /** Stream offset of the first byte not yet decoded. */
  get offset(): number {
    return this.#offset;
  }

  /** The first malformed record's error, once one was met: the stream ends there. */
  get failure(): MalformedRecordError | undefined {
    return this.#failure;
  }

  /** Decodes the whole records now available; undefined when none is complete yet. */
  push(chunk: Buffer): RecordBatch | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    const data = this.#carry.length === 0 ? chunk : Buffer.concat([this.#carry, chunk]);
    const whole = data.length - (data.length % this.layout.recordBytes);
    this.#carry = whole === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(whole));
    if (whole === 0) return undefined;
    const { batch, error } = this.layout.decodeRecords(data.subarray(0, whole), this.#offset);
    this.#offset += whole;
    this.#failure = error;
    return batch.count > 0 ? batch : undefined;
  }

  /** Ends the stream: throws the malformed record's error, or `TruncatedRecordError` if a partial record remains. */
  end(): void {
    if (this.#failure !== undefined) throw this.#failure;
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
