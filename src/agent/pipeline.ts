/**
 * The agent's data path: capture → Accounter → fan-out to every exporter, bounded at each hand-off.
 *
 * - The Accounter pulls its input only while at most EVICTED_BATCHES_WAITING evicted batches wait
 *   (fewer if `buffersLength` is smaller), so when a stage lags the pull stops, the capture's own
 *   bounded queue fills, and the capture defers its drains (counted): flows keep aggregating in
 *   the kernel map, and what overflows it is counted as ring-buffer loss. Nothing counted is dropped in user space before accounting.
 * - Evicted batches go out in slices of at most EXPORT_SLICE_FLOWS flows, so an exporter's queue of
 *   `buffersLength` batches is bounded in bytes, whatever the cache size.
 * - The fan-out waits while a configured exporter's queue is full (backpressure) instead of letting
 *   it drop: the wait travels back to the kernel map, where a flow's later packets cost no memory
 *   at all, so a burst the exporters cannot take at once is delivered late rather than lost. Only
 *   flows new while the map is full can then be lost, and the kernel counts them. `stopWaiting()`
 *   ends the waiting when the agent stops, so a dead sink cannot hold a stop up.
 *
 * The seam for extra consumers (the web view): `addExporter()` takes anything implementing
 * `FlowSink`; it receives every batch evicted from then on, like the configured exporters, but
 * never holds the pipeline back: a slow observer drops and counts, as its queue does.
 */
import { Accounter, type AccounterOptions, type EvictionReason } from '../account/accounter.ts';
import type { Clock } from '../account/clock.ts';
import type { DnsCounts } from '../account/dns-counts.ts';
import { DnsSections } from '../account/dns-sections.ts';
import { EvictedRows, type EvictedRowsOptions, type IdentityCounts } from '../account/evicted-rows.ts';
import { HealthJoin, type HealthJoinCounts, type HealthJoinOptions } from '../account/health-join.ts';
import type { HealthSums } from '../account/health-sums.ts';
import { DnsBatch } from '../codec/dns-batch.ts';
import { HealthBatch } from '../codec/health-batch.ts';
import { RecordBatch } from '../codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { DEFAULT_STOP_TIMEOUT_MS, type FlowSink } from '../sink/flow-sink.ts';
import { InterfaceTotals } from './interface-totals.ts';

/**
 * Flows per batch handed to exporters at most (104 KiB of rows): an evicted cache of 2^17 flows
 * goes out as 128 slices, so a queue of BUFFERS_LENGTH batches holds 5 MB, not gigabytes, a
 * lagging exporter holds the pipeline back early, and what it holds at stop can be sent within
 * the stop timeout.
 */
export const EXPORT_SLICE_FLOWS = 1024;

/**
 * Evicted batches that may wait for the fan-out. An eviction can be the whole cache (13.6 MB at
 * 2^17 flows), so the bound is small: a lagging exporter then stops the Accounter's input after
 * two evictions and the flows wait in the kernel map, where they cost no memory of ours (a bound
 * of BUFFERS_LENGTH, 50, would let 50 whole caches, 680 MB, wait behind a slow collector).
 */
export const EVICTED_BATCHES_WAITING = 2;

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
  /** Agent IP and bidirectional pairing applied to every evicted batch; none when absent. */
  evictedRows?: EvictedRowsOptions;
  /**
   * How TCP health rows from the source (HealthBatch) are joined into the evicted flows; by
   * default keyed as DEDUPER=firstCome keys them, every unclaimed row kept.
   */
  healthJoin?: HealthJoinOptions;
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
  /** Packets and bytes received per interface and direction (per-interface metrics). */
  readonly interfaceTotals = new InterfaceTotals();
  readonly #exporters: FlowSink[] = [];
  /** The configured exporters: the fan-out waits for room in their queues. */
  readonly #waitedFor: readonly FlowSink[];
  readonly #accounter: Accounter;
  readonly #evictedRows: EvictedRows | undefined;
  readonly #healthJoin: HealthJoin;
  #running = false;
  /** Resolves when the fan-out must stop waiting for room (the agent stops). */
  readonly #waitingEnded: Promise<void>;
  #endWaiting: () => void = () => {};
  #waiting = true;

  constructor(
    options: PipelineOptions,
    /** The configured exporters, which hold the pipeline back while their queues are full. */
    exporters: readonly FlowSink[] = [],
  ) {
    this.#exporters.push(...exporters);
    this.#waitedFor = [...exporters];
    this.#evictedRows = options.evictedRows && new EvictedRows(options.evictedRows);
    const healthJoin = new HealthJoin(options.healthJoin ?? { dedup: true });
    this.#healthJoin = healthJoin;
    this.#waitingEnded = new Promise((resolve) => {
      this.#endWaiting = resolve;
    });
    // DNS tracking: rows come with DNS sections (the capture fills them), kept by flow beside the
    // cache and put back on each evicted flow's record.
    const dnsTracking = options.evictedRows?.dnsTracking === true;
    this.#accounter = new Accounter({
      dnsSections: dnsTracking ? new DnsSections(options.cacheMaxFlows) : undefined,
      maxEntries: options.cacheMaxFlows,
      evictBufferLen: Math.min(options.buffersLength, EVICTED_BATCHES_WAITING),
      evictTimeoutMs: options.cacheActiveTimeoutMs,
      activeTimeoutBy: options.activeTimeoutBy,
      clock: options.clock,
      onEvict: (reason, flows) => {
        this.stats.evictions[reason]++;
        this.stats.flowsEvicted[reason] += flows;
        options.onEvict?.(reason, flows);
      },
      // Health rows with no flow cached still leave at the next tick, as records of their own.
      evictWhenEmpty: () => healthJoin.pending > 0,
    });
  }

  /**
   * Adds a consumer of evicted batches (the web view, a test observer); it gets every later batch
   * and never holds the pipeline back.
   */
  addExporter(exporter: FlowSink): void {
    this.#exporters.push(exporter);
  }

  /** Every consumer of evicted batches. */
  get exporters(): readonly FlowSink[] {
    return this.#exporters;
  }

  /** What the evicted flows carried (tunnels, VLANs, interfaces crossed, biflows); undefined without the stage. */
  get identityCounts(): IdentityCounts | undefined {
    return this.#evictedRows?.counts;
  }

  /** The TCP health of the evicted flows (RTTs, drops by reason, retransmissions); undefined without the stage. */
  get healthSums(): HealthSums | undefined {
    return this.#evictedRows?.healthSums;
  }

  /** What became of the TCP health rows the source handed out (joined, own records, filtered). */
  get healthJoinCounts(): HealthJoinCounts {
    return this.#healthJoin.counts;
  }

  /** What the evicted flows' DNS sections held; undefined unless DNS is tracked. */
  get dnsCounts(): DnsCounts | undefined {
    return this.#evictedRows?.options.dnsTracking === true ? this.#evictedRows.dns : undefined;
  }

  /** The agent's address written into every flow; undefined without the stage. */
  get agentIp(): Uint8Array | undefined {
    return this.#evictedRows?.options.agentIp;
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
    for await (const accounted of this.#accounter.account(this.#counted(source))) {
      const joined = this.#healthJoin.join(accounted);
      if (joined.count === 0) continue;
      const evicted = this.#evictedRows ? this.#evictedRows.finish(joined) : joined;
      for (let start = 0; start < evicted.count; start += EXPORT_SLICE_FLOWS) {
        const slice = sliceOf(evicted, start, Math.min(evicted.count, start + EXPORT_SLICE_FLOWS));
        await this.#roomInExporters();
        for (const exporter of this.#exporters) exporter.export(slice);
      }
    }
  }

  /**
   * From now on batches go to exporters at once, full queues or not (they drop and count): called
   * when the agent stops, so that a sink that stopped taking flows cannot hold the stop up.
   */
  stopWaiting(): void {
    this.#waiting = false;
    this.#endWaiting();
  }

  async #roomInExporters(): Promise<void> {
    for (const exporter of this.#waitedFor) {
      if (!this.#waiting || !exporter.whenReady) continue;
      await Promise.race([exporter.whenReady(), this.#waitingEnded]);
    }
  }

  /** Stops every exporter in parallel, each waiting at most `timeoutMs` for its queue to drain. */
  async stopExporters(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    await Promise.all(this.#exporters.map((e) => e.stop(timeoutMs)));
  }

  async *#counted(source: AsyncIterable<RecordBatch>): AsyncIterable<RecordBatch> {
    const stats = this.stats;
    for await (const batch of source) {
      if (batch instanceof HealthBatch || batch instanceof DnsBatch) {
        // Not flows: joined into the flows of their keys after accounting.
        this.#healthJoin.add(batch);
        continue;
      }
      for (let i = 0; i < batch.count; i++) {
        stats.packetsIn += batch.packetsAt(i);
        stats.bytesIn += batch.bytesAt(i);
      }
      this.interfaceTotals.add(batch);
      stats.batchesIn++;
      stats.rowsIn += batch.count;
      yield batch;
    }
  }
}

/** Rows `start` to `end` of `batch`, sharing its memory. */
function sliceOf(batch: RecordBatch, start: number, end: number): RecordBatch {
  if (start === 0 && end === batch.count) return batch;
  const bytes = batch.bytes.subarray(start * V2_RECORD_BYTES, end * V2_RECORD_BYTES);
  return new RecordBatch(bytes, end - start, batch.interfaces);
}
