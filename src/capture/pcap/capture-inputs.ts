/**
 * The inputs of one `flowtap read`: files, shell patterns flowtap expands itself
 * (`'cap-*.pcap.gz'`), or `-` for standard input; plain or gzipped (input-stream.ts). Several
 * files are one capture: read in the order of their first packet's time (rotated files of
 * `tcpdump -C/-G`, `dumpcap -b` in any order of names), through one decoder, so a flow that spans
 * files is one flow.
 */
import { stat } from 'node:fs/promises';
import type { EventBatch } from '../../codec/event-batch.ts';
import { V2 } from '../../codec/v2-layout.ts';
import { InputError } from '../../errors.ts';
import { CaptureDecoder } from './capture-decoder.ts';
import { expandGlob, hasWildcard } from './file-glob.ts';
import { CaptureInputStream } from './input-stream.ts';

/** Positional arguments of `read` split into inputs and what follows them. */
export interface ReadArguments {
  /** Files (patterns expanded), or `['-']`. */
  files: string[];
  /** The arguments from the first that is neither `-`, a file nor a pattern matching files. */
  rest: string[];
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

/**
 * Splits `args` into inputs and the rest: the first argument is always an input (opening it says
 * what is wrong with it), then leading arguments that are `-`, an existing file or a pattern
 * matching files are inputs; the first argument that is none of these ends them.
 */
export async function partitionReadArguments(args: readonly string[]): Promise<ReadArguments> {
  const files: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === '-' || (await isFile(arg))) {
      files.push(arg);
      continue;
    }
    const matches: string[] = [];
    if (hasWildcard(arg))
      for (const path of await expandGlob(arg)) if (await isFile(path)) matches.push(path);
    if (matches.length === 0) {
      if (i > 0) break;
      if (hasWildcard(arg)) {
        throw new InputError(`cannot read ${arg}: no such file, and no file matches it as a pattern`);
      }
      files.push(arg);
      continue;
    }
    files.push(...matches);
  }
  if (files.includes('-') && files.length > 1) {
    throw new InputError('- (standard input) is read alone: name files, or pipe one capture into -');
  }
  return { files, rest: args.slice(i) };
}

/** Unix nanoseconds of the first packet counted in `path`, or undefined when none is. */
async function firstPacketNs(path: string): Promise<bigint | undefined> {
  const decoder = new CaptureDecoder({ initialRows: 64 });
  try {
    for await (const chunk of new CaptureInputStream(path).chunks()) {
      const batch = decoder.push(chunk);
      if (batch !== undefined) return batch.bytes.readBigUInt64LE(V2.FIRST_SEEN_NS);
    }
  } catch {
    // A damaged or unreadable file sorts last; reading it for real reports the damage.
  }
  return undefined;
}

/** One capture made of several inputs; see the module comment. */
export class CaptureInputs {
  /** Stored bytes of the files read before the current one. */
  #doneBytes = 0;
  #current: CaptureInputStream | undefined;

  private constructor(
    /** The inputs in the order they are read. */
    readonly paths: readonly string[],
    /** Stored bytes of all inputs; undefined for standard input. */
    readonly totalBytes: number | undefined,
  ) {}

  /** The inputs `files` (from {@link partitionReadArguments}) in time order, with their sizes. */
  static async open(files: readonly string[]): Promise<CaptureInputs> {
    if (files.length === 1 && files[0] === '-') return new CaptureInputs(files, undefined);
    let total = 0;
    for (const path of files) total += (await stat(path)).size;
    if (files.length === 1) return new CaptureInputs(files, total);
    // One at a time: a rotated capture may be thousands of files.
    const starts: (bigint | undefined)[] = [];
    for (const path of files) starts.push(await firstPacketNs(path));
    const order = files.map((path, i) => ({ path, start: starts[i], i }));
    order.sort((a, b) => {
      if (a.start === undefined || b.start === undefined) {
        return a.start === b.start ? a.i - b.i : a.start === undefined ? 1 : -1;
      }
      return a.start < b.start ? -1 : a.start > b.start ? 1 : a.i - b.i;
    });
    return new CaptureInputs(
      order.map((o) => o.path),
      total,
    );
  }

  /** The input being read ('' before the first). */
  get currentPath(): string {
    return this.#current?.path ?? '';
  }

  /** Stored bytes read so far, over all inputs. */
  get bytesRead(): number {
    return this.#doneBytes + (this.#current?.bytesRead ?? 0);
  }

  /**
   * Rows of every input in turn, decoded by `decoder` as one capture. Each batch is valid until
   * the next is asked for: its buffer is then recycled for a later batch, so a read of any length
   * reuses two batch buffers.
   */
  async *batches(decoder: CaptureDecoder): AsyncGenerator<EventBatch> {
    for (const [i, path] of this.paths.entries()) {
      if (i > 0) decoder.nextInput();
      const input = new CaptureInputStream(path);
      this.#current = input;
      for await (const chunk of input.chunks()) {
        const batch = decoder.push(chunk);
        if (batch === undefined) continue;
        yield batch;
        decoder.recycle(batch);
      }
      decoder.end();
      this.#doneBytes += input.bytesRead;
      this.#current = undefined;
    }
    const last = decoder.endCapture();
    if (last !== undefined) yield last;
  }
}
