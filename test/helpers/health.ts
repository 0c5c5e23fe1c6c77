/** Health sections and drop-reason names for tests of the outputs of issue 14. */
import { DropReasonNames } from '../../src/model/drop-reasons.ts';
import type { FlowHealth } from '../../src/model/flow.ts';

/** A kernel-like table: NETFILTER_DROP is 8 as in Linux 6.x, 3 is NO_SOCKET. */
export const TEST_DROP_REASONS = new DropReasonNames(
  new Map([
    [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
    [3, 'SKB_DROP_REASON_NO_SOCKET'],
    [8, 'SKB_DROP_REASON_NETFILTER_DROP'],
  ]),
);

/** Every part measured: RTT range, handshake, drops with the latest one's details, retransmissions. */
export const FULL_HEALTH: FlowHealth = {
  rtt: { minNs: 1_500_000n, maxNs: 42_000_000n, lastNs: 7_250_000n, samples: 12 },
  handshakeRttNs: 310_000n,
  dropBytes: 3_000,
  dropPackets: 2,
  retransBytes: 2_896,
  retransPackets: 2,
  latestDrop: { timeNs: 1_700_000_000_123_456_789n, cause: 8, tcpFlags: 0x18, tcpState: 1 },
};

/** Only retransmissions: nothing else was measured. */
export const RETRANS_ONLY: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 3 };
