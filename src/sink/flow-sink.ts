/**
 * The contract of a consumer of evicted flow batches: what the agent's pipeline and `flowtap read`
 * feed. Exporters (src/export/) and the web view (src/web/) implement it as peers; neither knows
 * the other. A sink takes batches without blocking, bounds what it holds, counts what it drops,
 * and stops by flushing.
 */
import type { RecordBatch } from '../codec/record-batch.ts';

/** Why a sink dropped a batch without trying to deliver it. */
export type SinkDropReason = 'queue-full' | 'stopped';

/** Counters every sink keeps; exposed as metrics. */
export interface SinkStats {
  batchesSent: number;
  batchesFailed: number;
  flowsSent: number;
  flowsFailed: number;
  /** Flows dropped without a send attempt, by reason. */
  flowsDropped: Record<SinkDropReason, number>;
  /** Batches waiting in the queue now. */
  queuedBatches: number;
}

/** What the agent's pipeline needs from a consumer of evicted batches. */
export interface FlowSink {
  /** Short name used in metrics and logs. */
  readonly name: string;
  /** Counters since start. */
  readonly stats: Readonly<SinkStats>;
  /** Takes a batch; never blocks. Returns false when the batch was dropped. */
  export(batch: RecordBatch): boolean;
  /**
   * Resolves when `export` would accept another batch. The agent's pipeline and a capture file's
   * read wait here before handing out a batch, so a full queue pauses the source (live: flows
   * wait in the kernel map) instead of dropping. Sinks without a queue may leave it out.
   */
  whenReady?(): Promise<void>;
  /**
   * Resolves when the sink holds no batch: every batch given to `export` has been sent, failed
   * or been dropped, so nothing of it is read any more.
   */
  whenIdle?(): Promise<void>;
  /**
   * Resolves when the sink no longer reads `batch` (given to `export`): it has been sent, failed
   * or been dropped. A capture file's read gives an evicted batch's buffer back for reuse once
   * every sink is done with it; a sink without it keeps the batches it is given, and a read into
   * it allocates each eviction's rows anew.
   */
  whenDone?(batch: RecordBatch): Promise<void>;
  /**
   * Sends what is queued (waiting at most `timeoutMs`), drops and counts the rest, releases
   * resources. Idempotent: calls while a stop runs share its promise.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/** Default time `stop()` waits for queued batches. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/** Zeroed counters for a new sink. */
export function emptySinkStats(): SinkStats {
  return {
    batchesSent: 0,
    batchesFailed: 0,
    flowsSent: 0,
    flowsFailed: 0,
    flowsDropped: { 'queue-full': 0, stopped: 0 },
    queuedBatches: 0,
  };
}
