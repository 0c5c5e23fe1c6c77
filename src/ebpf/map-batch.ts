/**
 * Emptying a kernel hash map in batches (BPF_MAP_LOOKUP_AND_DELETE_BATCH): the one loop the flow
 * map drain and the health map drain share. Keys and values land in buffers reused from drain to
 * drain; a bucket larger than a batch grows them (ENOSPC), an empty map ends the loop (ENOENT).
 */
import { constants } from 'node:os';
import { kernelError } from './kernel-error.ts';
import { batchOpts, libbpf } from './libbpf.ts';

/** Entries per batch at most, and the value bytes a batch may take: a drain's working set. */
const MAX_BATCH_ENTRIES = 4096;
const MAX_BATCH_VALUE_BYTES = 4 << 20;
const MIN_BATCH_ENTRIES = 64;

/** Reusable buffers for one map's batches; read `keys`/`values` (or their word views) in `each`. */
export class MapBatchReader {
  #entries: number;
  #keys!: Buffer;
  #values!: Buffer;
  #keyWords!: Uint32Array;
  #valueWords!: Int32Array;
  readonly #inBatch = Buffer.alloc(8);
  readonly #outBatch = Buffer.alloc(8);
  readonly #count = Buffer.alloc(4);
  readonly #opts = batchOpts();

  constructor(
    /** Bytes of one key. */
    readonly keyBytes: number,
    /** Bytes of one value as lookups return it (a per-CPU value: one slot per CPU). */
    readonly valueBytes: number,
  ) {
    this.#entries = Math.max(
      MIN_BATCH_ENTRIES,
      Math.min(MAX_BATCH_ENTRIES, Math.floor(MAX_BATCH_VALUE_BYTES / valueBytes)),
    );
    this.#allocate();
  }

  /** Keys of the latest batch, `keyBytes` apart, as words. */
  get keyWords(): Uint32Array {
    return this.#keyWords;
  }

  /** Values of the latest batch, `valueBytes` apart, as words. */
  get valueWords(): Int32Array {
    return this.#valueWords;
  }

  /**
   * Looks up and deletes every entry of map `fd`, calling `each(n)` after each batch of `n`
   * entries (in `keyWords`/`valueWords`). Returns the entries read. Throws the kernel's error,
   * naming `what` (e.g. `the flow map`), when a batch fails.
   */
  drain(fd: number, what: string, each: (n: number) => void): number {
    const lib = libbpf();
    let total = 0;
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
        // One hash bucket holds more entries than a batch: retry the same position with room for it.
        this.#entries *= 2;
        this.#allocate();
        continue;
      }
      if (result < 0 && -result !== constants.errno.ENOENT) throw kernelError(`draining ${what}`, result);
      const n = this.#count.readUInt32LE(0);
      if (n > 0) each(n);
      total += n;
      if (result < 0) return total; // ENOENT: the map is empty now
      this.#outBatch.copy(this.#inBatch);
      first = false;
    }
  }

  #allocate(): void {
    this.#keys = Buffer.alloc(this.#entries * this.keyBytes);
    this.#values = Buffer.alloc(this.#entries * this.valueBytes);
    this.#keyWords = new Uint32Array(this.#keys.buffer, this.#keys.byteOffset, this.#keys.length / 4);
    this.#valueWords = new Int32Array(this.#values.buffer, this.#values.byteOffset, this.#values.length / 4);
  }
}
