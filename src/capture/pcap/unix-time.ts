/**
 * Capture timestamps → Unix nanoseconds in a row, with plain numbers: a u64 of nanoseconds does
 * not fit a double, so seconds and the nanosecond fraction travel apart and are combined into
 * two 32-bit words. pcapng's 64-bit tick counts are divided by long division in 16-bit digits;
 * only resolutions no real capture tool writes (finer than 10^-11 s or 2^-23 s) take a BigInt.
 */
import { TWO_POW_32 } from '../../model/u64.ts';

const TWO_POW_16 = 65536;
const NS_PER_S = 1_000_000_000;
/** Largest whole second whose nanoseconds still fit in a u64. */
const MAX_UNIX_SECONDS = 18_446_744_072;

/** The result of {@link toUnixNs}: the low and high 32-bit words of the u64 (one record, reused). */
export const unixNs = { lo: 0, hi: 0 };

/**
 * Sets {@link unixNs} to `seconds * 1e9 + nanos`, clamped to [0, 2^64): negative times (a
 * negative `if_tsoffset`) become 0.
 */
export function toUnixNs(seconds: number, nanos: number): void {
  let s = seconds;
  let n = nanos;
  if (!(s >= 0)) {
    s = 0;
    n = 0;
  } else if (s > MAX_UNIX_SECONDS) {
    s = MAX_UNIX_SECONDS;
  }
  const sHi = Math.floor(s / TWO_POW_16);
  const sLo = s - sHi * TWO_POW_16;
  const high = sHi * NS_PER_S; // < 2^49: exact
  const highLo16 = high % TWO_POW_16;
  const low = highLo16 * TWO_POW_16 + sLo * NS_PER_S + n; // < 2^48: exact
  unixNs.lo = low % TWO_POW_32;
  unixNs.hi = (high - highLo16) / TWO_POW_16 + Math.floor(low / TWO_POW_32);
}

/** Writes `seconds * 1e9 + nanos` (as {@link toUnixNs}) as a little-endian u64 at `at` of `out`. */
export function writeUnixNs(out: Uint8Array, at: number, seconds: number, nanos: number): void {
  toUnixNs(seconds, nanos);
  const { lo, hi } = unixNs;
  out[at] = lo & 0xff;
  out[at + 1] = (lo >>> 8) & 0xff;
  out[at + 2] = (lo >>> 16) & 0xff;
  out[at + 3] = lo >>> 24;
  out[at + 4] = hi & 0xff;
  out[at + 5] = (hi >>> 8) & 0xff;
  out[at + 6] = (hi >>> 16) & 0xff;
  out[at + 7] = hi >>> 24;
}

/** A pcapng interface's timestamp resolution (`if_tsresol`) as a converter of tick counts. */
export class TickResolution {
  /** Ticks per second. */
  readonly ticksPerSecond: number;
  /** Nanoseconds per tick when a tick is a whole number of them (10^-k, k ≤ 9), else 0. */
  readonly #nsPerTick: number;
  /** Ticks per nanosecond when that is a whole number (10^-k, k in 10..11), else 0. */
  readonly #ticksPerNs: number;
  /** True when long division on numbers is exact for this resolution. */
  readonly #exact: boolean;
  readonly #ticksPerSecondBig: bigint;
  /** Seconds of the last conversion. */
  seconds = 0;
  /** Nanosecond fraction of the last conversion. */
  nanos = 0;

  /** From the raw `if_tsresol` byte: bit 7 clear 10^-v s, set 2^-(v & 0x7f) s. */
  constructor(tsresol: number) {
    const binary = (tsresol & 0x80) !== 0;
    const exponent = tsresol & 0x7f;
    this.#ticksPerSecondBig = binary ? 1n << BigInt(exponent) : 10n ** BigInt(exponent);
    this.ticksPerSecond = Number(this.#ticksPerSecondBig);
    this.#nsPerTick = !binary && exponent <= 9 ? 10 ** (9 - exponent) : 0;
    this.#ticksPerNs = !binary && exponent > 9 && exponent <= 11 ? 10 ** (exponent - 9) : 0;
    this.#exact = binary ? exponent <= 23 : exponent <= 11;
  }

  /** Converts the tick count `hi * 2^32 + lo` into `seconds` and `nanos`. */
  convert(hi: number, lo: number): void {
    if (!this.#exact) {
      this.#convertBig(hi, lo);
      return;
    }
    const u = this.ticksPerSecond;
    // t / u by long division in base 2^16 below the top word: every partial product stays < 2^53.
    const r1 = hi % u;
    const q1 = (hi - r1) / u;
    const x = r1 * TWO_POW_16 + (lo >>> 16);
    const q2 = Math.floor(x / u);
    const y = (x - q2 * u) * TWO_POW_16 + (lo & 0xffff);
    const q3 = Math.floor(y / u);
    const ticks = y - q3 * u;
    this.seconds = q1 * TWO_POW_32 + q2 * TWO_POW_16 + q3;
    if (this.#nsPerTick !== 0) this.nanos = ticks * this.#nsPerTick;
    else if (this.#ticksPerNs !== 0) this.nanos = Math.floor(ticks / this.#ticksPerNs);
    else this.nanos = Math.floor((ticks * NS_PER_S) / u);
  }

  #convertBig(hi: number, lo: number): void {
    const ticks = (BigInt(hi) << 32n) | BigInt(lo);
    const ns = (ticks * 1_000_000_000n) / this.#ticksPerSecondBig;
    this.seconds = Number(ns / 1_000_000_000n);
    this.nanos = Number(ns % 1_000_000_000n);
  }
}
