/**
 * The bounded queue every exporter shares. An exporter is a flow sink (src/sink/flow-sink.ts) that
 * sends evicted batches in order, reports each batch's outcome, drops (and counts) batches beyond
 * its queue bound instead of growing without limit, and stops by flushing.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import {
  DEFAULT_STOP_TIMEOUT_MS,
  emptySinkStats,
  type FlowSink,
  type SinkDropReason,
  type SinkStats,
} from '../sink/flow-sink.ts';
import { unhandledRejections } from '../unhandled-rejections.ts';

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
  dropReason?: SinkDropReason;
}

/** Options shared by queued exporters. */
export interface QueuedExporterOptions {
  /** Batches that may wait to be sent; beyond it new batches are dropped and counted. */
  maxQueuedBatches?: number;
  /**
   * Called after every batch outcome. If it throws, the error is counted as unhandled (see
   * src/unhandled-rejections.ts) and delivery goes on.
   */
  onResult?: (result: BatchResult) => void;
}

/** Default bound on waiting batches. */
export const DEFAULT_MAX_QUEUED_BATCHES = 100;

/**
 * Base for exporters that send one batch at a time: subclasses implement `send` (throwing on
 * failure) and optionally `close`. Batches are sent in arrival order by a single loop that no
 * failure ends: a failing send counts its batch as failed, a failing listener is counted apart.
 */
export abstract class QueuedExporter implements FlowSink {
  abstract readonly name: string;
  readonly stats: SinkStats = emptySinkStats();
  readonly #queue: RecordBatch[] = [];
  readonly #maxQueued: number;
  readonly #onResult?: (result: BatchResult) => void;
  #draining?: Promise<void>;
  readonly #readyWaiters: Array<() => void> = [];
  readonly #idleWaiters: Array<() => void> = [];
  /** Who waits for a queued batch to be sent, failed or dropped (whenDone). */
  readonly #doneWaiters = new Map<RecordBatch, Array<() => void>>();
  /** The one stop in progress or done; later `stop()` calls return it. */
  #stopping: Promise<void> | undefined;

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

  whenIdle(): Promise<void> {
    if (this.#draining === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  whenDone(batch: RecordBatch): Promise<void> {
    // A batch not queued was sent, failed or dropped already (or never given).
    if (!this.#queue.includes(batch)) return Promise.resolve();
    return new Promise((resolve) => {
      const waiters = this.#doneWaiters.get(batch);
      if (waiters === undefined) this.#doneWaiters.set(batch, [resolve]);
      else waiters.push(resolve);
    });
  }

  /** Tells whoever waits for `batch` that the queue is done with it. */
  #settle(batch: RecordBatch): void {
    const waiters = this.#doneWaiters.get(batch);
    if (waiters === undefined) return;
    this.#doneWaiters.delete(batch);
    for (const resolve of waiters) resolve();
  }

  stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    this.#stopping ??= this.#stop(timeoutMs);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
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
        for (const batch of this.#queue.splice(1)) {
          this.#drop(batch, 'stopped');
          this.#settle(batch);
        }
        this.stats.queuedBatches = this.#queue.length;
        this.abort();
      }
    }
    await this.close();
  }

  /**
   * The single send loop. Nothing in it throws (a failing send becomes a failed result, a failing
   * listener is counted apart), so it always ends by clearing `#draining`. The outcome is reported
   * as soon as the send settles, before a waiting `stop()` resumes.
   */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue[0];
      let result: BatchResult;
      try {
        await this.send(batch);
        this.stats.batchesSent++;
        this.stats.flowsSent += batch.count;
        result = { exporter: this.name, flows: batch.count, ok: true };
      } catch (err) {
        this.stats.batchesFailed++;
        this.stats.flowsFailed += batch.count;
        result = { exporter: this.name, flows: batch.count, ok: false, error: asError(err) };
      }
      this.#report(result);
      if (this.#queue[0] === batch) this.#queue.shift();
      this.#settle(batch);
      this.stats.queuedBatches = this.#queue.length;
      for (const resolve of this.#readyWaiters.splice(0)) resolve();
    }
    this.#draining = undefined;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #drop(batch: RecordBatch, reason: SinkDropReason): void {
    this.stats.flowsDropped[reason] += batch.count;
    this.#report({ exporter: this.name, flows: batch.count, ok: false, dropReason: reason });
  }

  /** Tells the listener; its failure (a log write to a closed stderr, say) must not stop delivery. */
  #report(result: BatchResult): void {
    try {
      this.#onResult?.(result);
    } catch (err) {
      unhandledRejections.record(err);
    }
  }
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  try {
    return new Error(String(err));
  } catch {
    // A thrown object whose toString throws still makes a failed batch, not a dead loop.
    return new Error(`send threw a ${typeof err} that cannot be printed`);
  }
}
