/**
 * Kernel timestamps (bpf_ktime_get_ns: CLOCK_MONOTONIC) turned into Unix-epoch nanoseconds.
 * The offset is measured at every drain, so a wall-clock step moves later flows, not earlier ones.
 */
import { libbpf } from './libbpf.ts';

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

function readClockNs(clock: number, ts: { tv_sec: number | bigint; tv_nsec: number | bigint }): bigint {
  libbpf().clockGettime(clock, ts);
  return BigInt(ts.tv_sec) * 1_000_000_000n + BigInt(ts.tv_nsec);
}

/** Unix-epoch nanoseconds minus CLOCK_MONOTONIC nanoseconds, now. */
export function monotonicToUnixOffsetNs(): bigint {
  const ts = { tv_sec: 0, tv_nsec: 0 };
  // Reading the wall clock between two monotonic reads bounds the error by their distance.
  const before = readClockNs(CLOCK_MONOTONIC, ts);
  const wall = readClockNs(CLOCK_REALTIME, ts);
  const after = readClockNs(CLOCK_MONOTONIC, ts);
  return wall - (before + (after - before) / 2n);
}

/** CLOCK_MONOTONIC now, in nanoseconds: the clock of the kernel's timestamps. */
export function monotonicNowNs(): bigint {
  return readClockNs(CLOCK_MONOTONIC, { tv_sec: 0, tv_nsec: 0 });
}

/** A 64-bit nanosecond offset split in 32-bit halves, so rows are shifted without a BigInt per row (see `addOffsetWords`). */
export interface SplitOffset {
  /** High 32 bits. */
  readonly hi: number;
  /** Low 32 bits. */
  readonly lo: number;
}

/** Splits a non-negative offset into 32-bit halves. */
export function splitOffset(offsetNs: bigint): SplitOffset {
  return { hi: Number(offsetNs >> 32n), lo: Number(offsetNs & 0xffffffffn) };
}
