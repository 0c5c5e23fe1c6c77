/**
 * The health figures of a row that the views summing flows read (the web view's tables, the
 * metrics' histogram and counters), read in place: one home for what "the flow's RTT" is where a
 * view shows one figure, so the page and /metrics cannot disagree.
 */
import { TWO_POW_32 } from '../model/u64.ts';
import { HealthFlag, V2 } from './v2-layout.ts';

/** Which time {@link rowRttNs} gave. */
export const RttKind = {
  /** Nothing was measured. */
  NONE: 0,
  /** The latest smoothed RTT sampled from the flow's socket (live datapath). */
  SMOOTHED: 1,
  /** The handshake time (the datapath's TC programs, or `read` from a capture). */
  HANDSHAKE: 2,
} as const;

/** Names of {@link RttKind} values, as metric labels and the page show them. */
export const RTT_KIND_NAMES = ['', 'smoothed', 'handshake'] as const;

/** The u64 at `at` as a number (exact below 2^53). */
function u64At(b: Uint8Array, at: number): number {
  return (
    (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) +
    b[at + 3] * 2 ** 24 +
    (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16)) * TWO_POW_32 +
    b[at + 7] * 2 ** 56
  );
}

/** The {@link RttKind} of row `o`: smoothed when the socket's RTT was sampled, else handshake. */
export function rowRttKind(b: Uint8Array, o: number): number {
  const flags = b[o + V2.HEALTH_FLAGS];
  if ((flags & HealthFlag.RTT) !== 0) return RttKind.SMOOTHED;
  return (flags & HealthFlag.HANDSHAKE) !== 0 ? RttKind.HANDSHAKE : RttKind.NONE;
}

/** The flow's RTT in ns, of the kind {@link rowRttKind} says; -1 when none was measured. */
export function rowRttNs(b: Uint8Array, o: number): number {
  switch (rowRttKind(b, o)) {
    case RttKind.SMOOTHED:
      return u64At(b, o + V2.RTT_LAST_NS);
    case RttKind.HANDSHAKE:
      return u64At(b, o + V2.HANDSHAKE_RTT_NS);
    default:
      return -1;
  }
}

/** Packets of the flow the kernel dropped. */
export function rowDropPackets(b: Uint8Array, o: number): number {
  return u64At(b, o + V2.DROP_PACKETS);
}

/** Bytes of the flow the kernel dropped. */
export function rowDropBytes(b: Uint8Array, o: number): number {
  return u64At(b, o + V2.DROP_BYTES);
}

/** Retransmitted TCP segments of the flow. */
export function rowRetransPackets(b: Uint8Array, o: number): number {
  return u64At(b, o + V2.RETRANS_PACKETS);
}

/** Bytes of the flow's retransmitted TCP segments. */
export function rowRetransBytes(b: Uint8Array, o: number): number {
  return u64At(b, o + V2.RETRANS_BYTES);
}

/** The kernel's `skb_drop_reason` of the flow's latest drop (meaningful with drops). */
export function rowDropCause(b: Uint8Array, o: number): number {
  return (
    (b[o + V2.DROP_LATEST_CAUSE] |
      (b[o + V2.DROP_LATEST_CAUSE + 1] << 8) |
      (b[o + V2.DROP_LATEST_CAUSE + 2] << 16)) +
    b[o + V2.DROP_LATEST_CAUSE + 3] * 2 ** 24
  );
}

/** The TCP state at the flow's latest drop (0 unknown). */
export function rowDropTcpState(b: Uint8Array, o: number): number {
  return b[o + V2.DROP_LATEST_STATE];
}

/** Time of the flow's latest drop in ns (a double: ordering drops, not exact to the ns). */
export function rowDropLatestNs(b: Uint8Array, o: number): number {
  return u64At(b, o + V2.DROP_LATEST_NS);
}
