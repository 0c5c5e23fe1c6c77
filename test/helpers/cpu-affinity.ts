/**
 * Pins the calling thread to one CPU (sched_setaffinity through koffi, as src/ebpf/libbpf.ts
 * reaches libbpf), so a BPF_PROG_TEST_RUN made next runs on that CPU: tests of per-CPU maps use
 * it to put two hops of one packet on two CPUs.
 */
import { availableParallelism } from 'node:os';
import koffi from 'koffi';

const CPU_SET_BYTES = 128; // glibc's cpu_set_t: 1024 CPUs

let setAffinity: ((pid: number, size: number, mask: Buffer) => number) | undefined;

function affinity(mask: Buffer): void {
  setAffinity ??= koffi
    .load('libc.so.6')
    .func('int sched_setaffinity(int pid, size_t size, const uint8_t *mask)');
  if (setAffinity(0, CPU_SET_BYTES, mask) !== 0) throw new Error('sched_setaffinity failed');
}

/** Runs the calling thread on `cpu` only. */
export function pinToCpu(cpu: number): void {
  const mask = Buffer.alloc(CPU_SET_BYTES);
  mask[cpu >>> 3] |= 1 << (cpu & 7);
  affinity(mask);
}

/** Lets the calling thread run on every CPU again. */
export function unpin(): void {
  const mask = Buffer.alloc(CPU_SET_BYTES);
  for (let cpu = 0; cpu < availableParallelism(); cpu++) mask[cpu >>> 3] |= 1 << (cpu & 7);
  affinity(mask);
}
