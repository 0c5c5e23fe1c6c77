/**
 * What the collector's sources feed: sinks that queue a batch (waiting while their queue is full,
 * which pauses the source) and tell when it is stored, so a source that can replay (Kafka) commits
 * only what every sink stored.
 */
import type { RecordBatch } from '../codec/record-batch.ts';

/** A batch accepted by a sink: `stored` settles once it is stored, or given up on (rejects). */
export interface Accepted {
  readonly stored: Promise<void>;
}

/** One destination of collected flows. */
export interface CollectorSink {
  /** Its name in metrics and logs (json, table, store, clickhouse). */
  readonly name: string;
  /** Queues `batch`; resolves once there was room (never drops it for lack of room). */
  accept(batch: RecordBatch): Promise<Accepted>;
  /** Stores what is queued (for at most `timeoutMs`, then gives up on the rest), then releases everything. Idempotent. */
  close(timeoutMs: number): Promise<void>;
}

/** Every sink of a collector behind one `accept`. */
export class SinkFanOut {
  constructor(readonly sinks: readonly CollectorSink[]) {}

  /** Queues `batch` in every sink; `stored` settles once every sink stored it. */
  async accept(batch: RecordBatch): Promise<Accepted> {
    const accepted = await Promise.all(this.sinks.map((sink) => sink.accept(batch)));
    const stored = Promise.all(accepted.map((a) => a.stored)).then(() => undefined);
    return { stored };
  }

  /** Closes every sink. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(this.sinks.map((sink) => sink.close(timeoutMs)));
  }
}
