/**
 * What the datapath costs in kernel memory, worked out before anything is loaded: the two flow
 * maps user space swaps (both preallocated, so their full size is taken at load), the ring buffer
 * and the counters. One function computes it; the capture refuses a setting over the budget with
 * a ConfigError instead of letting the kernel fail the load with ENOMEM.
 *
 * The figures follow the kernel's own accounting (`memlock` in /proc/PID/fdinfo, from
 * htab_map_mem_usage and ringbuf_map_mem_usage in kernel/bpf/): for a preallocated hash map of
 * E entries on C possible CPUs,
 *   elements  E' x (48 B struct htab_elem + 64 B key + value part),  E' = E (+ C spare elements
 *             for a shared hash), value part = the 40 B value (shared) or a per-CPU pointer (8 B);
 *   per-CPU   E x C x 40 B values (per-CPU hash only);
 *   buckets   roundup_pow_of_two(E) x 16 B;
 *   fixed     the map struct and per-CPU locks (under 1 KiB).
 * With TCP health on, the two health maps (allocated as entries arrive, BPF_F_NO_PREALLOC: the
 * budget counts them full, 48 B element + 64 B key + 88 B value + an 8 B list node each, plus
 * buckets) and, with ENABLE_RTT, the TC pair's preallocated LRU of pending handshakes.
 * test/ebpf/kernel-memory.test.ts checks the estimate against what the kernel reports.
 */
import {
  DNS_PENDING_BYTES,
  DNS_QUERY_KEY_BYTES,
  DnsLimit,
  V2_DNS_BYTES,
  V2_HEALTH_BYTES,
  V2_KEY_BYTES,
  V2_METRICS_BYTES,
} from '../codec/v2-layout.ts';
import { ConfigError } from '../errors.ts';
import { humanBytes } from '../model/names.ts';
import type { FlowMapKind } from './object.ts';

/** How the flow map kind is picked: by CPU count (`auto`), or forced. */
export type FlowMapKindSetting = 'auto' | FlowMapKind;

/**
 * From this many possible CPUs on, `auto` picks the shared hash (atomic adds) over the per-CPU one.
 * A per-CPU entry costs 136 + 120 x C bytes against 248 for a shared one, and every drain copies
 * and merges C value slots per flow: at 8 CPUs that is 4.4 x the memory and 8 x the drain work of
 * the shared map, while the shared map's atomic adds only cost more when one flow's packets hit
 * several CPUs at once (RSS keeps a flow on one CPU). Below 8 the per-CPU map's lock-free adds are
 * worth its memory; from 8 on its memory and drain cost grow faster than contention can cost.
 */
export const SHARED_MAP_MIN_CPUS = 8;

/** Default of KERNEL_MEMORY_MAX: room for the 16 MiB ring buffer and a few hundred thousand flows. */
export const DEFAULT_KERNEL_MEMORY_MAX_BYTES = 256 * 2 ** 20;

/** Flow maps user space keeps: one the programs write, one being drained (see FlowObject). */
export const FLOW_MAP_COUNT = 2;

const HTAB_ELEM_BYTES = 48;
const HTAB_BUCKET_BYTES = 16;
const HTAB_POINTER_BYTES = 8;
/** struct bpf_htab and its per-CPU lock counters (8 ints per CPU): small, counted for exactness. */
const HTAB_FIXED_BYTES = 896;
const HTAB_LOCK_BYTES_PER_CPU = 8 * 4;
const PAGE_BYTES = 4096;
/** Ring buffer: header and producer/consumer pages, the map struct, one page pointer per page mapped. */
const RINGBUF_META_PAGES = 3;
const RINGBUF_FIXED_BYTES = 304;
/** The per-CPU counters array (enum flowtap_counter) and the one-slot outer map: a rough allowance. */
const COUNTERS_BYTES_PER_CPU = 5 * 8;
const SMALL_MAPS_FIXED_BYTES = 2048;
/** A run-time allocated hash element's list node (bpf_mem_alloc), on top of the element. */
const HTAB_LLIST_NODE_BYTES = 8;
/** HANDSHAKE_PENDING_ENTRIES of bpf/flows.bpf.c: entries of the LRU of pending handshakes. */
export const HANDSHAKE_PENDING_ENTRIES = 4096;
/** sizeof(struct handshake_pending) of bpf/flows.bpf.c. */
export const HANDSHAKE_PENDING_VALUE_BYTES = 32;
/** Health maps user space keeps: one the programs write, one being drained (see SectionMaps); as many DNS maps. */
export const HEALTH_MAP_COUNT = 2;

/** What a datapath setting costs in kernel memory, in bytes. */
export interface KernelMemory {
  /** The flow map kind the figure is for. */
  mapKind: FlowMapKind;
  /** Possible CPUs the per-CPU parts are multiplied by. */
  possibleCpus: number;
  /** One flow map (there are {@link FLOW_MAP_COUNT}). */
  flowMapBytes: number;
  /** The ring buffer with its metadata. */
  ringBufferBytes: number;
  /** One health map, full (there are {@link HEALTH_MAP_COUNT}); 0 with TCP health off. */
  healthMapBytes: number;
  /** The LRU of pending TCP handshakes (ENABLE_RTT); 0 without it. */
  handshakeMapBytes: number;
  /**
   * DNS tracking (ENABLE_DNS_TRACKING): its two DNS maps full, the pending-query map and the TCP
   * stream LRU; 0 without it.
   */
  dnsBytes: number;
  /** Counters and the outer map. */
  otherBytes: number;
  /** Everything together. */
  totalBytes: number;
}

/** What {@link kernelMemory} needs. */
export interface KernelMemoryInput {
  /** Entries of each flow map (CACHE_MAX_FLOWS). */
  maxFlows: number;
  /** Ring buffer data size, a power of two. */
  ringBufferBytes: number;
  /** Possible CPUs (not only online ones: per-CPU memory is allocated for each). */
  possibleCpus: number;
  mapKind: FlowMapKind;
  /** TCP health on: the health maps exist, of {@link healthMapEntries} entries each. */
  health?: boolean;
  /** Handshake times on (ENABLE_RTT): the TC pair keeps pending handshakes. */
  handshake?: boolean;
  /** DNS tracking on: the DNS maps ({@link healthMapEntries} entries each) and the pending queries. */
  dns?: boolean;
}

function roundUpPowerOfTwo(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/** Bytes of one preallocated flow hash map of `maxFlows` entries on `possibleCpus` CPUs. */
export function flowMapBytes(maxFlows: number, possibleCpus: number, mapKind: FlowMapKind): number {
  const valuePart = mapKind === 'percpu' ? HTAB_POINTER_BYTES : V2_METRICS_BYTES;
  const elements = mapKind === 'percpu' ? maxFlows : maxFlows + possibleCpus; // spare elements
  let bytes = HTAB_FIXED_BYTES + HTAB_LOCK_BYTES_PER_CPU * possibleCpus;
  bytes += roundUpPowerOfTwo(maxFlows) * HTAB_BUCKET_BYTES;
  bytes += elements * (HTAB_ELEM_BYTES + V2_KEY_BYTES + valuePart);
  if (mapKind === 'percpu') bytes += maxFlows * possibleCpus * V2_METRICS_BYTES;
  else bytes += possibleCpus * HTAB_POINTER_BYTES; // one spare-element pointer per CPU
  return bytes;
}

/**
 * Health entries per flow-map entry: most flows never have a health event (only TCP flows have
 * RTT samples; drops and retransmissions are the exception), so each health map holds a quarter
 * of CACHE_MAX_FLOWS; beyond it, events are counted as healthMapFull.
 */
export const HEALTH_ENTRIES_PER_FLOW = 1 / 4;
/** The fewest entries a health map gets, whatever CACHE_MAX_FLOWS. */
export const MIN_HEALTH_ENTRIES = 1024;

/** Entries of each health map for flow maps of `maxFlows`. */
export function healthMapEntries(maxFlows: number): number {
  return Math.max(MIN_HEALTH_ENTRIES, Math.ceil(maxFlows * HEALTH_ENTRIES_PER_FLOW));
}

/** Bytes of one health map of `entries` entries when full (its entries are allocated as they arrive). */
export function healthMapBytes(entries: number): number {
  if (entries === 0) return 0;
  const element = HTAB_ELEM_BYTES + V2_KEY_BYTES + V2_HEALTH_BYTES + HTAB_LLIST_NODE_BYTES;
  return HTAB_FIXED_BYTES + roundUpPowerOfTwo(entries) * HTAB_BUCKET_BYTES + entries * element;
}

/** Bytes of the preallocated LRU hash of pending handshakes. */
export function handshakeMapBytes(): number {
  const element = HTAB_ELEM_BYTES + V2_KEY_BYTES + HANDSHAKE_PENDING_VALUE_BYTES;
  return (
    HTAB_FIXED_BYTES +
    roundUpPowerOfTwo(HANDSHAKE_PENDING_ENTRIES) * HTAB_BUCKET_BYTES +
    HANDSHAKE_PENDING_ENTRIES * element
  );
}

/**
 * Bytes of DNS tracking with DNS maps of `entries`: both DNS maps full, the preallocated
 * pending-query hash (FLOWTAP_DNS_PENDING_MAX) and TCP stream LRU of as many entries.
 */
export function dnsMapsBytes(entries: number): number {
  const section = HTAB_ELEM_BYTES + V2_KEY_BYTES + V2_DNS_BYTES + HTAB_LLIST_NODE_BYTES;
  const sections = HTAB_FIXED_BYTES + roundUpPowerOfTwo(entries) * HTAB_BUCKET_BYTES + entries * section;
  const pendingMax = DnsLimit.PENDING_MAX;
  const fixed = HTAB_FIXED_BYTES + roundUpPowerOfTwo(pendingMax) * HTAB_BUCKET_BYTES;
  const pending = fixed + pendingMax * (HTAB_ELEM_BYTES + DNS_QUERY_KEY_BYTES + DNS_PENDING_BYTES);
  const streams = fixed + pendingMax * (HTAB_ELEM_BYTES + DNS_QUERY_KEY_BYTES + 8);
  return HEALTH_MAP_COUNT * sections + pending + streams;
}

/** Bytes the kernel takes for a ring buffer of `dataBytes`. */
export function ringBufferMemoryBytes(dataBytes: number): number {
  const dataPages = Math.ceil(dataBytes / PAGE_BYTES);
  return (
    RINGBUF_FIXED_BYTES +
    (RINGBUF_META_PAGES + dataPages) * PAGE_BYTES +
    // the data pages are mapped twice in a row, so the page array lists them twice
    (RINGBUF_META_PAGES + 2 * dataPages) * HTAB_POINTER_BYTES
  );
}

/** The kernel memory the datapath needs for `input`: both flow maps, the ring buffer, the counters. */
export function kernelMemory(input: KernelMemoryInput): KernelMemory {
  const map = flowMapBytes(input.maxFlows, input.possibleCpus, input.mapKind);
  const ring = ringBufferMemoryBytes(input.ringBufferBytes);
  const other = SMALL_MAPS_FIXED_BYTES + COUNTERS_BYTES_PER_CPU * input.possibleCpus;
  const health = input.health ? healthMapBytes(healthMapEntries(input.maxFlows)) : 0;
  const handshake = input.handshake ? handshakeMapBytes() : 0;
  const dns = input.dns ? dnsMapsBytes(healthMapEntries(input.maxFlows)) : 0;
  return {
    mapKind: input.mapKind,
    possibleCpus: input.possibleCpus,
    flowMapBytes: map,
    ringBufferBytes: ring,
    healthMapBytes: health,
    handshakeMapBytes: handshake,
    dnsBytes: dns,
    otherBytes: other,
    totalBytes: FLOW_MAP_COUNT * map + ring + HEALTH_MAP_COUNT * health + handshake + dns + other,
  };
}

/** The map kind `setting` means on a host with `possibleCpus` CPUs. */
export function resolveFlowMapKind(setting: FlowMapKindSetting, possibleCpus: number): FlowMapKind {
  if (setting !== 'auto') return setting;
  return possibleCpus >= SHARED_MAP_MIN_CPUS ? 'shared' : 'percpu';
}

/** What {@link planKernelMemory} needs: the sizes, the map kind setting and the budget. */
export interface KernelMemoryPlanInput extends Omit<KernelMemoryInput, 'mapKind'> {
  mapKind: FlowMapKindSetting;
  /** KERNEL_MEMORY_MAX in bytes. */
  maxBytes: number;
}

/** Most flows per map that fit `maxBytes` with the other sizes of `input`; 0 when none do. */
function maxFlowsWithin(input: KernelMemoryInput, maxBytes: number): number {
  let low = 0;
  let high = 1 << 24;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (kernelMemory({ ...input, maxFlows: mid }).totalBytes <= maxBytes) low = mid;
    else high = mid - 1;
  }
  return low;
}

/**
 * Picks the flow map kind and checks the datapath fits `maxBytes`. Throws ConfigError naming the
 * figure, the most flows that would fit, and the settings that change it.
 */
export function planKernelMemory(input: KernelMemoryPlanInput): KernelMemory {
  const mapKind = resolveFlowMapKind(input.mapKind, input.possibleCpus);
  const sized: KernelMemoryInput = { ...input, mapKind };
  const memory = kernelMemory(sized);
  if (memory.totalBytes <= input.maxBytes) return memory;
  const fits = maxFlowsWithin(sized, input.maxBytes);
  const shared = { ...sized, mapKind: 'shared' as const };
  const sharedHint =
    mapKind === 'percpu' && kernelMemory(shared).totalBytes <= input.maxBytes
      ? `, or KERNEL_MAP_KIND=shared (${humanBytes(kernelMemory(shared).totalBytes)})`
      : '';
  throw new ConfigError(
    'CACHE_MAX_FLOWS',
    String(input.maxFlows),
    `a flow count whose kernel maps fit KERNEL_MEMORY_MAX=${humanBytes(input.maxBytes)}: ` +
      `${input.maxFlows} flows need ${humanBytes(memory.totalBytes)} of kernel memory ` +
      `(${FLOW_MAP_COUNT} ${mapKind} flow maps of ${humanBytes(memory.flowMapBytes)} on ` +
      `${input.possibleCpus} CPUs, ring buffer ${humanBytes(memory.ringBufferBytes)}` +
      (memory.healthMapBytes > 0
        ? `, ${HEALTH_MAP_COUNT} health maps of ${humanBytes(memory.healthMapBytes)} at most`
        : '') +
      '); ' +
      `lower CACHE_MAX_FLOWS to ${fits} or less, or raise KERNEL_MEMORY_MAX (--kernel-memory-max)` +
      sharedHint,
  );
}
