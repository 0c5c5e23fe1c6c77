/**
 * What the running kernel and process can do for live capture, probed once per process
 * (cilium/ebpf `internal/feature`). `requireLiveCapture()` turns a missing piece into one
 * message naming what is missing and what to do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { NotSupportedError, PermissionError } from '../errors.ts';
import { VMLINUX_BTF_PATH } from './btf.ts';
import { PRIVILEGE_ADVICE } from './kernel-error.ts';
import { BpfAttachType, BpfMapType, libbpf } from './libbpf.ts';

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;
const LOOPBACK_IFINDEX = 1;

/** What the kernel offers flowtap's datapath. */
export interface KernelFeatures {
  /** TCX links (Linux 6.6+): attach without a qdisc, released when flowtap's process ends. */
  readonly tcx: boolean;
  /** BPF ring buffers (Linux 5.8+). */
  readonly ringBuffer: boolean;
  /** The kernel's own BTF is exposed at {@link VMLINUX_BTF_PATH}. */
  readonly btf: boolean;
  /**
   * bpf_loop and bpf_map_lookup_percpu_elem for TC programs (Linux 5.19+): a per-CPU flow map in
   * dedup mode needs them to learn a flow's counting interface from another CPU's slot; without
   * them the capture uses the shared map.
   */
  readonly perCpuDedup: boolean;
}

const BPF_PROG_TYPE_SCHED_CLS = 3;
const BPF_FUNC_LOOP = 181;
const BPF_FUNC_MAP_LOOKUP_PERCPU_ELEM = 195;

/**
 * Checks an effective capability set (the hex `CapEff` of /proc/PID/status): live capture needs
 * CAP_NET_ADMIN, and CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN, which implies both).
 */
export function requireCapabilities(capEffHex: string): void {
  const caps = BigInt(`0x${capEffHex.trim() || '0'}`);
  const has = (cap: bigint) => (caps & (1n << cap)) !== 0n;
  const missing: string[] = [];
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) missing.push('CAP_BPF', 'CAP_PERFMON');
  if (!has(CAP_NET_ADMIN)) missing.push('CAP_NET_ADMIN');
  if (missing.length > 0) {
    throw new PermissionError(
      `live capture needs ${missing.join(' and ')}, which this process lacks: ${PRIVILEGE_ADVICE}`,
    );
  }
}

/** Throws `NotSupportedError` naming the first feature in `features` that live capture lacks. */
export function requireKernelFeatures(features: KernelFeatures): void {
  if (!features.btf) {
    throw new NotSupportedError(
      'BTF',
      `the kernel exposes no BTF (${VMLINUX_BTF_PATH} is missing): live capture needs a kernel built with ` +
        'CONFIG_DEBUG_INFO_BTF=y (Linux 5.8+ as shipped by current distributions), or use pcap mode: flowtap read FILE',
    );
  }
  if (!features.ringBuffer) {
    throw new NotSupportedError(
      'BPF ring buffer',
      'the kernel has no BPF ring buffer: live capture needs Linux 5.8 or later, or use pcap mode: flowtap read FILE',
    );
  }
}

function capEffOfSelf(): string {
  const status = readFileSync('/proc/self/status', 'utf8');
  return /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
}

function probeTcx(): boolean {
  const count = Buffer.alloc(4);
  // A kernel without TCX rejects the attach type with EINVAL; with it the query just succeeds.
  return libbpf().progQuery(LOOPBACK_IFINDEX, BpfAttachType.TCX_INGRESS, 0, null, null, count) === 0;
}

let probed: KernelFeatures | undefined;

/** The running kernel's features, probed on first call only. */
export function kernelFeatures(): KernelFeatures {
  probed ??= Object.freeze({
    tcx: probeTcx(),
    ringBuffer: libbpf().probeMapType(BpfMapType.RINGBUF, null) === 1,
    btf: existsSync(VMLINUX_BTF_PATH),
    perCpuDedup:
      libbpf().probeHelper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_LOOP, null) === 1 &&
      libbpf().probeHelper(BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_MAP_LOOKUP_PERCPU_ELEM, null) === 1,
  });
  return probed;
}

/** Throws the typed error saying what live capture lacks here: privileges first, then features. */
export function requireLiveCapture(): KernelFeatures {
  requireCapabilities(capEffOfSelf());
  const features = kernelFeatures();
  requireKernelFeatures(features);
  return features;
}
