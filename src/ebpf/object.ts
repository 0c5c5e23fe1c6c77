/**
 * The loaded datapath: bpf/flows.bpf.o opened, configured (sampling, map kind, sizes), loaded,
 * with the two flow maps user space swaps in and out. Owns every kernel object it creates and
 * releases them all in `close()`. Names and layouts here mirror bpf/flows.bpf.c.
 */
import koffi from 'koffi';
import { V2_KEY_BYTES, V2_METRICS_BYTES } from '../codec/v2-layout.ts';
import { ConfigError, InputError } from '../errors.ts';
import { packagePath } from '../package-files.ts';
import {
  DatapathFilter,
  FILTER_ACTIVE_MAP,
  FILTER_PREFIXES_MAP,
  FILTER_PROGRAMS_MAP,
} from './filter-maps.ts';
import { kernelError } from './kernel-error.ts';
import { BpfMapType, lastErrno, libbpf, mapCreateOpts } from './libbpf.ts';
import { DNS_MAP, HEALTH_MAP } from './section-maps.ts';

/** The committed compiled datapath. */
export const FLOWS_OBJECT_PATH = packagePath('bpf', 'flows.bpf.o');

/** Prefix of every kernel program and map flowtap creates, so leftovers can be recognised. */
export const FLOWTAP_NAME_PREFIX = 'flowtap_';
/** Kernel name of the ingress program. */
export const INGRESS_PROGRAM = 'flowtap_ingress';
/** Kernel name of the egress program. */
export const EGRESS_PROGRAM = 'flowtap_egress';

const OUTER_MAP = 'flowtap_flows';
const RINGBUF_MAP = 'flowtap_events';
const COUNTERS_MAP = 'flowtap_counters';
const RODATA_MAP = '.rodata';
/** Bytes of the DNS port bitmap in the config: one bit per port. */
const DNS_PORT_BITMAP_BYTES = 65_536 / 8;
/**
 * sizeof(struct flowtap_config): sampling, shared_map, dedup, tunnels, cpus, handshake, dns (u32
 * each), then the DNS port bitmap.
 */
const CONFIG_BYTES = 28 + DNS_PORT_BITMAP_BYTES;
/** Where the DNS switch and the port bitmap are in it. */
const CONFIG_DNS = 24;
const CONFIG_DNS_PORTS = 28;
/** COUNTER_MAX of bpf/datapath.h. */
const COUNTER_COUNT = 18;
/** Indexes of the DNS counters (COUNTER_DNS_* of bpf/datapath.h); the malformed reasons follow in order. */
const COUNTER_DNS_MAP_FULL = 10;
const COUNTER_DNS_PENDING_FULL = 11;
const COUNTER_DNS_MALFORMED = 12;
/** Maps of the DNS tracker that exist only while it is on: sized to one entry when it is off. */
const DNS_PENDING_MAP = 'flowtap_dns_pending';
const DNS_TCP_MAP = 'flowtap_dns_tcp';
/** sizeof(struct __sk_buff), and where its `ifindex` is: a test run's context picks the device. */
const SK_BUFF_CTX_BYTES = 192;
const SK_BUFF_CTX_IFINDEX = 40;

/** How the kernel keeps flow counters: one hash per CPU (no atomics) or one shared hash (atomic adds). */
export type FlowMapKind = 'percpu' | 'shared';

/** Kernel-side counters (indexes of `enum flowtap_counter`), summed over CPUs. */
export interface DatapathCounters {
  /** Packets sent to user space through the ring buffer because the flow map could not take them. */
  ringBufferFallbacks: number;
  /** Flow-map inserts that failed (map full, or out of memory). */
  mapUpdateFailures: number;
  /** Fallbacks that found the ring buffer full: the only packets flowtap loses. */
  ringBufferLost: number;
  /** Packets with truncated or invalid headers (docs/flow-key.md), counted in no flow. */
  parseErrors: number;
  /** Packets skipped by 1/N sampling (global or a filter rule's). */
  sampledOut: number;
  /** Packets a filter accepted (counted only while one is installed). */
  filterAccepted: number;
  /** Packets a filter rejected: parsed and tested, counted in no flow. */
  filterRejected: number;
  /**
   * Packets met on an interface their flow's full crossed list (FLOWTAP_MAX_CROSSED) could not
   * take: counted once as always, the interface is missing from the flow's list.
   */
  crossedOverflow: number;
  /**
   * Health events (RTT samples, drops, retransmissions, handshake times) lost because the health
   * map was full; the flows themselves are counted as always.
   */
  healthMapFull: number;
  /** Drops of packets without an IP header a flow key can be built from (not IP, or truncated). */
  healthUnkeyed: number;
  /** DNS messages lost because their flow had no section and the DNS map was full. */
  dnsMapFull: number;
  /** DNS queries counted but never timed: the pending-query map was full. */
  dnsPendingFull: number;
  /**
   * Malformed DNS messages by reason, indexed as DNS_MALFORMED_REASONS (index 0, `ok`, is
   * always 0).
   */
  dnsMalformed: readonly number[];
}

/** What to load. */
export interface FlowObjectOptions {
  /** Count one packet in `sampling` (1 = all). */
  sampling: number;
  /** Entries of each kernel flow map. */
  maxFlows: number;
  /** Ring buffer size: a power of two, at least one page. */
  ringBufferBytes: number;
  /** Per-CPU or shared flow map. */
  mapKind: FlowMapKind;
  /** One entry per packet across interfaces, counted where first seen (default true). */
  dedup?: boolean;
  /** Key tunnelled packets by the packet inside (default false). */
  tunnels?: boolean;
  /** Time TCP handshakes into the health map (default false; needs `healthMapFd`). */
  handshake?: boolean;
  /** Fd of the health map slot (SectionMaps.outerFd) the programs share; none when health is off. */
  healthMapFd?: number;
  /**
   * DNS tracking (ENABLE_DNS_TRACKING): the ports whose packets are DNS (DNS_TRACKING_PORT) and
   * the DNS map slot (SectionMaps.outerFd) the programs write; off when absent.
   */
  dns?: { readonly ports: readonly number[]; readonly mapFd: number };
  /** Compiled object to load; the committed one by default. */
  objectPath?: string;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Validates `opts` before anything touches the kernel (sampling, sizes), throwing `ConfigError`. */
export function checkFlowObjectOptions(opts: FlowObjectOptions, pageBytes = 4096): void {
  if (!Number.isInteger(opts.sampling) || opts.sampling < 1 || opts.sampling > 0xffffffff) {
    throw new ConfigError(
      'sampling',
      String(opts.sampling),
      'an integer from 1 (every packet) to 4294967295',
    );
  }
  if (!Number.isInteger(opts.maxFlows) || opts.maxFlows < 1 || opts.maxFlows > 1 << 24) {
    throw new ConfigError('maxFlows', String(opts.maxFlows), 'an integer from 1 to 16777216');
  }
  if (
    !isPowerOfTwo(opts.ringBufferBytes) ||
    opts.ringBufferBytes < pageBytes ||
    opts.ringBufferBytes > 1 << 30
  ) {
    throw new ConfigError(
      'ringBufferBytes',
      String(opts.ringBufferBytes),
      `a power of two from ${pageBytes} (one page) to 1073741824`,
    );
  }
}

/** bpf/flows.bpf.o loaded into the kernel. */
export class FlowObject {
  /** Number of CPU slots in per-CPU map values. */
  readonly possibleCpus: number;
  /** Bytes of one value of a flow map as the lookup syscalls return it (per-CPU: one slot per CPU). */
  readonly flowValueBytes: number;
  #obj: bigint | null;
  readonly #flowMapFds: [number, number];
  #active = 0;

  private constructor(
    obj: bigint,
    flowMapFds: [number, number],
    /** The options it was loaded with. */
    readonly options: Readonly<FlowObjectOptions>,
    /** Program fd of `flowtap_ingress`. */
    readonly ingressFd: number,
    /** Program fd of `flowtap_egress`. */
    readonly egressFd: number,
    /** Map fd of the ring buffer. */
    readonly ringBufferFd: number,
    /** Map fd of the one-slot array holding the flow map in use. */
    readonly outerFd: number,
    /** Map fd of the per-CPU counters. */
    readonly countersFd: number,
    /** The filter the programs run before counting (none until one is installed). */
    readonly filter: DatapathFilter,
  ) {
    this.#obj = obj;
    this.#flowMapFds = flowMapFds;
    this.possibleCpus = libbpf().numPossibleCpus();
    this.flowValueBytes =
      options.mapKind === 'percpu' ? V2_METRICS_BYTES * this.possibleCpus : V2_METRICS_BYTES;
  }

  /** Opens, configures and loads the object. The caller checks privileges and features first. */
  static load(opts: FlowObjectOptions): FlowObject {
    const lib = libbpf();
    checkFlowObjectOptions(opts, lib.getpagesize());
    const path = opts.objectPath ?? FLOWS_OBJECT_PATH;
    const obj: bigint | null = lib.objectOpenFile(path, null);
    if (!obj) {
      throw new InputError(
        `cannot open the eBPF object ${path} (${lastErrno()}): reinstall flowtap or rebuild it with npm run build:bpf`,
      );
    }
    const created: number[] = [];
    try {
      const mapType = opts.mapKind === 'percpu' ? BpfMapType.PERCPU_HASH : BpfMapType.HASH;
      for (const name of ['flowtap_flows_a', 'flowtap_flows_b']) {
        const fd = lib.mapCreate(
          mapType,
          name,
          V2_KEY_BYTES,
          V2_METRICS_BYTES,
          opts.maxFlows,
          mapCreateOpts(),
        );
        if (fd < 0) throw kernelError(`creating the ${opts.maxFlows}-entry flow map`, fd);
        created.push(fd);
      }
      const outer = findMap(obj, OUTER_MAP);
      check(lib.mapSetInnerMapFd(outer, created[0]), 'preparing the flow map slot');
      check(lib.mapSetMaxEntries(findMap(obj, RINGBUF_MAP), opts.ringBufferBytes), 'sizing the ring buffer');
      const config = Buffer.alloc(CONFIG_BYTES);
      config.writeUInt32LE(opts.sampling, 0);
      config.writeUInt32LE(opts.mapKind === 'shared' ? 1 : 0, 4);
      config.writeUInt32LE(opts.dedup === false ? 0 : 1, 8);
      config.writeUInt32LE(opts.tunnels ? 1 : 0, 12);
      config.writeUInt32LE(lib.numPossibleCpus(), 16);
      config.writeUInt32LE(opts.handshake && opts.healthMapFd !== undefined ? 1 : 0, 20);
      if (opts.healthMapFd !== undefined) {
        check(lib.mapReuseFd(findMap(obj, HEALTH_MAP), opts.healthMapFd), 'sharing the health map');
      }
      if (opts.dns !== undefined) {
        config.writeUInt32LE(1, CONFIG_DNS);
        writeDnsPortBitmap(config, CONFIG_DNS_PORTS, opts.dns.ports);
        check(lib.mapReuseFd(findMap(obj, DNS_MAP), opts.dns.mapFd), 'sharing the DNS map');
      } else {
        // The code is gone with the switch off; its preallocated maps need not take memory.
        for (const name of [DNS_PENDING_MAP, DNS_TCP_MAP]) {
          check(lib.mapSetMaxEntries(findMap(obj, name), 1), 'sizing the unused DNS maps');
        }
      }
      check(
        lib.mapSetInitialValue(findMap(obj, RODATA_MAP), config, CONFIG_BYTES),
        'setting the datapath constants',
      );
      check(lib.objectLoad(obj), `loading ${path}`);
      const self = new FlowObject(
        obj,
        [created[0], created[1]],
        Object.freeze({ ...opts }),
        programFd(obj, INGRESS_PROGRAM),
        programFd(obj, EGRESS_PROGRAM),
        lib.mapFd(findMap(obj, RINGBUF_MAP)),
        lib.mapFd(outer),
        lib.mapFd(findMap(obj, COUNTERS_MAP)),
        new DatapathFilter(
          lib.mapFd(findMap(obj, FILTER_PROGRAMS_MAP)),
          lib.mapFd(findMap(obj, FILTER_ACTIVE_MAP)),
          lib.mapFd(findMap(obj, FILTER_PREFIXES_MAP)),
        ),
      );
      self.#install(0);
      return self;
    } catch (err) {
      for (const fd of created) lib.close(fd);
      lib.objectClose(obj);
      throw err;
    }
  }

  /** Fd of the flow map the programs are writing now. */
  get activeFlowMapFd(): number {
    return this.#flowMapFds[this.#active];
  }

  /**
   * Points the programs at the other flow map and returns the fd of the one they used before.
   * The kernel returns from this update only after an RCU grace period, so no program still
   * writes the returned map: it can be drained without racing a counter update.
   */
  swapFlowMaps(): number {
    const previous = this.#active;
    this.#install(1 - previous);
    return this.#flowMapFds[previous];
  }

  #install(index: number): void {
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(4);
    value.writeUInt32LE(this.#flowMapFds[index], 0);
    check(libbpf().mapUpdateElem(this.outerFd, key, value, 0n), 'switching the flow map');
    this.#active = index;
  }

  /** The kernel counters summed over CPUs. */
  readCounters(): DatapathCounters {
    const lib = libbpf();
    const key = Buffer.alloc(4);
    const value = Buffer.alloc(8 * this.possibleCpus);
    const sums: number[] = [];
    for (let i = 0; i < COUNTER_COUNT; i++) {
      key.writeUInt32LE(i, 0);
      check(lib.mapLookupElem(this.countersFd, key, value), 'reading the datapath counters');
      let sum = 0;
      for (let cpu = 0; cpu < this.possibleCpus; cpu++) sum += Number(value.readBigUInt64LE(cpu * 8));
      sums.push(sum);
    }
    return {
      ringBufferFallbacks: sums[0],
      mapUpdateFailures: sums[1],
      ringBufferLost: sums[2],
      parseErrors: sums[3],
      sampledOut: sums[4],
      filterAccepted: sums[5],
      filterRejected: sums[6],
      crossedOverflow: sums[7],
      healthMapFull: sums[8],
      healthUnkeyed: sums[9],
      dnsMapFull: sums[COUNTER_DNS_MAP_FULL],
      dnsPendingFull: sums[COUNTER_DNS_PENDING_FULL],
      dnsMalformed: [0, ...sums.slice(COUNTER_DNS_MALFORMED, COUNTER_COUNT)],
    };
  }

  /** Fd of the pending-query map (struct flow_dns_query_key -> struct flow_dns_pending). */
  get dnsPendingFd(): number {
    if (this.#obj === null) throw new InputError('the datapath is closed');
    return libbpf().mapFd(findMap(this.#obj, DNS_PENDING_MAP));
  }

  /**
   * Runs `frame` (a whole Ethernet frame) through one program with BPF_PROG_TEST_RUN, as if it
   * passed the loopback interface (or the interface `ifIndex`, which must exist), on the calling
   * thread's CPU, and returns the program's verdict. Counting happens as for a real packet, so
   * this checks the parser against known frames without sending anything.
   */
  testRun(direction: 'ingress' | 'egress', frame: Buffer, ifIndex?: number): number {
    return this.#testRun(direction, frame, 1, ifIndex).retval;
  }

  /**
   * Runs `frame` through one program `repeat` times with BPF_PROG_TEST_RUN and returns the
   * kernel's mean time per run in nanoseconds: the program's own cost, for benchmarks.
   */
  testRunNsPerPacket(direction: 'ingress' | 'egress', frame: Buffer, repeat: number): number {
    return this.#testRun(direction, frame, repeat).duration;
  }

  #testRun(
    direction: 'ingress' | 'egress',
    frame: Buffer,
    repeat: number,
    ifIndex?: number,
  ): { retval: number; duration: number } {
    const lib = libbpf();
    let ctx: Buffer | null = null;
    if (ifIndex !== undefined) {
      ctx = Buffer.alloc(SK_BUFF_CTX_BYTES);
      ctx.writeUInt32LE(ifIndex, SK_BUFF_CTX_IFINDEX);
    }
    const opts = {
      sz: koffi.sizeof(lib.testRunOptsType),
      data_in: frame,
      data_out: null,
      data_size_in: frame.length,
      data_size_out: 0,
      ctx_in: ctx,
      ctx_out: null,
      ctx_size_in: ctx === null ? 0 : ctx.length,
      ctx_size_out: 0,
      retval: 0,
      repeat,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    const fd = direction === 'ingress' ? this.ingressFd : this.egressFd;
    check(
      lib.progTestRun(fd, opts),
      `test-running ${direction === 'ingress' ? INGRESS_PROGRAM : EGRESS_PROGRAM}`,
    );
    return { retval: opts.retval | 0, duration: opts.duration };
  }

  /** Whether `close()` has run. */
  get closed(): boolean {
    return this.#obj === null;
  }

  /** Releases programs, maps and the object (links and filters must be released first). */
  close(): void {
    if (this.#obj === null) return;
    const lib = libbpf();
    lib.objectClose(this.#obj);
    for (const fd of this.#flowMapFds) lib.close(fd);
    this.#obj = null;
  }
}

/** Sets bit (port & 31) of word port >> 5 of the bitmap at `at` of `config` for each port. */
function writeDnsPortBitmap(config: Buffer, at: number, ports: readonly number[]): void {
  for (const port of ports) {
    const word = at + 4 * (port >>> 5);
    config.writeUInt32LE((config.readUInt32LE(word) | (1 << (port & 31))) >>> 0, word);
  }
}

function findMap(obj: bigint, name: string): bigint {
  const map: bigint | null = libbpf().objectFindMap(obj, name);
  if (!map) {
    throw new InputError(
      `the eBPF object has no map ${name}: it does not match this flowtap; rebuild with npm run build:bpf`,
    );
  }
  return map;
}

function programFd(obj: bigint, name: string): number {
  const prog: bigint | null = libbpf().objectFindProgram(obj, name);
  if (!prog) {
    throw new InputError(
      `the eBPF object has no program ${name}: it does not match this flowtap; rebuild with npm run build:bpf`,
    );
  }
  return libbpf().programFd(prog);
}

function check(result: number, operation: string): void {
  if (result < 0) throw kernelError(operation, result);
}

const BPF_STATS_RUN_TIME = 0;
const PROG_INFO_BYTES = 232;
const PROG_INFO_RUN_TIME_NS = 192;
const PROG_INFO_RUN_COUNT = 200;

/** Run time the kernel accounted to a program while statistics were enabled. */
export interface ProgramRunStats {
  /** Total nanoseconds spent in the program. */
  runTimeNs: number;
  /** Number of runs. */
  runs: number;
}

/**
 * Turns on the kernel's per-program run-time accounting until the returned function is called
 * (BPF_ENABLE_STATS; it costs a little per run, so only benchmarks and diagnostics use it).
 */
export function enableProgramStats(): () => void {
  const fd: number = libbpf().enableStats(BPF_STATS_RUN_TIME);
  if (fd < 0) throw kernelError('enabling eBPF run-time statistics', fd);
  return () => libbpf().close(fd);
}

/** Run time and run count of the program `progFd` (zero unless statistics are enabled). */
export function programRunStats(progFd: number): ProgramRunStats {
  const info = Buffer.alloc(PROG_INFO_BYTES);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(PROG_INFO_BYTES, 0);
  check(libbpf().objGetInfoByFd(progFd, info, len), 'reading program statistics');
  return {
    runTimeNs: Number(info.readBigUInt64LE(PROG_INFO_RUN_TIME_NS)),
    runs: Number(info.readBigUInt64LE(PROG_INFO_RUN_COUNT)),
  };
}
