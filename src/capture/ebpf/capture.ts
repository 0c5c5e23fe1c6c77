/**
 * Live capture through the eBPF datapath: loads bpf/flows.bpf.o once, attaches it to interfaces
 * by name, and hands out drained flows and ring-buffer fallbacks as `RecordBatch`es (Unix-epoch
 * times) until `stop()`. Counting happens in the kernel; this module only moves rows.
 *
 * Nothing counted is lost on the way: the flow map is drained by swapping in an empty one (the
 * swap waits until no program writes the old map), and `stop()` detaches first, then drains both
 * maps and the ring buffer before closing anything.
 *
 * With TCP health on (`health`), the health programs (bpf/health.bpf.o) run beside the TC pair
 * and the health map is drained with the flow map: each drain's flows are followed by a
 * `HealthBatch` of the health collected in the same period, which the pipeline joins into the
 * flows after accounting. With DNS tracking on (`dns`), the TC programs also fill the DNS map
 * (bpf/dns.h): each drain then hands out a `DnsBatch` of its sections and of the pending queries
 * that timed out (unanswered), joined the same way. A kernel that refuses the DNS parser gets the
 * datapath without it (`dnsRefusal` says why).
 */
import { DnsBatch } from '../../codec/dns-batch.ts';
import { HealthBatch } from '../../codec/health-batch.ts';
import { type RecordBatch, RecordBatchBuilder } from '../../codec/record-batch.ts';
import { type AttachMode, type DirectionPrograms, InterfaceAttachment } from '../../ebpf/attach.ts';
import { monotonicNowNs, monotonicToUnixOffsetNs, type SplitOffset, splitOffset } from '../../ebpf/clock.ts';
import { DnsPendingExpiry } from '../../ebpf/dns-pending.ts';
import { requireLiveCapture } from '../../ebpf/features.ts';
import { FlowMapDrainer } from '../../ebpf/flow-map.ts';
import { enabledFeatures, HEALTH_OFF, type HealthSettings } from '../../ebpf/health-hooks.ts';
import { type HealthHookChoice, HealthPrograms } from '../../ebpf/health-programs.ts';
import {
  DEFAULT_KERNEL_MEMORY_MAX_BYTES,
  type FlowMapKindSetting,
  healthMapEntries,
  type KernelMemory,
  planKernelMemory,
} from '../../ebpf/kernel-memory.ts';
import { libbpf } from '../../ebpf/libbpf.ts';
import {
  type DatapathCounters,
  FlowObject,
  type ProgramRunStats,
  programRunStats,
} from '../../ebpf/object.ts';
import { RingBufferReader } from '../../ebpf/ringbuf.ts';
import type { RowSink } from '../../ebpf/rows.ts';
import { DNS_LAYOUT, HEALTH_LAYOUT, SectionMapDrainer } from '../../ebpf/section-drain.ts';
import { DNS_SECTION, HEALTH_SECTION, SectionMaps } from '../../ebpf/section-maps.ts';
import { ConfigError, EbpfError, InterfaceError, PermissionError } from '../../errors.ts';
import type { FilterProgram } from '../../filter/program.ts';
import type { InterfaceRegistry } from '../../model/interfaces.ts';
import { DNS_QUERY_TIMEOUT_NS } from '../dns/dns-tracker.ts';

/** Which packets are counted: arriving, leaving, or both. */
export type CaptureDirection = 'ingress' | 'egress' | 'both';

/** Default ring buffer size: 16 MiB holds about 150 000 fallback records between polls. */
export const DEFAULT_RING_BUFFER_BYTES = 1 << 24;
/** How often the ring buffer is read; it only holds records while the flow map is full. */
export const RING_BUFFER_POLL_MS = 100;
/** Rows per batch at most (416 KiB), so a flood of new flows never builds one huge buffer. */
export const MAX_BATCH_ROWS = 4096;

/** Settings of an {@link EbpfCapture}. */
export interface EbpfCaptureOptions {
  /** Count one packet in `sampling` (1 = every packet). */
  sampling: number;
  /** Which packets are counted. */
  direction: CaptureDirection;
  /** Entries of the kernel flow map; flows beyond it reach user space through the ring buffer. */
  maxFlows: number;
  /** How often the kernel flow map is drained into a batch. */
  drainIntervalMs: number;
  /** Learns the name of every interface attached. */
  interfaces: InterfaceRegistry;
  /** Ring buffer size, a power of two (default {@link DEFAULT_RING_BUFFER_BYTES}). */
  ringBufferBytes?: number;
  /** Flow map kind: by CPU count (`auto`, the default), or forced per-CPU or shared. */
  mapKind?: FlowMapKindSetting;
  /** Kernel memory the datapath may take (default {@link DEFAULT_KERNEL_MEMORY_MAX_BYTES}). */
  kernelMemoryMaxBytes?: number;
  /** Force clsact filters even where TCX links exist; for tests of older kernels' path. */
  attachMode?: AttachMode;
  /** Compiled filter run before counting (src/filter); undefined = count every packet. */
  filter?: FilterProgram;
  /**
   * One flow for a packet met on several attached interfaces, counted where the flow was first
   * seen and listing every interface crossed (DEDUPER=firstCome; default true).
   */
  dedup?: boolean;
  /** Key tunnelled packets by the packet inside (ENABLE_TUNNELS; default false). */
  tunnels?: boolean;
  /** TCP health features and their hooks (ENABLE_RTT, ENABLE_PKT_DROPS, ...); all off by default. */
  health?: HealthSettings;
  /**
   * DNS tracking in the TC programs (ENABLE_DNS_TRACKING): packets to or from `ports`
   * (DNS_TRACKING_PORT) are DNS; a query waits `queryTimeoutNs` (default
   * {@link DNS_QUERY_TIMEOUT_NS}) for its response. Off when absent.
   */
  dns?: { readonly ports: readonly number[]; readonly queryTimeoutNs?: number };
}

/** Counters of an {@link EbpfCapture}. */
export interface EbpfCaptureStats {
  /** Packets that reached user space through the ring buffer (map full or update failed). */
  ringBufferFallbacks: number;
  /** Packets with truncated or invalid headers, counted in no flow. */
  parseErrors: number;
  /** Flow-map inserts that failed. */
  mapUpdateFailures: number;
  /** Packets skipped by sampling. */
  sampledOut?: number;
  /** Packets the filter accepted (0 without a filter). */
  filterAccepted?: number;
  /** Packets the filter rejected: counted in no flow. */
  filterRejected?: number;
  /** Packets met on an interface their flow's full crossed list could not take (still counted once). */
  crossedOverflow?: number;
  /** Health events lost because the health map was full (the flows are still counted). */
  healthMapFull?: number;
  /** Drops of packets without an IP header a flow key can be built from: in no flow's health. */
  healthUnkeyed?: number;
  /** DNS messages lost because the DNS map was full (their flows are still counted). */
  dnsMapFull?: number;
  /** DNS queries never timed because the pending-query map was full. */
  dnsPendingFull?: number;
  /** Malformed DNS messages by reason (index: DNS_MALFORMED_REASONS). */
  dnsMalformed?: readonly number[];
  /** DNS queries expired unanswered, and queries waiting now. */
  dnsUnanswered?: number;
  dnsPending?: number;
  /** Fallbacks lost because the ring buffer was full (raise ringBufferBytes or maxFlows). */
  ringBufferLost: number;
  /** Ring-buffer records that were not a whole flow record, dropped (never expected: a mismatched object). */
  ringBufferMalformed: number;
  /** Flow-map drains done. */
  drains: number;
  /** Timer drains and ring-buffer polls skipped because the consumer lagged (see MAX_QUEUED_BATCHES). */
  deferredDrains: number;
}

function checkOptions(opts: EbpfCaptureOptions): void {
  if (!['ingress', 'egress', 'both'].includes(opts.direction)) {
    throw new ConfigError('direction', String(opts.direction), 'ingress, egress or both');
  }
  if (
    !Number.isFinite(opts.drainIntervalMs) ||
    opts.drainIntervalMs < 10 ||
    opts.drainIntervalMs > 3_600_000
  ) {
    throw new ConfigError(
      'drainIntervalMs',
      String(opts.drainIntervalMs),
      'a number of milliseconds from 10 to 3600000',
    );
  }
}

/** Hands rows to `emit` as batches of at most {@link MAX_BATCH_ROWS}. */
class BatchCutter implements RowSink {
  #builder: RecordBatchBuilder;

  constructor(
    interfaces: InterfaceRegistry,
    private readonly emit: (batch: RecordBatch) => void,
    /** Turns a finished batch into the kind emitted (health rows: a HealthBatch). */
    private readonly kind: (batch: RecordBatch) => RecordBatch = (batch) => batch,
  ) {
    this.#builder = new RecordBatchBuilder(MAX_BATCH_ROWS, interfaces);
  }

  get bytes(): Buffer {
    return this.#builder.bytes;
  }

  appendRow(): number {
    if (this.#builder.count === MAX_BATCH_ROWS) this.flush();
    return this.#builder.appendRow();
  }

  /** Emits the rows appended so far, if any. */
  flush(): void {
    if (this.#builder.count === 0) return;
    this.emit(this.kind(this.#builder.finish()));
  }
}

/**
 * Batches that may wait for the consumer. Beyond it the timers stop draining: flows keep
 * accumulating in the kernel map, then fall back to the ring buffer, whose overflow the kernel
 * counts as `ringBufferLost` — memory stays bounded and every loss is counted.
 */
export const MAX_QUEUED_BATCHES = 64;

/** The health side of a capture: maps, programs and drain, owned together. */
class HealthPart {
  readonly drainer: SectionMapDrainer;

  constructor(
    readonly maps: SectionMaps,
    readonly programs: HealthPrograms,
    readonly sink: BatchCutter,
  ) {
    this.drainer = new SectionMapDrainer(maps, HEALTH_LAYOUT);
  }
}

/** The DNS side of a capture: the DNS maps, their drain and the expiry of pending queries. */
class DnsPart {
  readonly drainer: SectionMapDrainer;

  constructor(
    readonly maps: SectionMaps,
    readonly expiry: DnsPendingExpiry,
    readonly sink: BatchCutter,
  ) {
    this.drainer = new SectionMapDrainer(maps, DNS_LAYOUT);
  }
}

function asHealthBatch(batch: RecordBatch): RecordBatch {
  return new HealthBatch(batch.bytes, batch.count, batch.interfaces);
}

function asDnsBatch(batch: RecordBatch): RecordBatch {
  return new DnsBatch(batch.bytes, batch.count, batch.interfaces);
}

/** A time after every query's: the final drain expires all of them. */
const FOREVER_NS = 2n ** 63n;

/** The wall clock now, in Unix-epoch nanoseconds as 32-bit halves (a health row's collection time). */
function unixNow(): SplitOffset {
  return splitOffset(BigInt(Date.now()) * 1_000_000n);
}

/** Live flows from the kernel, one loaded datapath shared by every attached interface. */
export class EbpfCapture {
  readonly #attachments = new Map<string, InterfaceAttachment>();
  readonly #queue: RecordBatch[] = [];
  #wake: (() => void) | undefined;
  #failure: unknown;
  #ended = false;
  #stopping: Promise<void> | undefined;
  #drains = 0;
  #deferredDrains = 0;
  #finalCounters: DatapathCounters | undefined;
  readonly #sink: BatchCutter;
  readonly #health: HealthPart | undefined;
  readonly #dns: DnsPart | undefined;
  readonly #drainTimer: NodeJS.Timeout;
  readonly #ringTimer: NodeJS.Timeout;

  private constructor(
    private readonly opts: EbpfCaptureOptions,
    private readonly obj: FlowObject,
    private readonly ring: RingBufferReader,
    private readonly drainer: FlowMapDrainer,
    private readonly mode: AttachMode,
    /** What the loaded datapath takes in kernel memory, and the flow map kind chosen. */
    readonly kernelMemory: KernelMemory,
    health: { maps: SectionMaps; programs: HealthPrograms } | undefined,
    dns: { maps: SectionMaps; expiry: DnsPendingExpiry } | undefined,
    /** Why the kernel refused DNS tracking asked for (the capture runs without it); undefined otherwise. */
    readonly dnsRefusal: string | undefined,
  ) {
    const enqueue = (batch: RecordBatch) => {
      this.#queue.push(batch);
      this.#notify();
    };
    this.#sink = new BatchCutter(opts.interfaces, enqueue);
    this.#health =
      health &&
      new HealthPart(health.maps, health.programs, new BatchCutter(opts.interfaces, enqueue, asHealthBatch));
    this.#dns =
      dns && new DnsPart(dns.maps, dns.expiry, new BatchCutter(opts.interfaces, enqueue, asDnsBatch));
    this.#drainTimer = setInterval(
      () => this.#guard(() => this.#consumerLagging() || this.#drain()),
      opts.drainIntervalMs,
    );
    this.#ringTimer = setInterval(
      () => this.#guard(() => this.#consumerLagging() || this.#pollRingBuffer()),
      Math.min(RING_BUFFER_POLL_MS, opts.drainIntervalMs),
    );
  }

  /**
   * Checks the kernel memory the settings need against the budget, privileges and kernel
   * features, then loads the datapath. Throws `ConfigError` (over the budget, or a bad setting),
   * `PermissionError` or `NotSupportedError` saying what is missing and what to do.
   */
  static async open(opts: EbpfCaptureOptions): Promise<EbpfCapture> {
    checkOptions(opts);
    const ringBufferBytes = opts.ringBufferBytes ?? DEFAULT_RING_BUFFER_BYTES;
    const health = opts.health ?? HEALTH_OFF;
    const features = enabledFeatures(health);
    const plan = (mapKind: FlowMapKindSetting) =>
      planKernelMemory({
        maxFlows: opts.maxFlows,
        ringBufferBytes,
        possibleCpus: libbpf().numPossibleCpus(),
        mapKind,
        maxBytes: opts.kernelMemoryMaxBytes ?? DEFAULT_KERNEL_MEMORY_MAX_BYTES,
        health: features.length > 0,
        handshake: health.rtt,
        dns: opts.dns !== undefined,
      });
    let memory = plan(opts.mapKind ?? 'auto');
    const kernel = requireLiveCapture();
    // Per-CPU dedup needs helpers of Linux 5.19; before it, the shared map dedups without them.
    if (opts.dedup !== false && memory.mapKind === 'percpu' && !kernel.perCpuDedup) memory = plan('shared');
    const healthMaps =
      features.length > 0 ? SectionMaps.create(HEALTH_SECTION, healthMapEntries(opts.maxFlows)) : undefined;
    let dnsMaps =
      opts.dns !== undefined ? SectionMaps.create(DNS_SECTION, healthMapEntries(opts.maxFlows)) : undefined;
    let dnsRefusal: string | undefined;
    let obj: FlowObject | undefined;
    let programs: HealthPrograms | undefined;
    try {
      const load = () =>
        FlowObject.load({
          sampling: opts.sampling,
          maxFlows: opts.maxFlows,
          ringBufferBytes,
          mapKind: memory.mapKind,
          dedup: opts.dedup ?? true,
          tunnels: opts.tunnels ?? false,
          handshake: health.rtt,
          healthMapFd: healthMaps?.outerFd,
          dns: dnsMaps && opts.dns && { ports: opts.dns.ports, mapFd: dnsMaps.outerFd },
        });
      try {
        obj = load();
      } catch (err) {
        // A kernel whose verifier refuses the DNS parser still counts flows: DNS tracking is off.
        // (The verifier refusing a program is EACCES: a PermissionError; a retry without DNS tells.)
        if (!(err instanceof EbpfError || err instanceof PermissionError) || dnsMaps === undefined) throw err;
        dnsRefusal = err.message;
        dnsMaps.close();
        dnsMaps = undefined;
        obj = load();
      }
      obj.filter.install(opts.filter);
      if (healthMaps) {
        programs = HealthPrograms.load({
          features,
          mode: health.hooks,
          dedup: opts.dedup ?? true,
          healthMapFd: healthMaps.outerFd,
          countersFd: obj.countersFd,
        });
      }
      const ring = new RingBufferReader(
        obj.ringBufferFd,
        obj.options.ringBufferBytes,
        obj.options.dedup !== false,
      );
      const mode = opts.attachMode ?? (kernel.tcx ? 'tcx' : 'clsact');
      return new EbpfCapture(
        opts,
        obj,
        ring,
        new FlowMapDrainer(obj),
        mode,
        memory,
        healthMaps && programs && { maps: healthMaps, programs },
        dnsMaps && {
          maps: dnsMaps,
          expiry: new DnsPendingExpiry(
            obj.dnsPendingFd,
            BigInt(opts.dns?.queryTimeoutNs ?? DNS_QUERY_TIMEOUT_NS),
          ),
        },
        dnsRefusal,
      );
    } catch (err) {
      programs?.close();
      obj?.close();
      healthMaps?.close();
      dnsMaps?.close();
      throw err;
    }
  }

  /**
   * How each TCP health feature asked for is hooked, or why the kernel refused it (the agent logs
   * one line for each refused one); empty with health off.
   */
  get healthHooks(): readonly HealthHookChoice[] {
    return this.#health?.programs.choices ?? [];
  }

  /** Starts counting on interface `ifName` (idempotent). Throws `InterfaceError` when it does not exist. */
  async attach(ifName: string): Promise<void> {
    if (this.#stopping)
      throw new InterfaceError(ifName, `cannot attach to ${ifName}: the capture is stopping`);
    if (this.#attachments.has(ifName)) return;
    const ifIndex: number = libbpf().ifNameToIndex(ifName);
    if (ifIndex === 0) {
      throw new InterfaceError(
        ifName,
        `interface ${ifName} does not exist: check the name with "ip link", or use pcap mode: flowtap read FILE`,
      );
    }
    const programs: DirectionPrograms = {};
    if (this.opts.direction !== 'egress') programs.ingressFd = this.obj.ingressFd;
    if (this.opts.direction !== 'ingress') programs.egressFd = this.obj.egressFd;
    this.opts.interfaces.set(ifIndex, ifName);
    this.#attachments.set(ifName, InterfaceAttachment.attach(ifName, ifIndex, programs, this.mode));
  }

  /** Stops counting on `ifName`; what it counted stays in the map and is drained with the rest. */
  async detach(ifName: string): Promise<void> {
    this.#attachments.get(ifName)?.detach();
    this.#attachments.delete(ifName);
  }

  /**
   * Replaces the filter (undefined: count every packet) without detaching: packets from now on
   * are tested by the new one (src/ebpf/filter-maps.ts).
   */
  setFilter(program: FilterProgram | undefined): void {
    if (this.#stopping) return;
    this.obj.filter.install(program);
  }

  /** The filter in use, undefined when every packet is counted. */
  get filter(): FilterProgram | undefined {
    return this.obj.filter.program;
  }

  /** Names of the interfaces attached now. */
  attached(): string[] {
    return [...this.#attachments.keys()];
  }

  /**
   * Every drained flow and fallback record as batches, ending after `stop()`. One consumer only;
   * at most MAX_QUEUED_BATCHES wait for it (plus the final drain at stop).
   */
  async *batches(): AsyncIterable<RecordBatch> {
    for (;;) {
      const batch = this.#queue.shift();
      if (batch) {
        yield batch;
        continue;
      }
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Kernel and drain counters. */
  stats(): EbpfCaptureStats {
    const counters = this.#finalCounters ?? this.obj.readCounters();
    return {
      ringBufferFallbacks: counters.ringBufferFallbacks,
      parseErrors: counters.parseErrors,
      mapUpdateFailures: counters.mapUpdateFailures,
      sampledOut: counters.sampledOut,
      filterAccepted: counters.filterAccepted,
      filterRejected: counters.filterRejected,
      crossedOverflow: counters.crossedOverflow,
      healthMapFull: counters.healthMapFull,
      healthUnkeyed: counters.healthUnkeyed,
      dnsMapFull: counters.dnsMapFull,
      dnsPendingFull: counters.dnsPendingFull,
      dnsMalformed: counters.dnsMalformed,
      dnsUnanswered: this.#dns?.expiry.counts.unanswered ?? 0,
      dnsPending: this.#dns?.expiry.counts.pending ?? 0,
      ringBufferLost: counters.ringBufferLost,
      ringBufferMalformed: this.ring.malformedRecords,
      drains: this.#drains,
      deferredDrains: this.#deferredDrains,
    };
  }

  /**
   * Kernel time spent in the datapath programs (both directions) while statistics were enabled
   * with `enableProgramStats()`: the per-packet cost that no user-space figure shows.
   */
  programRunStats(): ProgramRunStats {
    const ingress = programRunStats(this.obj.ingressFd);
    const egress = programRunStats(this.obj.egressFd);
    return { runTimeNs: ingress.runTimeNs + egress.runTimeNs, runs: ingress.runs + egress.runs };
  }

  /** Kernel time spent in the TCP health programs while statistics were enabled (zero with health off). */
  healthRunStats(): ProgramRunStats {
    return this.#health?.programs.runStats() ?? { runTimeNs: 0, runs: 0 };
  }

  /** Detaches everywhere, drains what was counted, ends `batches()` and releases the datapath. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    clearInterval(this.#drainTimer);
    clearInterval(this.#ringTimer);
    try {
      for (const attachment of this.#attachments.values()) attachment.detach();
      this.#attachments.clear();
      this.#health?.programs.close();
      if (this.#failure === undefined) {
        // Two drains: each swap waits out running programs, so the second empties the map that a
        // program already running at detach time may still have written after the first swap.
        this.#drain();
        this.#drain(true);
        this.#finalCounters = this.obj.readCounters();
      }
    } catch (err) {
      this.#failure = err;
    } finally {
      this.#finalCounters ??= {
        ringBufferFallbacks: 0,
        mapUpdateFailures: 0,
        ringBufferLost: 0,
        parseErrors: 0,
        sampledOut: 0,
        filterAccepted: 0,
        filterRejected: 0,
        crossedOverflow: 0,
        healthMapFull: 0,
        healthUnkeyed: 0,
        dnsMapFull: 0,
        dnsPendingFull: 0,
        dnsMalformed: [],
      };
      this.ring.close();
      this.#health?.programs.close();
      this.obj.close();
      this.#health?.maps.close();
      this.#dns?.maps.close();
      this.#ended = true;
      this.#notify();
    }
  }

  #guard(step: () => void): void {
    if (this.#failure !== undefined || this.obj.closed) return;
    try {
      step();
    } catch (err) {
      // A failing drain ends the stream with the error; stop() still releases everything.
      this.#failure = err;
      this.#notify();
    }
  }

  /** True (and counted) when the consumer lags so far behind that the timers must not add batches. */
  #consumerLagging(): boolean {
    if (this.#queue.length < MAX_QUEUED_BATCHES) return false;
    this.#deferredDrains++;
    return true;
  }

  /** One drain of every map; `final` (the stop's last) also expires every query still waiting. */
  #drain(final = false): void {
    const offset = splitOffset(monotonicToUnixOffsetNs());
    this.drainer.drainInto(this.#sink, offset);
    // After the swap every fallback of the drained period is committed: take them in the same batch.
    this.ring.readInto(this.#sink, offset);
    this.#drains++;
    this.#sink.flush();
    // After the flows of the period, so the pipeline has accounted them when it joins this health.
    const health = this.#health;
    if (health) {
      health.drainer.drainInto(health.sink, offset, unixNow());
      health.sink.flush();
    }
    const dns = this.#dns;
    if (dns) {
      const collectedAt = unixNow();
      dns.drainer.drainInto(dns.sink, offset, collectedAt);
      // A query still waiting when the capture stops is unanswered, as at the end of a capture file.
      const nowNs = final ? FOREVER_NS : monotonicNowNs();
      dns.expiry.expireInto(dns.sink, nowNs, offset, collectedAt);
      dns.sink.flush();
    }
  }

  #pollRingBuffer(): void {
    // Reading the ring is cheap and keeps it from filling while the map is full; the map itself
    // is drained only on its own tick, since draining a full map costs far more per flow.
    if (this.ring.pendingBytes() === 0) return;
    this.ring.readInto(this.#sink, splitOffset(monotonicToUnixOffsetNs()));
    this.#sink.flush();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
