/**
 * The one interface every exporter implements, and the bounded queue they share. An exporter
 * takes evicted flow batches, sends them in order, reports each batch's outcome, drops (and
 * counts) batches beyond its queue bound instead of growing without limit, and stops by flushing.
 */
import type { RecordBatch } from '../codec/record-batch.ts';

/** Outcome of one batch, reported to `onResult` listeners (metrics, logs, the web view). */
export interface BatchResult {
  /** Exporter name, e.g. `grpc`, `ipfix+udp`. */
  exporter: string;
  /** Flows in the batch. */
  flows: number;
  /** True when the batch was delivered (as far as the transport can tell). */
  ok: boolean;
  /** Why delivery failed or the batch was dropped. */
  error?: Error;
  /** `queue-full` or `stopped` when the batch was dropped without a send attempt. */
  dropReason?: 'queue-full' | 'stopped';
}

/** Counters every exporter keeps; exposed as metrics. */
export interface ExporterStats {
  batchesSent: number;
  batchesFailed: number;
  flowsSent: number;
  flowsFailed: number;
  /** Flows dropped without a send attempt, by reason. */
  flowsDropped: { 'queue-full': number; stopped: number };
  /** Batches waiting in the queue now. */
  queuedBatches: number;
}

/** What the agent's pipeline needs from an exporter. */
export interface FlowExporter {
  /** Short name used in metrics and logs. */
  readonly name: string;
  /** Counters since start. */
  readonly stats: Readonly<ExporterStats>;
  /** Queues a batch for sending; never blocks. Returns false when the batch was dropped. */
  export(batch: RecordBatch): boolean;
  /**
   * Resolves when `export` would accept another batch. The agent's pipeline and a capture file's
   * read wait here before handing out a batch, so a full queue pauses the source (live: flows
   * wait in the kernel map) instead of dropping. Exporters without a queue may leave it out.
   */
  whenReady?(): Promise<void>;
  /** Sends what is queued (waiting at most `timeoutMs`), drops and counts the rest, releases resources. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Options shared by queued exporters. */
export interface QueuedExporterOptions {
  /** Batches that may wait to be sent; beyond it new batches are dropped and counted. */
  maxQueuedBatches?: number;
  /** Called after every batch outcome. */
  onResult?: (result: BatchResult) => void;
}

/** Default bound on waiting batches. */
export const DEFAULT_MAX_QUEUED_BATCHES = 100;
/** Default time `stop()` waits for queued batches. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;

/**
 * Base for exporters that send one batch at a time: subclasses implement `send` (throwing on
 * failure) and optionally `close`. Batches are sent in arrival order by a single loop.
 */
export abstract class QueuedExporter implements FlowExporter {
  abstract readonly name: string;
  readonly stats: ExporterStats = {
    batchesSent: 0,
    batchesFailed: 0,
    flowsSent: 0,
    flowsFailed: 0,
    flowsDropped: { 'queue-full': 0, stopped: 0 },
    queuedBatches: 0,
  };
  readonly #queue: RecordBatch[] = [];
  readonly #maxQueued: number;
  readonly #onResult?: (result: BatchResult) => void;
  #draining?: Promise<void>;
  readonly #readyWaiters: Array<() => void> = [];
  #stopping = false;
  #stopped = false;

  protected constructor(options: QueuedExporterOptions = {}) {
    this.#maxQueued = options.maxQueuedBatches ?? DEFAULT_MAX_QUEUED_BATCHES;
    this.#onResult = options.onResult;
  }

  /** Delivers one batch; throws when it was not delivered. */
  protected abstract send(batch: RecordBatch): Promise<void>;

  /** Releases the transport after the queue is done. */
  protected async close(): Promise<void> {}

  /** Called when `stop()` gives up waiting, so a send blocked on the network can be abandoned. */
  protected abort(): void {}

  export(batch: RecordBatch): boolean {
    if (batch.count === 0) return true;
    if (this.#stopping) {
      this.#drop(batch, 'stopped');
      return false;
    }
    if (this.#queue.length >= this.#maxQueued) {
      this.#drop(batch, 'queue-full');
      return false;
    }
    this.#queue.push(batch);
    this.stats.queuedBatches = this.#queue.length;
    this.#draining ??= this.#drain();
    return true;
  }

  whenReady(): Promise<void> {
    if (this.#queue.length < this.#maxQueued || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    if (this.#stopped) return;
    this.#stopping = true;
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
    if (this.#draining) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([this.#draining.then(() => 'done' as const), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        // The head batch is in flight: abort() makes its send fail, and #drain counts it as
        // failed; dropping it here as well would count it twice.
        for (const batch of this.#queue.splice(1)) this.#drop(batch, 'stopped');
        this.stats.queuedBatches = this.#queue.length;
        this.abort();
      }
    }
    this.#stopped = true;
    await this.close();
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue[0];
      try {
        await this.send(batch);
        this.stats.batchesSent++;
        this.stats.flowsSent += batch.count;
        this.#onResult?.({ exporter: this.name, flows: batch.count, ok: true });
      } catch (err) {
        this.stats.batchesFailed++;
        this.stats.flowsFailed += batch.count;
        this.#onResult?.({ exporter: this.name, flows: batch.count, ok: false, error: asError(err) });
      }
      if (this.#queue[0] === batch) this.#queue.shift();
      this.stats.queuedBatches = this.#queue.length;
      for (const resolve of this.#readyWaiters.splice(0)) resolve();
    }
    this.#draining = undefined;
  }

  #drop(batch: RecordBatch, reason: 'queue-full' | 'stopped'): void {
    this.stats.flowsDropped[reason] += batch.count;
    this.#onResult?.({ exporter: this.name, flows: batch.count, ok: false, dropReason: reason });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
