/**
 * `--to store[:PATH]`: flows into the embedded DuckDB flow store (src/store/flow-store.ts), the
 * one `flowtap query` reads by default. A batch is stored once committed, so a Kafka source
 * commits its offsets only after the flows are safe in the file.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import type { FlowStore } from '../store/flow-store.ts';
import type { SinkMetrics } from './collect-metrics.ts';
import type { Accepted, CollectorSink } from './collector-sink.ts';

/** Stores flows in a FlowStore it owns. */
export class DuckDbSink implements CollectorSink {
  readonly name = 'store';
  #closing: Promise<void> | undefined;

  constructor(
    private readonly store: FlowStore,
    private readonly metrics: SinkMetrics,
  ) {}

  async accept(batch: RecordBatch): Promise<Accepted> {
    const t0 = performance.now();
    // The store runs its operations one at a time, in call order: `stored` follows acceptance order.
    const stored = this.store
      .append(batch)
      .then(() => this.store.commit())
      .then(
        () => this.metrics.recordInsert(batch.count, (performance.now() - t0) / 1000),
        (err: unknown) => {
          this.metrics.failed(err);
          this.metrics.dropped += batch.count;
          throw err;
        },
      );
    stored.catch(() => undefined);
    return { stored };
  }

  close(): Promise<void> {
    this.#closing ??= this.store.close();
    return this.#closing;
  }
}
