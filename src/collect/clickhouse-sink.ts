/**
 * Flows into ClickHouse: batches are gathered into one RowBinary insert until it holds
 * `maxInsertRows` flows or the oldest has waited `maxInsertDelayMs` (ClickHouse wants few large
 * inserts: each one becomes a part to merge). Up to `maxConcurrentInserts` inserts run at once
 * (two by default: while ClickHouse writes one part, it parses the next, which on a loaded
 * machine nearly doubles what it takes in), but their `stored` promises settle in the order the
 * flows were accepted, so a source's commits never run ahead of a flow not yet stored. A failed insert is retried
 * with exponential backoff and jitter, without limit while the collector runs: flows are never
 * dropped for a down server; instead the bounded queue fills (`maxQueuedRows`) and `accept` waits,
 * which pauses the source (the Kafka consumer stops fetching, gRPC replies wait). At close, what is
 * queued gets until the close timeout, then is given up on and counted as dropped.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { ClosedError, StoreError } from '../errors.ts';
import { type BackoffOptions, ReconnectBackoff, waitUnref } from '../export/reconnect-backoff.ts';
import { RowBinaryWriter } from '../store/clickhouse-rows.ts';
import type { ClickHouseStore } from '../store/clickhouse-store.ts';
import type { SinkMetrics } from './collect-metrics.ts';
import type { Accepted, CollectorSink } from './collector-sink.ts';
import { deferred } from './deferred.ts';

/** Flows per insert at most, by default. */
export const DEFAULT_MAX_INSERT_ROWS = 100_000;
/** Longest a flow waits for its insert to fill, by default. */
export const DEFAULT_MAX_INSERT_DELAY_MS = 200;
/** Flows queued (gathered and being inserted) at most, by default; beyond, sources wait. */
export const DEFAULT_MAX_QUEUED_ROWS = 1_000_000;
/** Inserts in flight at once, by default. */
export const DEFAULT_MAX_CONCURRENT_INSERTS = 2;

/** Settings of a {@link ClickHouseSink}. */
export interface ClickHouseSinkOptions {
  maxInsertRows?: number;
  maxInsertDelayMs?: number;
  maxQueuedRows?: number;
  maxConcurrentInserts?: number;
  /** Backoff between failed inserts. */
  backoff?: BackoffOptions;
}

/** The ClickHouse sink of `flowtap collect --to clickhouse://...`. */
export class ClickHouseSink implements CollectorSink {
  readonly name = 'clickhouse';
  readonly #writer = new RowBinaryWriter();
  readonly #maxInsertRows: number;
  readonly #maxInsertDelayMs: number;
  readonly #maxQueuedRows: number;
  readonly #maxConcurrentInserts: number;
  readonly #backoff: ReconnectBackoff;
  /** Aborted at close's deadline: retries stop, queued flows are given up on. */
  readonly #giveUp = new AbortController();
  /** Settles the batches gathered into the next insert. */
  #group = deferred();
  #queuedRows = 0;
  #roomWaiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Inserts running, and those waiting for one of them to end. */
  #running = 0;
  readonly #slotWaiters: (() => void)[] = [];
  /** Settles once every group handed to the inserts so far has settled (never rejects). */
  #settled: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(
    private readonly store: ClickHouseStore,
    private readonly metrics: SinkMetrics,
    options: ClickHouseSinkOptions = {},
  ) {
    this.#maxInsertRows = options.maxInsertRows ?? DEFAULT_MAX_INSERT_ROWS;
    this.#maxInsertDelayMs = options.maxInsertDelayMs ?? DEFAULT_MAX_INSERT_DELAY_MS;
    this.#maxQueuedRows = Math.max(options.maxQueuedRows ?? DEFAULT_MAX_QUEUED_ROWS, this.#maxInsertRows);
    this.#maxConcurrentInserts = Math.max(options.maxConcurrentInserts ?? DEFAULT_MAX_CONCURRENT_INSERTS, 1);
    this.#backoff = new ReconnectBackoff(options.backoff);
  }

  async accept(batch: RecordBatch): Promise<Accepted> {
    // A batch larger than the whole queue still goes in once the queue is empty.
    while (this.#queuedRows > 0 && this.#queuedRows + batch.count > this.#maxQueuedRows) {
      if (this.#closing) break;
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
    if (this.#closing) throw new ClosedError('ClickHouse sink', 'accept');
    this.#writer.append(batch);
    this.#queuedRows += batch.count;
    this.metrics.queuedFlows = this.#queuedRows;
    const stored = this.#group.promise;
    if (this.#writer.rows >= this.#maxInsertRows) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), this.#maxInsertDelayMs);
    return { stored };
  }

  close(timeoutMs: number): Promise<void> {
    this.#closing ??= (async () => {
      this.#flush();
      for (const wake of this.#roomWaiters.splice(0)) wake();
      // Not unref()'d: retries wait on unref()'d timers, and this one keeps the process alive until they end.
      const deadline = setTimeout(() => this.#giveUp.abort(this.#gaveUp(timeoutMs)), timeoutMs);
      await this.#settled;
      clearTimeout(deadline);
      await this.store.close();
    })();
    return this.#closing;
  }

  #gaveUp(timeoutMs: number): StoreError {
    const where = this.store.target.display;
    return new StoreError(
      where,
      `gave up on the flows queued for ClickHouse at ${where}: it did not take them within ${timeoutMs} ms of stopping (counted in flowtap_collect_flows_dropped_total)`,
    );
  }

  /** Hands what is gathered to an insert; its group settles after every earlier one. */
  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const rows = this.#writer.rows;
    if (rows === 0) return;
    const body = this.#writer.take();
    const group = this.#group;
    this.#group = deferred();
    const inserted = this.#insert(body, rows);
    this.#settled = Promise.all([this.#settled, inserted]).then(([, failure]) => {
      if (failure === undefined) group.resolve();
      else group.reject(failure);
    });
  }

  /** Waits for a free insert slot. */
  async #slot(): Promise<void> {
    while (this.#running >= this.#maxConcurrentInserts) {
      await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    }
    this.#running++;
  }

  /**
   * Inserts `body` until it is stored or the sink gives up; resolves with undefined when stored,
   * with the reason when given up (never rejects).
   */
  async #insert(body: Buffer, rows: number): Promise<unknown> {
    await this.#slot();
    let failure: unknown;
    for (;;) {
      if (this.#giveUp.signal.aborted) {
        this.metrics.dropped += rows;
        failure = this.#giveUp.signal.reason;
        break;
      }
      const t0 = performance.now();
      try {
        await this.store.insertRowBinary(body);
        this.metrics.recordInsert(rows, (performance.now() - t0) / 1000);
        this.#backoff.reset();
        break;
      } catch (err) {
        this.metrics.failed(err);
        this.metrics.retries++;
        try {
          await waitUnref(this.#backoff.nextDelayMs(), this.#giveUp.signal);
        } catch {
          // Given up: the loop's first check settles the insert.
        }
      }
    }
    this.#running--;
    this.#slotWaiters.shift()?.();
    this.#queuedRows -= rows;
    this.metrics.queuedFlows = this.#queuedRows;
    for (const wake of this.#roomWaiters.splice(0)) wake();
    return failure;
  }
}
