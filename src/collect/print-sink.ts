/**
 * `--to json` and `--to table`: flows printed on stdout, as `flowtap collect` always did. A batch
 * is stored once written; the write waits for stdout to drain, so a slow reader slows the sources
 * instead of growing memory.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { RecordBatch } from '../codec/record-batch.ts';
import { batchToJsonLines, LINES_PER_WRITE } from '../export/json-lines.ts';
import { type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import type { SinkMetrics } from './collect-metrics.ts';
import type { Accepted, CollectorSink } from './collector-sink.ts';

/** How a print sink writes a batch: JSON lines in the reference's form, or a table. */
export type PrintFormat = 'json' | 'table';

const STORED: Accepted = { stored: Promise.resolve() };

/** Prints flows on a stream. */
export class PrintSink implements CollectorSink {
  constructor(
    private readonly out: Writable,
    readonly name: PrintFormat,
    private readonly metrics: SinkMetrics,
    /** Renders a batch as a table (passed in: tables are the agent layer's). */
    private readonly formatTable: (batch: RecordBatch) => string,
    /** Names of drop reasons for JSON lines, asked for at the first batch printed. */
    private readonly dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS,
  ) {}

  async accept(batch: RecordBatch): Promise<Accepted> {
    const t0 = performance.now();
    if (this.name === 'table') {
      if (batch.count > 0 && !this.out.write(this.formatTable(batch))) await once(this.out, 'drain');
    } else {
      const names = this.dropReasons();
      for (let start = 0; start < batch.count; start += LINES_PER_WRITE) {
        const text = batchToJsonLines(batch, start, Math.min(batch.count, start + LINES_PER_WRITE), names);
        if (!this.out.write(text)) await once(this.out, 'drain');
      }
    }
    this.metrics.recordInsert(batch.count, (performance.now() - t0) / 1000);
    return STORED;
  }

  async close(): Promise<void> {}
}
