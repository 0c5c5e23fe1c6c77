/**
 * The data path of `flowtap read`: capture inputs → CaptureDecoder → Accounter on the packets' own
 * times → every sink. A file can wait, so the read pauses while a sink's queue is full instead of
 * dropping flows.
 */
import { Accounter } from '../../account/accounter.ts';
import { DnsSections } from '../../account/dns-sections.ts';
import { EvictedRows } from '../../account/evicted-rows.ts';
import { type DnsStats, DnsTracker } from '../../capture/dns/dns-tracker.ts';
import { CaptureDecoder } from '../../capture/pcap/capture-decoder.ts';
import type { CaptureInputs } from '../../capture/pcap/capture-inputs.ts';
import type { LocalHosts } from '../../capture/pcap/direction.ts';
import type { FilterProgram } from '../../filter/program.ts';
import type { FlowSink } from '../../sink/flow-sink.ts';

/** Options of a {@link CaptureRead}. */
export interface ReadOptions {
  /** Flows cached before the whole cache is evicted. */
  cacheMaxFlows: number;
  /** Active timeout on the packets' times. */
  cacheActiveTimeoutMs: number;
  /** Sources that make a packet EGRESS; empty: the capture's recorded direction, else INGRESS. */
  localHosts: LocalHosts;
  /** Packets this filter rejects are counted in no flow (skipped as `filtered`). */
  filter?: FilterProgram;
  /** One flow for a packet seen on several of a pcapng's interfaces (DEDUPER; default true). */
  dedup?: boolean;
  /** Key tunnelled packets by the packet inside (ENABLE_TUNNELS). */
  tunnels?: boolean;
  /** The agent's address (16 bytes, IPv4 mapped) written into every flow. */
  agentIp: Uint8Array;
  /** Pair the directions of each conversation into bidirectional records. */
  bidirectional: boolean;
  /** DNS tracking (ENABLE_DNS_TRACKING): the DNS_TRACKING_PORT list; absent: off. */
  dnsPorts?: readonly number[];
  /**
   * TCP health measured from the packets (src/capture/pcap/tcp-health.ts): handshake RTT and
   * retransmitted segments; both unless told otherwise.
   */
  tcpHealth?: { readonly rtt: boolean; readonly retransmissions: boolean };
}

/**
 * Evicted batches that may wait for the sinks before the Accounter stops pulling packets. A file
 * can wait, so one is enough, and each one held is up to the whole cache in memory.
 */
const EVICT_BUFFER_LEN = 1;
/**
 * Batches a read's exporter queues at most (BUFFERS_LENGTH, when lower, still applies): the read
 * pauses while a queue is full, so a longer queue only holds more evicted flows in memory.
 */
export const READ_EXPORT_QUEUE_BATCHES = 2;
/**
 * Connections the TCP analysis follows at least. A connection is at least one flow, so the flow
 * cache's bound bounds them too, but a cache made tiny to evict often should not make the
 * analysis forget connections; this many cost 640 KiB.
 */
const MIN_TCP_CONNECTIONS = 4096;
/**
 * Flows an evicted batch holds at most (442 KB of rows): a window's flows go to the sinks in parts
 * this large, so a read's memory does not grow with the flows of a window. Bidirectional pairing
 * needs a window's flows in one batch and takes them whole.
 */
export const EVICT_PART_FLOWS = 1024;
/** Events a batch starts with: the packets of one 256 KiB chunk of a snapped capture, so it rarely grows. */
const BATCH_ROWS = 4096;

/**
 * One read of a capture into sinks. Its counters fill in as the read goes, so the summary can
 * still be reported when a damaged capture makes `run` reject.
 */
export class CaptureRead {
  /** The capture decoder; `decoder.stats` holds the packet counts. */
  readonly decoder: CaptureDecoder;
  /** Flows written so far. */
  flows = 0;
  readonly #options: ReadOptions;
  #accounter: Accounter | undefined;
  readonly #dnsSections: DnsSections | undefined;
  readonly #dns: DnsTracker | undefined;

  constructor(options: ReadOptions) {
    this.#options = options;
    if (options.dnsPorts !== undefined) {
      // One section per cached flow at most: each eviction takes the whole cache and its sections.
      this.#dnsSections = new DnsSections(options.cacheMaxFlows);
      this.#dns = new DnsTracker({ ports: options.dnsPorts });
    }
    this.decoder = new CaptureDecoder({
      localHosts: options.localHosts,
      initialRows: BATCH_ROWS,
      filter: options.filter,
      dedup: options.dedup,
      tunnels: options.tunnels,
      dns: this.#dns,
      tcpHealth: {
        rtt: options.tcpHealth?.rtt ?? true,
        retransmissions: options.tcpHealth?.retransmissions ?? true,
        maxConnections: Math.max(options.cacheMaxFlows, MIN_TCP_CONNECTIONS),
      },
    });
  }

  /** DNS tracking's counts; undefined when it is off. */
  get dnsStats(): DnsStats | undefined {
    return this.#dns?.stats;
  }

  /** DNS sections dropped because more flows waited for theirs than the cache holds. */
  get dnsSectionsDropped(): number {
    return this.#dnsSections?.dropped ?? 0;
  }

  /** Flows in the cache, not written yet. */
  get cachedFlows(): number {
    return this.#accounter?.cachedFlows ?? 0;
  }

  /**
   * Reads `inputs` as one capture, accounts its packets into flows and hands every evicted batch
   * to each sink, waiting while one of them is full. When every sink tells when it is done with
   * a batch (`whenDone`), an evicted batch's buffer is given back to the accounter once they
   * are, so the evictions of a long capture reuse a few buffers instead of one each.
   */
  async run(inputs: CaptureInputs, sinks: readonly FlowSink[]): Promise<void> {
    const accounter = new Accounter({
      maxEntries: this.#options.cacheMaxFlows,
      evictBufferLen: EVICT_BUFFER_LEN,
      evictTimeoutMs: this.#options.cacheActiveTimeoutMs,
      activeTimeoutBy: 'record-time',
      dnsSections: this.#dnsSections,
      evictChunkFlows: this.#options.bidirectional ? undefined : EVICT_PART_FLOWS,
    });
    this.#accounter = accounter;
    const evictedRows = new EvictedRows({ ...this.#options, dnsTracking: this.#dns !== undefined });
    const recycling = sinks.every((sink) => sink.whenDone !== undefined);
    for await (const accounted of accounter.account(inputs.batches(this.decoder))) {
      // The sinks get the finished rows (agent address, biflows), which may be a batch of their
      // own; the accounter's batch is the one it takes back.
      const batch = evictedRows.finish(accounted);
      for (const sink of sinks) await sink.whenReady?.();
      for (const sink of sinks) sink.export(batch);
      this.flows += batch.count;
      if (recycling) {
        // Given back as soon as every sink is done with this batch, not awaited here (a sink that
        // never delivers must not hold the read): a window's flows go out in parts
        // (EVICT_PART_FLOWS) through a few buffers that the sinks' queues hand back, not a new one
        // each (measured: 9 MB less peak RSS with 40 000 flows a window).
        void Promise.all(sinks.map((sink) => sink.whenDone?.(batch))).then(() =>
          accounter.recycle(accounted),
        );
      }
    }
  }
}
