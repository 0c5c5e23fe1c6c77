/**
 * Packet test vectors: whole Ethernet frames and the flow key each must produce, shared by every
 * packet parser flowtap has (the eBPF datapath, test/ebpf/vectors.test.ts; the pcap parser) so
 * they cannot drift. docs/flow-key.md is the specification these vectors illustrate.
 *
 * Format (stable; add vectors, do not change the shape):
 * - `frame`: lower-case hex of the whole frame from the destination MAC on, no FCS, no padding.
 *   Every frame has destination MAC 02:00:00:00:00:02 and source MAC 02:00:00:00:00:01.
 *   Checksums are zero: no flowtap parser verifies them.
 * - `expected`: the flow the frame counts as, or `{ parseError: true }` when the frame must be
 *   counted as a parse error and in no flow. Addresses are text as `formatIp(bytes, 0, etype)`
 *   prints them (IPv4 dotted, IPv6 RFC 5952; non-IP frames have all-zero addresses, '0.0.0.0').
 *   Ports are 0 where the protocol has none (ICMP, GRE, ESP, non-first fragments); `icmpType`
 *   and `icmpCode` are 0 outside ICMP/ICMPv6; `tcpFlags` has 9 bits (bit 8 NS); `bytes` is the
 *   frame length (the kernel's skb->len). Direction and interface are not part of a vector.
 *   `vlanOuter`/`vlanInner` (absent: 0) are the VLAN ids of the frame whose MACs are in the key;
 *   `tunnel` (absent: none) the tunnel the key's packet came through.
 * - `withTunnels`: what the frame counts as when tunnels are opened (ENABLE_TUNNELS); absent: the
 *   same as `expected`, which is always the result with tunnels off. Every parser runs every
 *   vector both ways.
 */

import type { Flow } from '../../src/model/flow.ts';
import { formatIp, formatIpv4, formatIpv6, isIpv4Mapped } from '../../src/model/ip.ts';

/** The flow fields a frame must produce. */
export interface ExpectedFlow {
  /** Ethernet type after any VLAN tags. */
  etype: number;
  /** IANA transport protocol (0 for non-IP). */
  proto: number;
  /** Source address as text. */
  srcAddr: string;
  /** Destination address as text. */
  dstAddr: string;
  /** Transport source port, 0 when none. */
  srcPort: number;
  /** Transport destination port, 0 when none. */
  dstPort: number;
  /** ICMP/ICMPv6 type, 0 otherwise. */
  icmpType: number;
  /** ICMP/ICMPv6 code, 0 otherwise. */
  icmpCode: number;
  /** TCP flags (bit 0 FIN ... bit 8 NS), 0 otherwise. */
  tcpFlags: number;
  /** DSCP (6 bits), 0 for non-IP. */
  dscp: number;
  /** Frame length. */
  bytes: number;
  /** VLAN id of the outer tag (0 or absent: untagged). */
  vlanOuter?: number;
  /** VLAN id of the inner tag (0 or absent: none). */
  vlanInner?: number;
  /** The tunnel the packet came through (absent: none). */
  tunnel?: ExpectedTunnel;
}

/** Tunnel fields of a flow. */
export interface ExpectedTunnel {
  /** 1 VXLAN, 2 Geneve, 3 GRE, 4 IP-in-IP (FLOWTAP_TUNNEL_* in bpf/flow_record.h). */
  type: number;
  /** VNI or GRE key, 0 when none. */
  id: number;
  /** Outer source address as text. */
  src: string;
  /** Outer destination address as text. */
  dst: string;
}

/** A frame that must be counted as a parse error and in no flow. */
export interface ExpectedParseError {
  /** Always true. */
  parseError: true;
}

/** One test vector. */
export interface PacketVector {
  /** What the frame exercises, as a phrase. */
  name: string;
  /** The whole Ethernet frame in hex. */
  frame: string;
  /** The flow it counts as (tunnels off), or a parse error. */
  expected: ExpectedFlow | ExpectedParseError;
  /** The flow it counts as when tunnels are opened; absent: `expected`. */
  withTunnels?: ExpectedFlow | ExpectedParseError;
}

/** What `vector` counts as with tunnels opened (`tunnels`) or not. */
export function expectedOf(vector: PacketVector, tunnels: boolean): ExpectedFlow | ExpectedParseError {
  return tunnels && vector.withTunnels ? vector.withTunnels : vector.expected;
}

/** No tunnel: the tunnel fields of a flow that came through none. */
export const NO_TUNNEL: ExpectedTunnel = { type: 0, id: 0, src: '', dst: '' };

/** An outer address as text, in its own family. */
function tunnelAddress(bytes: Uint8Array): string {
  return isIpv4Mapped(bytes) ? formatIpv4(bytes, 12) : formatIpv6(bytes);
}

/** The fields of a parsed flow in the shape of an expectation, for `deepEqual` with {@link withDefaults}. */
export function observedFields(flow: Flow): Required<ExpectedFlow> {
  const t = flow.tunnel;
  return {
    etype: flow.etype,
    proto: flow.proto,
    srcAddr: formatIp(flow.srcAddr, 0, flow.etype),
    dstAddr: formatIp(flow.dstAddr, 0, flow.etype),
    srcPort: flow.srcPort,
    dstPort: flow.dstPort,
    icmpType: flow.icmpType,
    icmpCode: flow.icmpCode,
    tcpFlags: flow.tcpFlags,
    dscp: flow.dscp,
    bytes: flow.bytes,
    vlanOuter: flow.vlanOuter ?? 0,
    vlanInner: flow.vlanInner ?? 0,
    tunnel: t
      ? { type: t.type, id: t.id, src: tunnelAddress(t.srcAddr), dst: tunnelAddress(t.dstAddr) }
      : NO_TUNNEL,
  };
}

/** `e` with every optional field filled in with its default, for comparing with a parsed flow. */
export function withDefaults(e: ExpectedFlow): Required<ExpectedFlow> {
  return { vlanOuter: 0, vlanInner: 0, tunnel: NO_TUNNEL, ...e };
}

/** Source MAC of every vector frame. */
export const VECTOR_SRC_MAC = '02:00:00:00:00:01';
/** Destination MAC of every vector frame. */
export const VECTOR_DST_MAC = '02:00:00:00:00:02';

/** Every vector. */
export const PACKET_VECTORS: readonly PacketVector[] = [
  {
    name: 'ipv4 tcp syn with dscp EF',
    frame:
      '020000000002020000000001080045b800281234000040060000c0000201c63364029c400050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 6,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 40000,
      dstPort: 80,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x002,
      dscp: 46,
      bytes: 54,
    },
  },
  {
    name: 'ipv4 tcp with NS, CWR, ECE and ACK flags',
    frame:
      '0200000000020200000000010800450000321234000040060000c0000201c633640201bbc738000003e80000000051d0ffff0000000000010203040506070809',
    expected: {
      etype: 0x0800,
      proto: 6,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 443,
      dstPort: 51000,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x1d0,
      dscp: 0,
      bytes: 64,
    },
  },
  {
    name: 'ipv4 udp with payload',
    frame:
      '02000000000202000000000108004528003c1234000040110000c0000201c633640214e9003500280000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 5353,
      dstPort: 53,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 10,
      bytes: 74,
    },
  },
  {
    name: 'ipv4 with options (IHL 7) and udp',
    frame:
      '0200000000020200000000010800470000281234000040110000c0000201c63364020101010101010100045708ae000c000000010203',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 1111,
      dstPort: 2222,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 54,
    },
  },
  {
    name: 'ipv4 sctp',
    frame:
      '0200000000020200000000010800450000241234000040840000c0000201c63364028e3c8e3ddeadbeef0000000001000004',
    expected: {
      etype: 0x0800,
      proto: 132,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 36412,
      dstPort: 36413,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 50,
    },
  },
  {
    name: 'ipv4 icmp echo request',
    frame:
      '0200000000020200000000010800450000541234000040010000c0000201c63364020800000000070001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
    expected: {
      etype: 0x0800,
      proto: 1,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 8,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 98,
    },
  },
  {
    name: 'ipv4 icmp port unreachable',
    frame:
      '0200000000020200000000010800450000381234000040010000c0000201c633640203030000000000004500001c1234000040110000c6336402c0000201003514e900080000',
    expected: {
      etype: 0x0800,
      proto: 1,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 3,
      icmpCode: 3,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 70,
    },
  },
  {
    name: 'ipv4 gre has no ports',
    frame:
      '02000000000202000000000108004500002c12340000402f0000c0000201c633640200000800000102030405060708090a0b0c0d0e0f10111213',
    expected: {
      etype: 0x0800,
      proto: 47,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 58,
    },
    // GRE carrying "IPv4" whose first byte is 0: opened, the inner header is invalid.
    withTunnels: { parseError: true },
  },
  {
    name: 'ipv4 first fragment keeps its ports',
    frame:
      '0200000000020200000000010800450000341234200040110000c0000201c63364021b581b5900200000000102030405060708090a0b0c0d0e0f1011121314151617',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 7000,
      dstPort: 7001,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 66,
    },
  },
  {
    name: 'ipv4 later fragment counts without ports',
    frame:
      '02000000000202000000000108004500003c123400b940110000c0000201c6336402000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324252627',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 74,
    },
  },
  {
    name: '802.1Q tagged ipv4 udp',
    frame:
      '020000000002020000000001810000640800450000241234000040110000c0000201c63364020bb80fa0001000000001020304050607',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 3000,
      dstPort: 4000,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 54,
      vlanOuter: 100,
    },
  },
  {
    name: '802.1ad + 802.1Q (QinQ) tagged ipv4 tcp',
    frame:
      '02000000000202000000000188a8000a8100001408004500002d1234000040060000c0000201c633640204d20016000003e8000000005018ffff000000000001020304',
    expected: {
      etype: 0x0800,
      proto: 6,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 1234,
      dstPort: 22,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x018,
      dscp: 0,
      bytes: 67,
      vlanOuter: 10,
      vlanInner: 20,
    },
  },
  {
    name: 'ipv6 tcp with traffic class AF41',
    frame:
      '02000000000202000000000186dd688000000014064020010db800000000000000000000000120010db8000000000000000000000002c35001bb000003e8000000005011ffff00000000',
    expected: {
      etype: 0x86dd,
      proto: 6,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 50000,
      dstPort: 443,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x011,
      dscp: 34,
      bytes: 74,
    },
  },
  {
    name: 'ipv6 udp',
    frame:
      '02000000000202000000000186dd600000000014114020010db800000000000000000000000120010db80000000000000000000000020222022300140000000102030405060708090a0b',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 546,
      dstPort: 547,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 74,
    },
  },
  {
    name: 'ipv6 sctp',
    frame:
      '02000000000202000000000186dd600000000010844020010db800000000000000000000000120010db80000000000000000000000020b590b5adeadbeef0000000001000004',
    expected: {
      etype: 0x86dd,
      proto: 132,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 2905,
      dstPort: 2906,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 70,
    },
  },
  {
    name: 'ipv6 icmpv6 echo request',
    frame:
      '02000000000202000000000186dd6000000000183a4020010db800000000000000000000000120010db80000000000000000000000028000000000090001000102030405060708090a0b0c0d0e0f',
    expected: {
      etype: 0x86dd,
      proto: 58,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 128,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 78,
    },
  },
  {
    name: 'ipv6 icmpv6 neighbor solicitation',
    frame:
      '02000000000202000000000186dd6000000000183a40fe800000000000000000000000000001ff0200000000000000000001ff000002870000000000000020010db8000000000000000000000002',
    expected: {
      etype: 0x86dd,
      proto: 58,
      srcAddr: 'fe80::1',
      dstAddr: 'ff02::1:ff00:2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 135,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 78,
    },
  },
  {
    name: 'ipv6 hop-by-hop then udp',
    frame:
      '02000000000202000000000186dd600000000014004020010db800000000000000000000000120010db8000000000000000000000002110000000000000003e807d0000c000000010203',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 1000,
      dstPort: 2000,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 74,
    },
  },
  {
    name: 'ipv6 routing header then tcp',
    frame:
      '02000000000202000000000186dd60000000002c2b4020010db800000000000000000000000120010db8000000000000000000000002060200010000000020010db800000000000000000000009917700050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x86dd,
      proto: 6,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 6000,
      dstPort: 80,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x002,
      dscp: 0,
      bytes: 98,
    },
  },
  {
    name: 'ipv6 destination options (16 bytes) then udp',
    frame:
      '02000000000202000000000186dd6000000000183c4020010db800000000000000000000000120010db8000000000000000000000002110100000000000000000000000000001f90238200080000',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 8080,
      dstPort: 9090,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 78,
    },
  },
  {
    name: 'ipv6 hop-by-hop, destination options and routing then icmpv6',
    frame:
      '02000000000202000000000186dd600000000030004020010db800000000000000000000000120010db80000000000000000000000023c000000000000002b000000000000003a0200010000000020010db80000000000000000000000998100000000010001',
    expected: {
      etype: 0x86dd,
      proto: 58,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 129,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 102,
    },
  },
  {
    name: 'ipv6 authentication header then tcp',
    frame:
      '02000000000202000000000186dd60000000002c334020010db800000000000000000000000120010db800000000000000000000000206040000000001000000000100000000000000000000000000b37530000003e8000000005010ffff00000000',
    expected: {
      etype: 0x86dd,
      proto: 6,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 179,
      dstPort: 30000,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x010,
      dscp: 0,
      bytes: 98,
    },
  },
  {
    name: 'ipv6 first fragment keeps its ports',
    frame:
      '02000000000202000000000186dd6000000000202c4020010db800000000000000000000000120010db8000000000000000000000002110000010000abcd1194119500180000000102030405060708090a0b0c0d0e0f',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 4500,
      dstPort: 4501,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 86,
    },
  },
  {
    name: 'ipv6 later fragment counts without ports',
    frame:
      '02000000000202000000000186dd6000000000282c4020010db800000000000000000000000120010db8000000000000000000000002110005a80000abcd000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 94,
    },
  },
  {
    name: 'ipv6 esp has no ports',
    frame:
      '02000000000202000000000186dd600000000018324020010db800000000000000000000000120010db80000000000000000000000020000100100000001000102030405060708090a0b0c0d0e0f',
    expected: {
      etype: 0x86dd,
      proto: 50,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 78,
    },
  },
  {
    name: '802.1Q tagged ipv6 udp',
    frame:
      '0200000000020200000000018100002a86dd600000000008114020010db800000000000000000000000120010db8000000000000000000000002076c076d00080000',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 1900,
      dstPort: 1901,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 66,
      vlanOuter: 42,
    },
  },
  {
    name: 'arp request is counted without addresses',
    frame: '02000000000202000000000108060001080006040001020000000001c0000201000000000000c0000202',
    expected: {
      etype: 0x0806,
      proto: 0,
      srcAddr: '0.0.0.0',
      dstAddr: '0.0.0.0',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 42,
    },
  },
  {
    name: 'lldp (non-ip) is counted without addresses',
    frame: '02000000000202000000000188cc000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d',
    expected: {
      etype: 0x88cc,
      proto: 0,
      srcAddr: '0.0.0.0',
      dstAddr: '0.0.0.0',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 44,
    },
  },
  {
    name: 'truncated ipv4 header',
    frame: '0200000000020200000000010800450000141234000040110000',
    expected: { parseError: true },
  },
  {
    name: 'ipv4 header length below 5 words',
    frame: '02000000000202000000000108004400001c1234000040110000c0000201c63364020001000200080000',
    expected: { parseError: true },
  },
  {
    name: 'ipv4 version field not 4',
    frame:
      '0200000000020200000000010800600000000008114020010db800000000000000000000000120010db80000000000000000000000020001000200080000',
    expected: { parseError: true },
  },
  {
    name: 'ipv4 options run past the end of the frame',
    frame: '02000000000202000000000108004f0000141234000040060000c0000201c6336402',
    expected: { parseError: true },
  },
  {
    name: 'truncated tcp header',
    frame: '02000000000202000000000108004500001e1234000040060000c0000201c633640200010002000003e80000',
    expected: { parseError: true },
  },
  {
    name: 'tcp data offset below 5 words',
    frame:
      '0200000000020200000000010800450000281234000040060000c0000201c633640200010002000003e8000000004002ffff00000000',
    expected: { parseError: true },
  },
  {
    name: 'truncated udp header',
    frame: '0200000000020200000000010800450000181234000040110000c0000201c633640200010002',
    expected: { parseError: true },
  },
  {
    name: 'truncated sctp common header',
    frame: '02000000000202000000000108004500001c1234000040840000c0000201c633640200010002deadbeef',
    expected: { parseError: true },
  },
  {
    name: 'truncated icmp header',
    frame: '0200000000020200000000010800450000161234000040010000c0000201c63364020800',
    expected: { parseError: true },
  },
  {
    name: 'truncated ipv6 header',
    frame: '02000000000202000000000186dd600000000000114020010db800000000000000000000000120010db80000',
    expected: { parseError: true },
  },
  {
    name: 'truncated ipv6 extension header',
    frame:
      '02000000000202000000000186dd600000000002004020010db800000000000000000000000120010db80000000000000000000000021100',
    expected: { parseError: true },
  },
  {
    name: 'ipv6 extension header longer than the frame',
    frame:
      '02000000000202000000000186dd6000000000083c4020010db800000000000000000000000120010db80000000000000000000000021103000000000000',
    expected: { parseError: true },
  },
  {
    name: 'truncated icmpv6 header',
    frame:
      '02000000000202000000000186dd6000000000013a4020010db800000000000000000000000120010db800000000000000000000000280',
    expected: { parseError: true },
  },
  {
    name: 'truncated 802.1Q tag',
    frame: '020000000002020000000001810000',
    expected: { parseError: true },
  },
];

/**
 * Tunnels and VLANs: frames whose key depends on ENABLE_TUNNELS (`withTunnels`), apart from
 * PACKET_VECTORS so the filter tables (test/vectors/filters.ts) keep their universe. Every parser
 * runs these as it runs PACKET_VECTORS.
 */
export const TUNNEL_VECTORS: readonly PacketVector[] = [
  {
    name: 'vxlan (vni 42) carrying ipv4 tcp: the inner packet is the key',
    frame:
      '020000000002020000000001080045b8005a1234000040110000c0000201c6336402823512b5004600000800000000002a0002000000000202000000000108004500002812340000400600000a0100010a0100029c400050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 33333,
      dstPort: 4789,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 46,
      bytes: 104,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 6,
      srcAddr: '10.1.0.1',
      dstAddr: '10.1.0.2',
      srcPort: 40000,
      dstPort: 80,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x002,
      dscp: 0,
      bytes: 104,
      tunnel: { type: 1, id: 42, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
  {
    name: 'geneve (vni 0x123456, 8 bytes of options) over ipv6 carrying ipv6 udp',
    frame:
      '02000000000202000000000186dd60000000005a114020010db800000000000000000000000120010db80000000000000000000000029c4017c1005a00000200655812345600000102030405060702000000000202000000000186dd60000000000c114020010db800010000000000000000000120010db800010000000000000000000213880035000c000061626364',
    expected: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 40000,
      dstPort: 6081,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 144,
    },
    withTunnels: {
      etype: 0x86dd,
      proto: 17,
      srcAddr: '2001:db8:1::1',
      dstAddr: '2001:db8:1::2',
      srcPort: 5000,
      dstPort: 53,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 144,
      tunnel: { type: 2, id: 1193046, src: '2001:db8::1', dst: '2001:db8::2' },
    },
  },
  {
    name: 'gre with key 7 carrying ipv4 icmp echo',
    frame:
      '02000000000202000000000108004500003812340000402f0000c0000201c633640220000800000000074500001c12340000400100000a0200010a0200020800000000010001',
    expected: {
      etype: 0x0800,
      proto: 47,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 70,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 1,
      srcAddr: '10.2.0.1',
      dstAddr: '10.2.0.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 8,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 70,
      tunnel: { type: 3, id: 7, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
  {
    name: 'gretap carrying an 802.1Q 30 tagged frame: the inner tag joins the key',
    frame:
      '02000000000202000000000108004500004a12340000402f0000c0000201c6336402000065580200000000020200000000018100001e08004500002012340000401100000a0300010a030002045708ae000c00007778797a',
    expected: {
      etype: 0x0800,
      proto: 47,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 88,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '10.3.0.1',
      dstAddr: '10.3.0.2',
      srcPort: 1111,
      dstPort: 2222,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 88,
      vlanOuter: 30,
      tunnel: { type: 3, id: 0, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
  {
    name: 'ipv4 in ipv4 carrying udp',
    frame:
      '0200000000020200000000010800450000321234000040040000c0000201c63364024500001e12340000401100000a0400010a0400020d05115c000a00006869',
    expected: {
      etype: 0x0800,
      proto: 4,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 64,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '10.4.0.1',
      dstAddr: '10.4.0.2',
      srcPort: 3333,
      dstPort: 4444,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 64,
      tunnel: { type: 4, id: 0, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
  {
    name: 'ipv6 in ipv4 carrying tcp',
    frame:
      '0200000000020200000000010800450000501234000040290000c0000201c6336402600000000014064020010db800040000000000000000000120010db800040000000000000000000215b301bb000003e8000000005012ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 41,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 94,
    },
    withTunnels: {
      etype: 0x86dd,
      proto: 6,
      srcAddr: '2001:db8:4::1',
      dstAddr: '2001:db8:4::2',
      srcPort: 5555,
      dstPort: 443,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x012,
      dscp: 0,
      bytes: 94,
      tunnel: { type: 4, id: 0, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
  {
    name: 'ipv4 in ipv6 carrying udp',
    frame:
      '02000000000202000000000186dd60000000001e044020010db800000000000000000000000120010db80000000000000000000000024500001e12340000401100000a0500010a0500021a0a1e61000a00006f6b',
    expected: {
      etype: 0x86dd,
      proto: 4,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      srcPort: 0,
      dstPort: 0,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 84,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '10.5.0.1',
      dstAddr: '10.5.0.2',
      srcPort: 6666,
      dstPort: 7777,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 84,
      tunnel: { type: 4, id: 0, src: '2001:db8::1', dst: '2001:db8::2' },
    },
  },
  {
    name: 'vxlan whose inner ipv4 header is cut short',
    frame:
      '0200000000020200000000010800450000421234000040110000c0000201c6336402823512b5002e00000800000000002a0002000000000202000000000108004500002812340000400600000a010001',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 33333,
      dstPort: 4789,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 80,
    },
    withTunnels: { parseError: true },
  },
  {
    name: 'udp to port 4789 without the vxlan I flag is not a tunnel',
    frame:
      '02000000000202000000000108004500005a1234000040110000c0000201c6336402823512b5004600000000000000002a0002000000000202000000000108004500002812340000400600000a0100010a0100029c400050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 33333,
      dstPort: 4789,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 104,
    },
  },
  {
    name: 'a first fragment of a vxlan packet is not opened',
    frame:
      '02000000000202000000000108004500005a1234200040110000c0000201c6336402823512b5004600000800000000002a0002000000000202000000000108004500002812340000400600000a0100010a0100029c400050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 33333,
      dstPort: 4789,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 104,
    },
  },
  {
    name: "vxlan in 802.1Q 7: the key's VLAN ids are the inner frame's",
    frame:
      '0200000000020200000000018100000708004500005a1234000040110000c0000201c6336402823512b5004600000800000000002a0002000000000202000000000108004500002812340000400600000a0100010a0100029c400050000003e8000000005002ffff00000000',
    expected: {
      etype: 0x0800,
      proto: 17,
      srcAddr: '192.0.2.1',
      dstAddr: '198.51.100.2',
      srcPort: 33333,
      dstPort: 4789,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x000,
      dscp: 0,
      bytes: 108,
      vlanOuter: 7,
    },
    withTunnels: {
      etype: 0x0800,
      proto: 6,
      srcAddr: '10.1.0.1',
      dstAddr: '10.1.0.2',
      srcPort: 40000,
      dstPort: 80,
      icmpType: 0,
      icmpCode: 0,
      tcpFlags: 0x002,
      dscp: 0,
      bytes: 108,
      tunnel: { type: 1, id: 42, src: '192.0.2.1', dst: '198.51.100.2' },
    },
  },
];

/** PACKET_VECTORS and TUNNEL_VECTORS: every frame the parsers must agree on. */
export const ALL_PACKET_VECTORS: readonly PacketVector[] = [...PACKET_VECTORS, ...TUNNEL_VECTORS];
