/**
 * `json`: every flow as one line in the reference's JSON form (`flowToJson`), to stdout or a file,
 * encoded straight from the batch's rows (json-rows.ts). A batch is written in pieces of
 * LINES_PER_WRITE lines, each waiting for the stream to drain when its buffer is full, and counts
 * as sent once the stream has written all of it. So a slow reader (a pipe, a full disk) fills the
 * bounded queue, which holds the agent's pipeline back (the flows wait in the kernel map), and no
 * batch ever becomes one huge buffer.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { RecordBatch } from '../codec/record-batch.ts';
import { ExportError } from '../errors.ts';
import { type DropReasonNames, type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import { flowToJson } from '../model/flow.ts';
import { QueuedExporter, type QueuedExporterOptions } from './exporter.ts';
import { JsonRowEncoder } from './json-rows.ts';

/** Settings of a {@link JsonLinesExporter}. */
export interface JsonLinesExporterOptions extends QueuedExporterOptions {
  /** Where lines go, e.g. `process.stdout`. */
  out: Writable;
  /** End `out` when the exporter stops (true for files it opened, false for stdout). */
  endOnStop?: boolean;
  /** Names of the kernel's drop reasons (numbers when absent). */
  dropReasons?: DropReasonSource;
}

/** Lines per write: about 90 KiB of text, so a write's buffer is reused soon after. */
export const LINES_PER_WRITE = 256;

/** The JSON lines of flows `start` to `end` (default: all) of `batch`, each ending in a newline. */
export function batchToJsonLines(
  batch: RecordBatch,
  start = 0,
  end = batch.count,
  dropReasons: DropReasonNames = NUMERIC_DROP_REASONS,
): string {
  let text = '';
  for (let i = start; i < end; i++) text += `${flowToJson(batch.flow(i), batch.interfaces, dropReasons)}\n`;
  return text;
}

/** Writes flows as JSON lines to a stream, one write per batch, honouring backpressure. */
export class JsonLinesExporter extends QueuedExporter {
  readonly name = 'json';
  readonly #out: Writable;
  readonly #endOnStop: boolean;
  readonly #encoder: JsonRowEncoder;
  /** An error the stream reported between batches (e.g. a closed pipe); fails the next batch. */
  #streamError: Error | undefined;

  constructor(options: JsonLinesExporterOptions) {
    super(options);
    this.#out = options.out;
    this.#endOnStop = options.endOnStop ?? false;
    this.#encoder = new JsonRowEncoder(options.dropReasons);
    this.#out.on('error', (err) => {
      this.#streamError = err;
    });
  }

  protected async send(batch: RecordBatch): Promise<void> {
    this.#throwStreamError();
    // A write's callback comes once the stream has written it (or failed to): a batch counts as
    // sent only when its last piece was, and the stream's buffer holds about one piece.
    let written: Promise<void> = Promise.resolve();
    for (let start = 0; start < batch.count; start += LINES_PER_WRITE) {
      written = this.#write(
        this.#encoder.encode(batch, start, Math.min(batch.count, start + LINES_PER_WRITE)),
      );
      if (this.#out.writableNeedDrain) await written;
    }
    await written;
  }

  /** Writes `lines`; the promise settles with the write's callback, which gives them back to the encoder. */
  #write(lines: Buffer): Promise<void> {
    const written = new Promise<void>((resolve, reject) => {
      this.#out.write(lines, (err) => {
        this.#encoder.release(lines);
        if (!err) resolve();
        else reject(new ExportError(this.name, `writing failed: ${err.message}`, { cause: err }));
      });
    });
    // A failed piece not awaited fails the batch through the later pieces, which fail with it.
    written.catch(() => {});
    return written;
  }

  protected override async close(): Promise<void> {
    if (!this.#endOnStop || this.#out.destroyed) return;
    const finished = once(this.#out, 'close');
    this.#out.end();
    await finished;
  }

  protected override abort(): void {
    if (this.#endOnStop) this.#out.destroy();
  }

  #throwStreamError(): void {
    const err = this.#streamError;
    if (!err) return;
    this.#streamError = undefined;
    throw new ExportError(this.name, `writing failed: ${err.message}`, { cause: err });
  }
}

/**
 * A JSON lines exporter appending to the file at `path`, opened now so a bad path fails at start
 * (with an ExportError saying why) rather than on the first batch.
 */
export async function openJsonLinesFile(
  path: string,
  options: QueuedExporterOptions = {},
): Promise<JsonLinesExporter> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'a');
  } catch (err) {
    throw new ExportError('json', `cannot open ${path} for writing: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const out = handle.createWriteStream();
  return new JsonLinesExporter({ ...options, out, endOnStop: true });
}
