/**
 * Live capture through the eBPF datapath: loads bpf/flows.bpf.o once, attaches it to interfaces
 * by name, and hands out drained flows and ring-buffer fallbacks as `RecordBatch`es (Unix-epoch
 * times) until `stop()`. Counting happens in the kernel; this module only moves rows.
 *
 * Nothing counted is lost on the way: the flow map is drained by swapping in an empty one (the
 * swap waits until no program writes the old map), and `stop()` detaches first, then drains both
 * maps and the ring buffer before closing anything.
 */
import { type RecordBatch, RecordBatchBuilder } from '../../codec/record-batch.ts';
import { type AttachMode, type DirectionPrograms, InterfaceAttachment } from '../../ebpf/attach.ts';
import { monotonicToUnixOffsetNs, splitOffset } from '../../ebpf/clock.ts';
import { requireLiveCapture } from '../../ebpf/features.ts';
import { FlowMapDrainer } from '../../ebpf/flow-map.ts';
import {
  DEFAULT_KERNEL_MEMORY_MAX_BYTES,
  type FlowMapKindSetting,
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
import { ConfigError, InterfaceError } from '../../errors.ts';
import type { FilterProgram } from '../../filter/program.ts';
import type { InterfaceRegistry } from '../../model/interfaces.ts';

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
    this.emit(this.#builder.finish());
  }
}

/**
 * Batches that may wait for the consumer. Beyond it the timers stop draining: flows keep
 * accumulating in the kernel map, then fall back to the ring buffer, whose overflow the kernel
 * counts as `ringBufferLost` — memory stays bounded and every loss is counted.
 */
export const MAX_QUEUED_BATCHES = 64;

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
  ) {
    this.#sink = new BatchCutter(opts.interfaces, (batch) => {
      this.#queue.push(batch);
      this.#notify();
    });
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
    const plan = (mapKind: FlowMapKindSetting) =>
      planKernelMemory({
        maxFlows: opts.maxFlows,
        ringBufferBytes,
        possibleCpus: libbpf().numPossibleCpus(),
        mapKind,
        maxBytes: opts.kernelMemoryMaxBytes ?? DEFAULT_KERNEL_MEMORY_MAX_BYTES,
      });
    let memory = plan(opts.mapKind ?? 'auto');
    const features = requireLiveCapture();
    // Per-CPU dedup needs helpers of Linux 5.19; before it, the shared map dedups without them.
    if (opts.dedup !== false && memory.mapKind === 'percpu' && !features.perCpuDedup) memory = plan('shared');
    const obj = FlowObject.load({
      sampling: opts.sampling,
      maxFlows: opts.maxFlows,
      ringBufferBytes,
      mapKind: memory.mapKind,
      dedup: opts.dedup ?? true,
      tunnels: opts.tunnels ?? false,
    });
    try {
      obj.filter.install(opts.filter);
      const ring = new RingBufferReader(
        obj.ringBufferFd,
        obj.options.ringBufferBytes,
        obj.options.dedup !== false,
      );
      const mode = opts.attachMode ?? (features.tcx ? 'tcx' : 'clsact');
      return new EbpfCapture(opts, obj, ring, new FlowMapDrainer(obj), mode, memory);
    } catch (err) {
      obj.close();
      throw err;
    }
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
      if (this.#failure === undefined) {
        // Two drains: each swap waits out running programs, so the second empties the map that a
        // program already running at detach time may still have written after the first swap.
        this.#drain();
        this.#drain();
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
      };
      this.ring.close();
      this.obj.close();
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

  #drain(): void {
    const offset = splitOffset(monotonicToUnixOffsetNs());
    this.drainer.drainInto(this.#sink, offset);
    // After the swap every fallback of the drained period is committed: take them in the same batch.
    this.ring.readInto(this.#sink, offset);
    this.#drains++;
    this.#sink.flush();
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
