/**
 * TCP health of the flows leaving accounting, summed for /metrics: a histogram of flow RTTs (one
 * observation per flow record that measured one, by kind), dropped packets and bytes by the
 * kernel's drop reason, and retransmitted segments. Counted in the pass EvictedRows makes over
 * every evicted row, before bidirectional pairing, so each direction's health counts once.
 */
import {
  RttKind,
  rowDropBytes,
  rowDropCause,
  rowDropPackets,
  rowRetransBytes,
  rowRetransPackets,
  rowRttKind,
  rowRttNs,
} from '../codec/health-figures.ts';

/**
 * Upper bounds of the RTT histogram's buckets, in seconds: 100 µs (a LAN) to 10 s (a path that
 * is failing), about three to a decade.
 */
export const RTT_BUCKET_BOUNDS_SECONDS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * Distinct drop reasons counted apart. The kernel's `enum skb_drop_reason` has about a hundred;
 * a value beyond this many distinct ones (a damaged record) counts under {@link OTHER_DROP_CAUSE}.
 */
export const MAX_DROP_CAUSES = 1024;
/** The cause drops are counted under once {@link MAX_DROP_CAUSES} distinct ones were met. */
export const OTHER_DROP_CAUSE = -1;

/** The RTT observations of one kind. */
export interface RttObservations {
  /** Observations per bucket of {@link RTT_BUCKET_BOUNDS_SECONDS}, then those above every bound. */
  readonly buckets: number[];
  sumSeconds: number;
  count: number;
}

/** Dropped packets and bytes of one drop reason. */
export interface DropCounts {
  packets: number;
  bytes: number;
}

const NS_PER_SECOND = 1e9;

function emptyObservations(): RttObservations {
  return {
    buckets: new Array<number>(RTT_BUCKET_BOUNDS_SECONDS.length + 1).fill(0),
    sumSeconds: 0,
    count: 0,
  };
}

/** Sums of the TCP health of evicted flows; see the module comment. */
export class HealthSums {
  /** RTT observations of flows whose socket's smoothed RTT was sampled. */
  readonly smoothedRtt = emptyObservations();
  /** RTT observations of flows that only have a handshake time. */
  readonly handshakeRtt = emptyObservations();
  /** Dropped packets and bytes by the kernel's drop reason (the flow's latest). */
  readonly drops = new Map<number, DropCounts>();
  /** Retransmitted TCP segments and their bytes. */
  retransSegments = 0;
  retransBytes = 0;

  /** Counts the health section of row `o` of `b`. */
  add(b: Buffer, o: number): void {
    const kind = rowRttKind(b, o);
    if (kind !== RttKind.NONE)
      this.#observe(kind === RttKind.SMOOTHED ? this.smoothedRtt : this.handshakeRtt, rowRttNs(b, o));
    const dropped = rowDropPackets(b, o);
    if (dropped > 0) {
      // A flow's drops are counted under its latest drop's reason: a record keeps only that one.
      let cause = rowDropCause(b, o);
      if (!this.drops.has(cause) && this.drops.size >= MAX_DROP_CAUSES) cause = OTHER_DROP_CAUSE;
      let counts = this.drops.get(cause);
      if (counts === undefined) {
        counts = { packets: 0, bytes: 0 };
        this.drops.set(cause, counts);
      }
      counts.packets += dropped;
      counts.bytes += rowDropBytes(b, o);
    }
    const retrans = rowRetransPackets(b, o);
    if (retrans > 0) {
      this.retransSegments += retrans;
      this.retransBytes += rowRetransBytes(b, o);
    }
  }

  #observe(into: RttObservations, ns: number): void {
    const seconds = ns / NS_PER_SECOND;
    let bucket = 0;
    while (bucket < RTT_BUCKET_BOUNDS_SECONDS.length && seconds > RTT_BUCKET_BOUNDS_SECONDS[bucket]) bucket++;
    into.buckets[bucket]++;
    into.sumSeconds += seconds;
    into.count++;
  }
}
