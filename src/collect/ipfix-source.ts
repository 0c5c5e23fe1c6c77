/**
 * `--from ipfix` (UDP and TCP), `ipfix+udp`, `ipfix+tcp`: flows from IPFIX exporters (flowtap's
 * EXPORT=ipfix+udp or ipfix+tcp, softflowd, routers) decoded by src/export/ipfix/collector.ts and
 * handed to the sinks. At most `maxPendingRows` flows are handed over and not yet taken by the
 * sinks; beyond that the collector is paused (TCP exporters wait on their connection, UDP
 * datagrams are dropped unread and counted as `queue_full`) until the sinks catch up.
 *
 * IPFIX has no acknowledgement: a flow counts as received once decoded, and what the sinks still
 * hold when the collector dies is lost (put Kafka between agents and collectors for at least once).
 */

import type { RecordBatch } from '../codec/record-batch.ts';
import {
  type IpfixTransport,
  type RunningIpfixCollector,
  startIpfixCollector,
} from '../export/ipfix/collector.ts';
import type { SourceMetrics } from './collect-metrics.ts';
import type { SinkFanOut } from './collector-sink.ts';

/** Flows handed to the sinks and not yet taken at most, by default, before the collector pauses. */
export const DEFAULT_MAX_PENDING_ROWS = 200_000;

/** Settings of {@link IpfixSource.start}. */
export interface IpfixSourceOptions {
  host: string;
  port: number;
  transports: readonly IpfixTransport[];
  sinks: SinkFanOut;
  /** Counters by transport. */
  metrics: Record<IpfixTransport, SourceMetrics>;
  logger?: { warn(fields: object, message: string): void };
  maxPendingRows?: number;
  batchRows?: number;
  flushIntervalMs?: number;
}

/** A running IPFIX source. */
export class IpfixSource {
  #collector: RunningIpfixCollector | undefined;
  #pendingRows = 0;
  readonly #handOvers = new Set<Promise<void>>();
  readonly #maxPendingRows: number;
  #stopping: Promise<void> | undefined;

  private constructor(private readonly options: IpfixSourceOptions) {
    this.#maxPendingRows = options.maxPendingRows ?? DEFAULT_MAX_PENDING_ROWS;
  }

  /** Listens on every transport asked; see `ports` for the ports bound. */
  static async start(options: IpfixSourceOptions): Promise<IpfixSource> {
    const source = new IpfixSource(options);
    const { metrics, logger } = options;
    source.#collector = await startIpfixCollector({
      host: options.host,
      port: options.port,
      transports: options.transports,
      batchRows: options.batchRows,
      flushIntervalMs: options.flushIntervalMs,
      onBatch: (batch, transport) => source.#handOver(batch, metrics[transport]),
      onDrop: (reason, transport) => metrics[transport].drop(reason),
      onMissingRecords: (count, transport) => {
        metrics[transport].missingRecords += count;
      },
      onStreamError: (peer, reason) =>
        logger?.warn({ peer, reason }, `closed the IPFIX connection of ${peer}: ${reason}`),
    });
    return source;
  }

  /** Ports bound, by transport. */
  get ports(): Partial<Record<IpfixTransport, number>> {
    return this.#collector?.ports ?? {};
  }

  /** Stops listening, hands what was gathered to the sinks and waits until they took it; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#collector?.close();
      await Promise.allSettled([...this.#handOvers]);
    })();
    return this.#stopping;
  }

  #handOver(batch: RecordBatch, metrics: SourceMetrics): void {
    metrics.received += batch.count;
    this.#pendingRows += batch.count;
    if (this.#pendingRows >= this.#maxPendingRows) this.#collector?.pause();
    const handOver = this.options.sinks.accept(batch).then(
      // A sink that gives up on the flows later counts them as dropped itself.
      ({ stored }) => void stored.catch(() => undefined),
      () => metrics.drop('sink_refused', batch.count),
    );
    this.#handOvers.add(handOver);
    void handOver.finally(() => {
      this.#handOvers.delete(handOver);
      this.#pendingRows -= batch.count;
      if (this.#pendingRows < this.#maxPendingRows) this.#collector?.resume();
    });
  }
}
