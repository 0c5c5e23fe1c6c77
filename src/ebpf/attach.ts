/**
 * Attaching the datapath programs to one interface and releasing them again.
 *
 * - TCX links (Linux 6.6+): one link per direction, never pinned, so the kernel releases them
 *   when flowtap's process ends, even on a crash: nothing can be left behind.
 * - clsact (older kernels): a tc filter per direction at flowtap's own handle and priority. The
 *   clsact qdisc is created only if absent and removed on detach only if flowtap created it.
 *   Filters left by a crashed run are recognised by their program name (`flowtap_…`) at that
 *   handle and priority and replaced or removed before anything else happens.
 */
import { constants } from 'node:os';
import { InterfaceError } from '../errors.ts';
import { kernelError } from './kernel-error.ts';
import {
  BPF_TC_F_REPLACE,
  BpfAttachType,
  libbpf,
  TcAttachPoint,
  tcHook,
  tcOpts,
  tcOptsProgId,
} from './libbpf.ts';
import { FLOWTAP_NAME_PREFIX } from './object.ts';

/** How programs are attached: TCX links, or filters on a clsact qdisc. */
export type AttachMode = 'tcx' | 'clsact';

/** Handle of flowtap's tc filters (clsact mode); with the priority it identifies them. */
export const FLOWTAP_TC_HANDLE = 0xf1044;
/** Priority of flowtap's tc filters (clsact mode). */
export const FLOWTAP_TC_PRIORITY = 0xf104;

const PROG_INFO_BYTES = 80;
const PROG_INFO_NAME_OFFSET = 64;
const PROG_NAME_BYTES = 16;

/** Program fds to attach; a direction without one is not attached. */
export interface DirectionPrograms {
  /** Program for packets arriving on the interface. */
  ingressFd?: number;
  /** Program for packets leaving the interface. */
  egressFd?: number;
}

/** The name of kernel program `id`, or undefined when it is gone. */
function programName(id: number): string | undefined {
  const lib = libbpf();
  const fd: number = lib.progGetFdById(id);
  if (fd < 0) return undefined;
  try {
    const info = Buffer.alloc(PROG_INFO_BYTES);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(PROG_INFO_BYTES, 0);
    if (lib.objGetInfoByFd(fd, info, len) < 0) return undefined;
    const name = info.subarray(PROG_INFO_NAME_OFFSET, PROG_INFO_NAME_OFFSET + PROG_NAME_BYTES);
    const end = name.indexOf(0);
    return name.toString('latin1', 0, end < 0 ? PROG_NAME_BYTES : end);
  } finally {
    lib.close(fd);
  }
}

/** Id of the program in flowtap's filter slot of `ifIndex` at `point`, or 0 when the slot is empty. */
function filterProgramId(ifIndex: number, point: number): number {
  const opts = tcOpts({ handle: FLOWTAP_TC_HANDLE, priority: FLOWTAP_TC_PRIORITY });
  if (libbpf().tcQuery(tcHook(ifIndex, point), opts) < 0) return 0;
  return tcOptsProgId(opts);
}

const MAX_QUERIED_PROGRAMS = 64;

function tcxProgramIds(ifIndex: number, attachType: number): number[] {
  const ids = Buffer.alloc(4 * MAX_QUERIED_PROGRAMS);
  const count = Buffer.alloc(4);
  count.writeUInt32LE(MAX_QUERIED_PROGRAMS, 0);
  if (libbpf().progQuery(ifIndex, attachType, 0, null, ids, count) < 0) return [];
  const n = Math.min(count.readUInt32LE(0), MAX_QUERIED_PROGRAMS);
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(4 * i));
}

/**
 * Names of the programs attached to `ifIndex` through TCX (any) and in flowtap's tc filter slot,
 * ingress first: what `flowtap` would find there, for diagnostics and leftover checks.
 */
export function attachedProgramNames(ifIndex: number): string[] {
  const ids = [
    ...tcxProgramIds(ifIndex, BpfAttachType.TCX_INGRESS),
    filterProgramId(ifIndex, TcAttachPoint.INGRESS),
    ...tcxProgramIds(ifIndex, BpfAttachType.TCX_EGRESS),
    filterProgramId(ifIndex, TcAttachPoint.EGRESS),
  ];
  return ids.filter((id) => id !== 0).map((id) => programName(id) ?? `#${id}`);
}

/**
 * Removes the tc filters a crashed flowtap left in its slot on `ifIndex` (both directions) and
 * returns how many it removed. A filter of another program there is left alone.
 */
export function removeStaleFilters(ifIndex: number): number {
  let removed = 0;
  for (const point of [TcAttachPoint.INGRESS, TcAttachPoint.EGRESS]) {
    const id = filterProgramId(ifIndex, point);
    if (id === 0 || !programName(id)?.startsWith(FLOWTAP_NAME_PREFIX)) continue;
    const opts = tcOpts({ handle: FLOWTAP_TC_HANDLE, priority: FLOWTAP_TC_PRIORITY });
    if (libbpf().tcDetach(tcHook(ifIndex, point), opts) === 0) removed++;
  }
  return removed;
}

function attachError(ifName: string, operation: string, result: number): Error {
  if (-result === constants.errno.ENODEV || -result === constants.errno.ENXIO) {
    return new InterfaceError(
      ifName,
      `interface ${ifName} went away while ${operation}; check that it still exists (ip link)`,
    );
  }
  return kernelError(`${operation} on ${ifName}`, result);
}

/** Programs attached to one interface; `detach()` releases exactly what `attach` acquired. */
export class InterfaceAttachment {
  #linkFds: number[] = [];
  #filterPoints: number[] = [];
  #createdQdisc = false;

  private constructor(
    /** Interface name as given. */
    readonly ifName: string,
    /** Interface index at attach time. */
    readonly ifIndex: number,
    /** How the programs are attached. */
    readonly mode: AttachMode,
  ) {}

  /** Attaches `programs` to `ifIndex`; on failure releases what it acquired and throws. */
  static attach(
    ifName: string,
    ifIndex: number,
    programs: DirectionPrograms,
    mode: AttachMode,
  ): InterfaceAttachment {
    const self = new InterfaceAttachment(ifName, ifIndex, mode);
    try {
      removeStaleFilters(ifIndex);
      if (mode === 'tcx') self.#attachTcx(programs);
      else self.#attachClsact(programs);
    } catch (err) {
      self.detach();
      throw err;
    }
    return self;
  }

  #attachTcx(programs: DirectionPrograms): void {
    const lib = libbpf();
    const wanted: [number | undefined, number][] = [
      [programs.ingressFd, BpfAttachType.TCX_INGRESS],
      [programs.egressFd, BpfAttachType.TCX_EGRESS],
    ];
    for (const [progFd, attachType] of wanted) {
      if (progFd === undefined) continue;
      const fd: number = lib.linkCreate(progFd, this.ifIndex, attachType, null);
      if (fd < 0) throw attachError(this.ifName, 'attaching a TCX link', fd);
      this.#linkFds.push(fd);
    }
  }

  #attachClsact(programs: DirectionPrograms): void {
    const lib = libbpf();
    const created: number = lib.tcHookCreate(
      tcHook(this.ifIndex, TcAttachPoint.INGRESS | TcAttachPoint.EGRESS),
    );
    if (created < 0 && -created !== constants.errno.EEXIST)
      throw attachError(this.ifName, 'creating a clsact qdisc', created);
    this.#createdQdisc = created === 0;
    const wanted: [number | undefined, number][] = [
      [programs.ingressFd, TcAttachPoint.INGRESS],
      [programs.egressFd, TcAttachPoint.EGRESS],
    ];
    for (const [progFd, point] of wanted) {
      if (progFd === undefined) continue;
      if (filterProgramId(this.ifIndex, point) !== 0) {
        throw new InterfaceError(
          this.ifName,
          `another program holds tc filter handle ${FLOWTAP_TC_HANDLE.toString(16)} priority ${FLOWTAP_TC_PRIORITY} ` +
            `on ${this.ifName}; remove it (tc filter del dev ${this.ifName} ...) or run flowtap on a kernel with TCX (6.6+)`,
        );
      }
      const opts = tcOpts({
        progFd,
        flags: BPF_TC_F_REPLACE,
        handle: FLOWTAP_TC_HANDLE,
        priority: FLOWTAP_TC_PRIORITY,
      });
      const result: number = lib.tcAttach(tcHook(this.ifIndex, point), opts);
      if (result < 0) throw attachError(this.ifName, 'attaching a tc filter', result);
      this.#filterPoints.push(point);
    }
  }

  /** Releases links, filters and a qdisc flowtap created; safe to call twice. */
  detach(): void {
    const lib = libbpf();
    for (const fd of this.#linkFds) lib.close(fd);
    this.#linkFds = [];
    for (const point of this.#filterPoints) {
      // The interface may be gone already, and its filters with it: nothing to release then.
      lib.tcDetach(
        tcHook(this.ifIndex, point),
        tcOpts({ handle: FLOWTAP_TC_HANDLE, priority: FLOWTAP_TC_PRIORITY }),
      );
    }
    this.#filterPoints = [];
    if (this.#createdQdisc) {
      lib.tcHookDestroy(tcHook(this.ifIndex, TcAttachPoint.INGRESS | TcAttachPoint.EGRESS));
      this.#createdQdisc = false;
    }
  }
}
