/**
 * The bytes of one capture input (a file, or `-` for standard input) as chunks for a
 * CaptureDecoder, decompressed on the way when the input starts with the gzip or the zstd magic
 * (whatever its name: `.pcap.gz`, `.pcapng.zst`, or a rotated file with no extension). A plain
 * file is read into two reused buffers in turn, so reading allocates nothing per chunk; each
 * chunk is valid until the next is asked for. gzip goes through Node's zlib; zstd through fzstd
 * (pure JavaScript: Node 20's zlib has no zstd, and the native zstd packages need install
 * scripts), which decompresses 66–167 MB/s here, slower than the rest of a read.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { InputError } from '../../errors.ts';

/**
 * Bytes a plain file is read in, and the chunk size asked of gunzip: 256 KiB, so a chunk's events
 * (about 3 000 packets of a snapped capture, 550 KiB) and the two chunk buffers stay small in a
 * read's peak memory (measured: 5 MB less than 1 MiB chunks, no slower).
 */
export const READ_CHUNK_BYTES = 1 << 18;
const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;

/** How an input's bytes are stored. */
export type InputCompression = 'none' | 'gzip' | 'zstd';

/** The compression `head` (the first bytes of an input) starts with. */
export function compressionOf(head: Uint8Array): InputCompression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip';
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

const NO_BYTES = new Uint8Array(0);

/** One input being read; `bytesRead` counts its stored (compressed) bytes. */
export class CaptureInputStream {
  /** Stored bytes read so far (before gunzip). */
  bytesRead = 0;

  /** `path` is a file name, or `-` for standard input. */
  constructor(readonly path: string) {}

  /** The input's decompressed bytes, chunk by chunk. */
  async *chunks(): AsyncGenerator<Buffer> {
    if (this.path === '-') {
      yield* this.#stdin();
      return;
    }
    const handle = await open(this.path, 'r');
    try {
      const head = Buffer.alloc(ZSTD_MAGIC.length);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      const compression = compressionOf(head.subarray(0, bytesRead));
      if (compression !== 'none') {
        const file = createReadStream(this.path, {
          fd: handle,
          autoClose: false,
          start: 0,
          highWaterMark: READ_CHUNK_BYTES,
        });
        // Leaving either loop early destroys the stream; the handle is closed below.
        if (compression === 'gzip') yield* this.#gunzip(file, () => file.bytesRead);
        else yield* this.#unzstd(file, () => file.bytesRead);
        return;
      }
      yield* this.#plain(handle);
    } finally {
      await handle.close();
    }
  }

  /**
   * A plain file through two buffers in turn: the next chunk is read (on libuv's thread pool)
   * while the consumer decodes the one it was given, so decoding does not wait for the disk
   * (measured: a tenth of a read's time was spent idle waiting for each chunk). A buffer is
   * read into again only after its chunk's consumer has asked for the next one.
   */
  async *#plain(handle: FileHandle): AsyncGenerator<Buffer> {
    const buffers = [Buffer.allocUnsafe(READ_CHUNK_BYTES), Buffer.allocUnsafe(READ_CHUNK_BYTES)];
    // One read in flight at a time, each from where the last ended.
    let pending = handle.read(buffers[0], 0, READ_CHUNK_BYTES, null);
    try {
      for (let turn = 0; ; turn ^= 1) {
        const { bytesRead } = await pending;
        if (bytesRead === 0) return;
        this.bytesRead += bytesRead;
        pending = handle.read(buffers[turn ^ 1], 0, READ_CHUNK_BYTES, null);
        yield bytesRead === READ_CHUNK_BYTES ? buffers[turn] : buffers[turn].subarray(0, bytesRead);
      }
    } finally {
      // A consumer that stops early (or fails) leaves a read in flight: it ends before the handle closes.
      await pending.catch(() => undefined);
    }
  }

  async *#gunzip(stored: Readable, storedBytes: () => number): AsyncGenerator<Buffer> {
    const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES });
    stored.on('error', (err) => gunzip.destroy(err));
    stored.pipe(gunzip);
    try {
      for await (const chunk of gunzip) {
        this.bytesRead = storedBytes();
        yield chunk as Buffer;
      }
    } catch (err) {
      throw new InputError(`cannot gunzip ${this.#name}: ${(err as Error).message}`, { cause: err });
    } finally {
      stored.unpipe(gunzip);
      stored.destroy();
    }
  }

  /**
   * The zstd frames of `stored` decompressed, block by block (at most 128 KiB each, each a buffer
   * of its own). Damaged or cut data is an InputError naming the input.
   */
  async *#unzstd(stored: AsyncIterable<Buffer>, storedBytes: () => number): AsyncGenerator<Buffer> {
    const blocks: Uint8Array[] = [];
    const zstd = new Decompress((block) => {
      if (block.length > 0) blocks.push(block);
    });
    const push = (chunk: Uint8Array, final: boolean) => {
      try {
        zstd.push(chunk, final);
      } catch (err) {
        throw new InputError(`cannot decompress ${this.#name} (zstd): ${(err as Error).message}`, {
          cause: err,
        });
      }
    };
    for await (const chunk of stored) {
      push(chunk, false);
      this.bytesRead = storedBytes();
      for (const block of blocks.splice(0)) yield Buffer.from(block.buffer, block.byteOffset, block.length);
    }
    push(NO_BYTES, true);
    for (const block of blocks.splice(0)) yield Buffer.from(block.buffer, block.byteOffset, block.length);
  }

  async *#stdin(): AsyncGenerator<Buffer> {
    const iterator = process.stdin[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) return;
    const head = toBuffer(first.value);
    const compression = compressionOf(head);
    const rest = async function* (): AsyncGenerator<Buffer> {
      yield head;
      for (let next = await iterator.next(); !next.done; next = await iterator.next())
        yield toBuffer(next.value);
    };
    if (compression !== 'none') {
      let stored = 0;
      const counted = Readable.from(
        (async function* () {
          for await (const chunk of rest()) {
            stored += chunk.length;
            yield chunk;
          }
        })(),
      );
      if (compression === 'gzip') yield* this.#gunzip(counted, () => stored);
      else yield* this.#unzstd(counted, () => stored);
      return;
    }
    for await (const chunk of rest()) {
      this.bytesRead += chunk.length;
      yield chunk;
    }
  }

  get #name(): string {
    return this.path === '-' ? 'standard input' : this.path;
  }
}

function toBuffer(chunk: Buffer | string): Buffer {
  return typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
}
