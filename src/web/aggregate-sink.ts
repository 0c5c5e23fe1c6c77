/**
 * The web view's side of the pipeline: takes every evicted batch into the view's FlowAggregate at
 * once (synchronous and bounded, so nothing queues) and counts what it took as a flow sink does,
 * for the health panel and /metrics. The WebView is the FlowSink the pipeline sees; it passes
 * batches here and closes this when it closes.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { emptySinkStats, type FlowSink, type SinkStats } from '../sink/flow-sink.ts';
import type { FlowAggregate } from './aggregate.ts';

/** Feeds batches into a FlowAggregate; see the module comment. */
export class AggregateSink implements Pick<FlowSink, 'name' | 'stats' | 'export'> {
  readonly name = 'web';
  readonly stats: SinkStats = emptySinkStats();
  #closed = false;

  constructor(readonly aggregate: FlowAggregate) {}

  /** Aggregates `batch` at once; false (and counted as `stopped`) once closed. */
  export(batch: RecordBatch): boolean {
    if (this.#closed) {
      this.stats.flowsDropped.stopped += batch.count;
      return false;
    }
    this.aggregate.add(batch);
    this.stats.batchesSent++;
    this.stats.flowsSent += batch.count;
    return true;
  }

  /** Refuses every later batch (counted); there is nothing queued to flush. */
  close(): void {
    this.#closed = true;
  }
}
