/**
 * `json`: every flow as one line in the reference's JSON form (`flowToJson`), to stdout or a file.
 * A batch becomes one string and one write, and the next batch waits until the stream has written
 * it, so a slow reader (a pipe, a full disk) fills the bounded queue and costs counted drops, not
 * memory.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { RecordBatch } from '../codec/record-batch.ts';
import { ExportError } from '../errors.ts';
import { flowToJson } from '../model/flow.ts';
import { QueuedExporter, type QueuedExporterOptions } from './exporter.ts';

/** Settings of a {@link JsonLinesExporter}. */
export interface JsonLinesExporterOptions extends QueuedExporterOptions {
  /** Where lines go, e.g. `process.stdout`. */
  out: Writable;
  /** End `out` when the exporter stops (true for files it opened, false for stdout). */
  endOnStop?: boolean;
}

/** The JSON lines of every flow in `batch`, each ending in a newline. */
export function batchToJsonLines(batch: RecordBatch): string {
  let text = '';
  for (let i = 0; i < batch.count; i++) text += `${flowToJson(batch.flow(i))}\n`;
  return text;
}

/** Writes flows as JSON lines to a stream, one write per batch, honouring backpressure. */
export class JsonLinesExporter extends QueuedExporter {
  readonly name = 'json';
  readonly #out: Writable;
  readonly #endOnStop: boolean;
  /** An error the stream reported between batches (e.g. a closed pipe); fails the next batch. */
  #streamError: Error | undefined;

  constructor(options: JsonLinesExporterOptions) {
    super(options);
    this.#out = options.out;
    this.#endOnStop = options.endOnStop ?? false;
    this.#out.on('error', (err) => {
      this.#streamError = err;
    });
  }

  protected async send(batch: RecordBatch): Promise<void> {
    this.#throwStreamError();
    // The callback comes once the stream has written the batch (or failed to): a batch counts as
    // sent only when it was, and at most one batch sits in the stream's buffer.
    await new Promise<void>((resolve, reject) => {
      this.#out.write(batchToJsonLines(batch), (err) => {
        if (!err) resolve();
        else reject(new ExportError(this.name, `writing failed: ${err.message}`, { cause: err }));
      });
    });
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
