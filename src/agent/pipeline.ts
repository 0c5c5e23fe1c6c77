/**
 * The agent's data path: capture → Accounter → fan-out to every exporter, bounded at each hand-off.
 *
 * - The Accounter pulls its input only while at most `buffersLength` evicted batches wait, so when
 *   a stage lags the pull stops, the capture's own bounded queue fills, and the capture defers its
 *   drains (counted): flows keep aggregating in the kernel map, and what overflows it is counted
 *   as ring-buffer loss. Nothing counted is dropped in user space before accounting.
 * - The fan-out never waits: each exporter bounds its own queue and counts what it drops.
 *
 * The seam for extra consumers (the web view): `addExporter()` takes anything implementing
 * `FlowSink`; it receives every batch evicted from then on, like the configured exporters.
 */
import { Accounter, type AccounterOptions, type EvictionReason } from '../account/accounter.ts';
import type { Clock } from '../account/clock.ts';
import type { RecordBatch } from '../codec/record-batch.ts';
import { DEFAULT_STOP_TIMEOUT_MS, type FlowSink } from '../sink/flow-sink.ts';

/** Counters of a {@link Pipeline}; plain numbers, read by metrics and the web view. */
export interface PipelineStats {
  /** Batches received from the source. */
  batchesIn: number;
  /** Rows (partial flows) received from the source. */
  rowsIn: number;
  /** Packets in the rows received. */
  packetsIn: number;
  /** Bytes in the rows received. */
  bytesIn: number;
  /** Evictions, by reason. */
  evictions: Record<EvictionReason, number>;
  /** Flows evicted, by reason. */
  flowsEvicted: Record<EvictionReason, number>;
}

/** Settings of a {@link Pipeline}. */
export interface PipelineOptions {
  /** Evicted batches that may wait for the fan-out before the Accounter stops pulling its input. */
  buffersLength: number;
  /** Flows cached before the whole cache is evicted. */
  cacheMaxFlows: number;
  /** Active timeout. */
  cacheActiveTimeoutMs: number;
  /** Wall clock (live capture, the default) or the records' times (files). */
  activeTimeoutBy?: AccounterOptions['activeTimeoutBy'];
  /** Timer of the active timeout (tests pass a fake). */
  clock?: Clock;
  /** Told about every eviction, after it is counted. */
  onEvict?: (reason: EvictionReason, flows: number) => void;
}

/** Wires one source through one Accounter to any number of exporters. */
export class Pipeline {
  readonly stats: PipelineStats = {
    batchesIn: 0,
    rowsIn: 0,
    packetsIn: 0,
    bytesIn: 0,
    evictions: { full: 0, timeout: 0, end: 0 },
    flowsEvicted: { full: 0, timeout: 0, end: 0 },
  };
  readonly #exporters: FlowSink[] = [];
  readonly #accounter: Accounter;
  #running = false;

  constructor(
    options: PipelineOptions,
    /** The configured exporters; more can be added with {@link addExporter}. */
    exporters: readonly FlowSink[] = [],
  ) {
    this.#exporters.push(...exporters);
    this.#accounter = new Accounter({
      maxEntries: options.cacheMaxFlows,
      evictBufferLen: options.buffersLength,
      evictTimeoutMs: options.cacheActiveTimeoutMs,
      activeTimeoutBy: options.activeTimeoutBy,
      clock: options.clock,
      onEvict: (reason, flows) => {
        this.stats.evictions[reason]++;
        this.stats.flowsEvicted[reason] += flows;
        options.onEvict?.(reason, flows);
      },
    });
  }

  /** Adds a consumer of evicted batches (the web view, a test observer); it gets every later batch. */
  addExporter(exporter: FlowSink): void {
    this.#exporters.push(exporter);
  }

  /** Every consumer of evicted batches. */
  get exporters(): readonly FlowSink[] {
    return this.#exporters;
  }

  /** Flows in the Accounter's cache now. */
  get cachedFlows(): number {
    return this.#accounter.cachedFlows;
  }

  /**
   * Accounts `source` until it ends, then flushes the Accounter; resolves once every evicted batch
   * was handed to every exporter. If `source` fails, what it delivered is still accounted and
   * exported, then the promise rejects with its error.
   */
  async run(source: AsyncIterable<RecordBatch>): Promise<void> {
    if (this.#running) throw new Error('a Pipeline runs one source only');
    this.#running = true;
    for await (const evicted of this.#accounter.account(this.#counted(source))) {
      for (const exporter of this.#exporters) exporter.export(evicted);
    }
  }

  /** Stops every exporter in parallel, each waiting at most `timeoutMs` for its queue to drain. */
  async stopExporters(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    await Promise.all(this.#exporters.map((e) => e.stop(timeoutMs)));
  }

  async *#counted(source: AsyncIterable<RecordBatch>): AsyncIterable<RecordBatch> {
    const stats = this.stats;
    for await (const batch of source) {
      for (let i = 0; i < batch.count; i++) {
        stats.packetsIn += batch.packetsAt(i);
        stats.bytesIn += batch.bytesAt(i);
      }
      stats.batchesIn++;
      stats.rowsIn += batch.count;
      yield batch;
    }
  }
}
