/** Builders of flows and record batches for tests. */
import type { Flow } from '../../src/model/flow.ts';
import { parseIp } from '../../src/model/ip.ts';
import { parseMac } from '../../src/model/mac.ts';

/** Fields of a flow given as text where that is easier to read. */
export interface FlowSpec extends Partial<Omit<Flow, 'srcMac' | 'dstMac' | 'srcAddr' | 'dstAddr'>> {
  srcMac?: string;
  dstMac?: string;
  srcAddr?: string;
  dstAddr?: string;
}

/** A flow with sensible defaults (IPv4 TCP 10.0.0.1:1234 → 10.0.0.2:80, egress, 1 packet of 100 bytes). */
export function makeFlow(spec: FlowSpec = {}): Flow {
  const { srcMac, dstMac, srcAddr, dstAddr, ...rest } = spec;
  return {
    etype: 0x0800,
    direction: 1,
    srcMac: parseMac(srcMac ?? '02:00:00:00:00:01')!,
    dstMac: parseMac(dstMac ?? '02:00:00:00:00:02')!,
    srcAddr: parseIp(srcAddr ?? '10.0.0.1')!,
    dstAddr: parseIp(dstAddr ?? '10.0.0.2')!,
    srcPort: 1234,
    dstPort: 80,
    proto: 6,
    ifIndex: 0,
    icmpType: 0,
    icmpCode: 0,
    bytes: 100,
    packets: 1,
    timeFlowStartNs: 1_700_000_000_000_000_000n,
    timeFlowEndNs: 1_700_000_000_000_000_000n,
    tcpFlags: 0,
    dscp: 0,
    interface: '',
    ...rest,
  };
}

/** A seeded pseudo-random generator (mulberry32), so randomized tests repeat exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
