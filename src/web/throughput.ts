/**
 * Bytes and packets per second over the last `windowSeconds`, per (interface, direction): one ring
 * of per-second buckets per series, all rings sharing one window end. Memory is fixed at
 * `maxSeries × windowSeconds` buckets whatever the flow rate; series beyond `maxSeries` are folded
 * into one `(other)` series instead of growing.
 */
import { directionName } from '../model/names.ts';

/** One line of the chart: an interface and a direction. */
export interface ThroughputSeries {
  /** Interface name (`if<index>` when the source never named it). */
  readonly interfaceName: string;
  /** `INGRESS`, `EGRESS` or `UNKNOWN`. */
  readonly direction: string;
  /** Bytes per bucket, indexed by `second % windowSeconds`. */
  readonly bytes: Float64Array;
  /** Packets per bucket, same indexing. */
  readonly packets: Float64Array;
}

/** Name of the series that holds every series beyond the bound. */
export const OTHER_SERIES_NAME = '(other)';
/** Seconds a record's bytes are spread over at most: longer records put the rest in their last seconds. */
export const MAX_SPREAD_SECONDS = 60;

/** Per-second throughput of the last `windowSeconds`, bounded in series and buckets. */
export class ThroughputWindow {
  /** Series by `ifIndex * 4 + direction`, in creation order. */
  readonly #series = new Map<number, ThroughputSeries>();
  #other: ThroughputSeries | undefined;
  /** Last second of the window (Unix seconds); 0 before anything was seen. */
  #endSecond = 0;

  constructor(
    /** Seconds the window holds. */
    readonly windowSeconds: number,
    /** Series kept apart; later ones share `(other)`. */
    readonly maxSeries: number,
  ) {}

  /** Last second of the window, Unix seconds (0 while empty). */
  get endSecond(): number {
    return this.#endSecond;
  }

  /** The series (and `(other)` when used), in the order they were first seen. */
  series(): ThroughputSeries[] {
    const all = [...this.#series.values()];
    if (this.#other) all.push(this.#other);
    return all;
  }

  /**
   * Moves the window end forward to `second`, emptying the buckets that fall out of the window so
   * they can be reused; moving backward is ignored (the end never goes back).
   */
  advanceTo(second: number): void {
    if (second <= this.#endSecond) return;
    const n = this.windowSeconds;
    const from = Math.max(this.#endSecond + 1, second - n + 1);
    for (const s of this.series()) {
      for (let sec = from; sec <= second; sec++) {
        const slot = sec % n;
        s.bytes[slot] = 0;
        s.packets[slot] = 0;
      }
    }
    this.#endSecond = second;
  }

  /**
   * Adds a record's counts, spread evenly over its seconds `firstSecond..lastSecond` (a record
   * covers up to one active timeout, so a flat line is closer to the truth than a spike at its
   * end). Seconds before the window are left out; returns false when all of them were.
   * Callers advance the window to `lastSecond` first.
   */
  add(
    ifIndex: number,
    direction: number,
    interfaceName: string,
    firstSecond: number,
    lastSecond: number,
    bytes: number,
    packets: number,
  ): boolean {
    const n = this.windowSeconds;
    const oldest = this.#endSecond - n + 1;
    if (lastSecond < oldest) return false;
    const series = this.#seriesOf(ifIndex, direction, interfaceName);
    let first = firstSecond;
    if (first > lastSecond || first <= lastSecond - MAX_SPREAD_SECONDS) {
      first = first > lastSecond ? lastSecond : lastSecond - MAX_SPREAD_SECONDS + 1;
    }
    const spanSeconds = lastSecond - first + 1;
    const bytesEach = bytes / spanSeconds;
    const packetsEach = packets / spanSeconds;
    for (let sec = Math.max(first, oldest); sec <= lastSecond; sec++) {
      const slot = sec % n;
      series.bytes[slot] += bytesEach;
      series.packets[slot] += packetsEach;
    }
    return true;
  }

  /** Bytes per second of `series` from the oldest second of the window to its end. */
  bytesPerSecond(series: ThroughputSeries): number[] {
    const n = this.windowSeconds;
    const out = new Array<number>(n);
    const start = this.#endSecond - n + 1;
    for (let i = 0; i < n; i++) out[i] = Math.round(series.bytes[(((start + i) % n) + n) % n]);
    return out;
  }

  #seriesOf(ifIndex: number, direction: number, interfaceName: string): ThroughputSeries {
    const dir = direction > 1 ? 2 : direction;
    const id = ifIndex * 4 + dir;
    let series = this.#series.get(id);
    if (series) return series;
    if (this.#series.size >= this.maxSeries) {
      this.#other ??= this.#newSeries(OTHER_SERIES_NAME, '');
      return this.#other;
    }
    series = this.#newSeries(interfaceName || `if${ifIndex}`, directionName(dir));
    this.#series.set(id, series);
    return series;
  }

  #newSeries(interfaceName: string, direction: string): ThroughputSeries {
    return {
      interfaceName,
      direction,
      bytes: new Float64Array(this.windowSeconds),
      packets: new Float64Array(this.windowSeconds),
    };
  }
}
