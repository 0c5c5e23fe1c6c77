/**
 * Attaching the datapath programs to one interface and releasing them again.
 *
 * - TCX links (Linux 6.6+): one link per direction, never pinned, so the kernel releases them
 *   when flowtap's process ends, even on a crash: nothing can be left behind, and any number of
 *   flowtap instances (and other tools) attach side by side.
 * - clsact (older kernels): a tc filter per direction at flowtap's priority, with the process id
 *   as its handle, so each instance owns exactly its own filters. Detach removes those filters
 *   and nothing else; the clsact qdisc goes only if flowtap created it and no filter is left on
 *   it (another tool's or another flowtap's). Filters at flowtap's priority whose handle names a
 *   process that no longer exists were left by a crashed flowtap and are removed at attach.
 *   Instances in different PID namespaces sharing a network namespace could share a handle:
 *   run those on a kernel with TCX.
 */
import { constants } from 'node:os';
import { InterfaceError } from '../errors.ts';
import { kernelError } from './kernel-error.ts';
import { BPF_TC_F_REPLACE, BpfAttachType, libbpf, TcAttachPoint, tcHook, tcOpts } from './libbpf.ts';
import { FLOWTAP_NAME_PREFIX } from './object.ts';
import { listTcFilters, type TcFilter } from './tc-filters.ts';

/** How programs are attached: TCX links, or filters on a clsact qdisc. */
export type AttachMode = 'tcx' | 'clsact';

/** Priority of flowtap's tc filters (clsact mode); each process's filters have its pid as handle. */
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

/** flowtap's filters (by priority and program name) at `point` of `ifIndex`. */
function flowtapFilters(ifIndex: number, point: number): TcFilter[] {
  return filtersOrNone(ifIndex, point).filter(
    (f) => f.kind === 'bpf' && f.priority === FLOWTAP_TC_PRIORITY && f.name.startsWith(FLOWTAP_NAME_PREFIX),
  );
}

/** Whether process `pid` exists (in this PID namespace); EPERM means it does, owned by another user. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/** Filters of every kind at `point`, or none when the interface is gone. */
function filtersOrNone(ifIndex: number, point: number): TcFilter[] {
  try {
    return listTcFilters(ifIndex, point);
  } catch {
    return []; // the interface went away: it holds nothing any more
  }
}

/**
 * Names of the programs attached to `ifIndex` through TCX (any) and as flowtap tc filters (any
 * instance's), ingress first: what `flowtap` would find there, for diagnostics and leftover checks.
 */
export function attachedProgramNames(ifIndex: number): string[] {
  const names = (ids: number[]) => ids.map((id) => programName(id) ?? `#${id}`);
  const filterIds = (point: number) =>
    filtersOrNone(ifIndex, point)
      .filter((f) => f.kind === 'bpf' && f.priority === FLOWTAP_TC_PRIORITY)
      .map((f) => f.programId);
  return [
    ...names(tcxProgramIds(ifIndex, BpfAttachType.TCX_INGRESS)),
    ...names(filterIds(TcAttachPoint.INGRESS)),
    ...names(tcxProgramIds(ifIndex, BpfAttachType.TCX_EGRESS)),
    ...names(filterIds(TcAttachPoint.EGRESS)),
  ];
}

/**
 * Removes the tc filters crashed flowtap processes left on `ifIndex` (both directions): flowtap's
 * priority and program name, and a handle naming a process that is gone (or this process, which
 * has attached nothing there yet: a crashed run that had the same pid). Returns how many it removed;
 * a live instance's filters and every other tool's are left alone.
 */
export function removeStaleFilters(ifIndex: number, ownerPid = process.pid): number {
  let removed = 0;
  for (const point of [TcAttachPoint.INGRESS, TcAttachPoint.EGRESS]) {
    for (const filter of flowtapFilters(ifIndex, point)) {
      if (filter.handle !== ownerPid && processAlive(filter.handle)) continue;
      const opts = tcOpts({ handle: filter.handle, priority: FLOWTAP_TC_PRIORITY });
      if (libbpf().tcDetach(tcHook(ifIndex, point), opts) === 0) removed++;
    }
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
    /** Handle of this process's tc filters (clsact mode): its pid. */
    readonly filterHandle: number,
  ) {}

  /**
   * Attaches `programs` to `ifIndex`; on failure releases what it acquired and throws.
   * `ownerPid` (this process by default) is the handle of the tc filters in clsact mode.
   */
  static attach(
    ifName: string,
    ifIndex: number,
    programs: DirectionPrograms,
    mode: AttachMode,
    ownerPid = process.pid,
  ): InterfaceAttachment {
    const self = new InterfaceAttachment(ifName, ifIndex, mode, ownerPid);
    try {
      removeStaleFilters(ifIndex, ownerPid);
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
      // Replacing is safe: a filter at this process's own handle can only be a crashed run's.
      const opts = tcOpts({
        progFd,
        flags: BPF_TC_F_REPLACE,
        handle: this.filterHandle,
        priority: FLOWTAP_TC_PRIORITY,
      });
      const result: number = lib.tcAttach(tcHook(this.ifIndex, point), opts);
      if (result < 0) throw attachError(this.ifName, 'attaching a tc filter', result);
      this.#filterPoints.push(point);
    }
  }

  /**
   * Releases exactly what `attach` acquired: its links, its own filters (by handle and priority),
   * and the clsact qdisc if it created it and no filter of anyone else is left on it. Safe to call twice.
   */
  detach(): void {
    const lib = libbpf();
    for (const fd of this.#linkFds) lib.close(fd);
    this.#linkFds = [];
    for (const point of this.#filterPoints) {
      // The interface may be gone already, and its filters with it: nothing to release then.
      lib.tcDetach(
        tcHook(this.ifIndex, point),
        tcOpts({ handle: this.filterHandle, priority: FLOWTAP_TC_PRIORITY }),
      );
    }
    this.#filterPoints = [];
    if (this.#createdQdisc) {
      this.#createdQdisc = false;
      let othersLeft = true;
      try {
        othersLeft =
          listTcFilters(this.ifIndex, TcAttachPoint.INGRESS).length +
            listTcFilters(this.ifIndex, TcAttachPoint.EGRESS).length >
          0;
      } catch {
        // The interface is gone (and the qdisc with it), or its filters cannot be listed: keep it.
      }
      if (!othersLeft) lib.tcHookDestroy(tcHook(this.ifIndex, TcAttachPoint.INGRESS | TcAttachPoint.EGRESS));
    }
  }
}
