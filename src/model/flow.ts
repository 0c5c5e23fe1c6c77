/**
 * A flow in object form: what exporters, printers and tests handle one at a time. Hot paths keep
 * flows as rows of a `RecordBatch` (src/codec/record-batch.ts) and build these only at the edge.
 */

import { dnsLatencyMs, dnsRcodeName } from './dns-names.ts';
import { type DropReasonNames, NUMERIC_DROP_REASONS } from './drop-reasons.ts';
import { isIcmpProtocol } from './icmp.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from './interfaces.ts';
import { formatIp } from './ip.ts';
import { formatMac } from './mac.ts';
import { directionName, transportProtocolName, tunnelTypeName } from './names.ts';
import { formatRfc3339Nano } from './time.ts';

/** What identifies a flow: the reference's key (Etype, Direction, MACs, IPs, ports, protocol, interface) plus ICMP type/code. */
export interface FlowKey {
  /** Ethernet type, e.g. 0x0800 (IPv4), 0x86DD (IPv6). */
  etype: number;
  /** 0 ingress, 1 egress. */
  direction: number;
  /** Source MAC, 6 bytes in wire order. */
  srcMac: Uint8Array;
  /** Destination MAC, 6 bytes in wire order. */
  dstMac: Uint8Array;
  /** Source address, 16 bytes, IPv4 mapped (::ffff:a.b.c.d). */
  srcAddr: Uint8Array;
  /** Destination address, 16 bytes, IPv4 mapped. */
  dstAddr: Uint8Array;
  /** Transport source port (0 when the protocol has none). */
  srcPort: number;
  /** Transport destination port. */
  dstPort: number;
  /** IANA transport protocol number. */
  proto: number;
  /** Index of the interface the flow was seen on (pcap: the capture interface id). */
  ifIndex: number;
  /** ICMP/ICMPv6 type, 0 for other protocols. */
  icmpType: number;
  /** ICMP/ICMPv6 code, 0 for other protocols. */
  icmpCode: number;
  /** VLAN id of the outer 802.1Q/802.1ad tag in the frame; absent or 0 when untagged. */
  vlanOuter?: number;
  /** VLAN id of the inner tag; absent or 0 when there is none. */
  vlanInner?: number;
}

/** The encapsulation a flow's (inner) packets arrived in. */
export interface FlowTunnel {
  /** `TunnelType` of src/codec/v2-layout.ts (never NONE here). */
  type: number;
  /** VXLAN/Geneve VNI or GRE key, 0 when the tunnel has none. */
  id: number;
  /** Outer source address, 16 bytes, IPv4 mapped. */
  srcAddr: Uint8Array;
  /** Outer destination address. */
  dstAddr: Uint8Array;
}

/** One interface a flow crossed on the host, and the direction it crossed it in. */
export interface CrossedInterface {
  ifIndex: number;
  /** 0 ingress, 1 egress. */
  direction: number;
}

/** The reverse direction's counters of a bidirectional record (RFC 5103). */
export interface FlowReverse {
  bytes: number;
  packets: number;
  /** Unix epoch nanoseconds; 0 when the reverse direction had no packet. */
  timeFlowStartNs: bigint;
  timeFlowEndNs: bigint;
  tcpFlags: number;
  dscp: number;
}

/**
 * TCP health of a flow (struct flow_health): present when anything was measured. Times in
 * nanoseconds; an RTT or handshake time that was not measured is absent, not 0.
 */
export interface FlowHealth {
  /** Smoothed RTT of the flow's socket (tcp_sock srtt) over the samples taken: min, max, latest. */
  rtt?: { minNs: bigint; maxNs: bigint; lastNs: bigint; samples: number };
  /** SYN → SYN-ACK (seen from the client) or SYN-ACK → ACK (from the server). */
  handshakeRttNs?: bigint;
  dropBytes: number;
  dropPackets: number;
  retransBytes: number;
  retransPackets: number;
  /** The latest drop: when (the clock of the flow's times), the kernel's `skb_drop_reason` value,
   * the dropped packet's TCP flags and its socket's TCP state (0 unknown). Absent without drops. */
  latestDrop?: { timeNs: bigint; cause: number; tcpFlags: number; tcpState: number };
}

/**
 * What a flow's DNS messages said (struct flow_dns): present when the flow carried DNS. Parts not
 * observed are absent, not 0. Times in nanoseconds, on the clock of the flow's times.
 */
export interface FlowDns {
  /** Queries seen on the flow. */
  queries: number;
  /** Responses on the flow that matched a query. */
  answers: number;
  /** Queries of the flow that got no response in time. */
  unanswered: number;
  /** DNS messages on the flow that did not parse. */
  malformed: number;
  /** Time of the latest message recorded. */
  latestNs: bigint;
  /** Id and flags word (rcode in the low 4 bits) of the latest message. */
  header?: { id: number; flags: number };
  /** Its first question name: dotted, lower-cased, no final dot ('' is the root). */
  name?: string;
  /** The name was longer than the 64 bytes kept. */
  nameTruncated?: boolean;
  /** Response time minus query time of the latest answered query. */
  latencyNs?: bigint;
  /** netobserv's dns_errno: 2 a response without its query, 14 a header cut short, 22 malformed. */
  errno?: number;
}

/** A flow: its key and what was counted for it. */
export interface Flow extends FlowKey {
  /** Sum of the frame lengths of its packets. */
  bytes: number;
  /** Number of packets. */
  packets: number;
  /** First packet, Unix epoch nanoseconds. */
  timeFlowStartNs: bigint;
  /** Last packet, Unix epoch nanoseconds. */
  timeFlowEndNs: bigint;
  /** OR of the TCP flags of every packet (bit 0 FIN ... bit 8 NS). */
  tcpFlags: number;
  /** DSCP of the flow's latest packet (6 bits); see src/codec/merge-rule.ts. */
  dscp: number;
  /** Name of the interface (`ifIndex` resolved), '' when unknown. */
  interface: string;
  /** Present when the flow arrived encapsulated (the key is the inner packet's). */
  tunnel?: FlowTunnel;
  /**
   * Every interface the flow crossed, first-seen order; the first is the one that counted it.
   * Absent: only the key's interface (`ifIndex`, `direction`).
   */
  crossed?: readonly CrossedInterface[];
  /** Address of the agent that observed the flow, 16 bytes IPv4 mapped; absent when unknown. */
  agentIp?: Uint8Array;
  /** Present on a bidirectional record: the reverse direction's counters. */
  reverse?: FlowReverse;
  /** Present when TCP health was measured for the flow. */
  health?: FlowHealth;
  /** Present when the flow carried DNS (DNS tracking). */
  dns?: FlowDns;
}

const JSON_STRINGS = new Map<string, string>();

/** JSON text of an interface name; names are few, so each is escaped once. */
function jsonString(text: string): string {
  let json = JSON_STRINGS.get(text);
  if (json === undefined) {
    json = JSON.stringify(text);
    if (JSON_STRINGS.size < 4096) JSON_STRINGS.set(text, json);
  }
  return json;
}

/**
 * The reference's JSON form of one flow, fields in its order; flowtap's extensions follow:
 * `TcpFlags` and `Dscp` left out when zero, so a flow the reference could express prints exactly
 * as the reference printed it, `IcmpType`/`IcmpCode` on every ICMP and ICMPv6 flow (0/0 is the
 * echo reply, not an absence), then those of {@link identityJson}, {@link healthJson} and
 * {@link dnsJson}. `interfaces` names the interfaces-crossed list, `dropReasons` the kernel's drop
 * reasons.
 */
export function flowToJson(
  flow: Flow,
  interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  dropReasons: DropReasonNames = NUMERIC_DROP_REASONS,
): string {
  let json =
    `{"Etype":${flow.etype},"Direction":"${directionName(flow.direction)}",` +
    `"DataLink":{"SrcMac":"${formatMac(flow.srcMac)}","DstMac":"${formatMac(flow.dstMac)}"},` +
    `"Network":{"SrcAddr":"${formatIp(flow.srcAddr, 0, flow.etype)}","DstAddr":"${formatIp(flow.dstAddr, 0, flow.etype)}"},` +
    `"Transport":{"SrcPort":${flow.srcPort},"DstPort":${flow.dstPort},"Proto":"${transportProtocolName(flow.proto)}"},` +
    `"Bytes":${flow.bytes},"TimeFlowStart":"${formatRfc3339Nano(flow.timeFlowStartNs)}",` +
    `"TimeFlowEnd":"${formatRfc3339Nano(flow.timeFlowEndNs)}","Interface":${jsonString(flow.interface)},` +
    `"Packets":${flow.packets}`;
  if (flow.tcpFlags !== 0) json += `,"TcpFlags":${flow.tcpFlags}`;
  if (flow.dscp !== 0) json += `,"Dscp":${flow.dscp}`;
  if (isIcmpProtocol(flow.proto)) {
    json += `,"IcmpType":${flow.icmpType},"IcmpCode":${flow.icmpCode}`;
  }
  json += identityJson(flow, interfaces);
  if (flow.health !== undefined) json += healthJson(flow.health, dropReasons);
  if (flow.dns !== undefined) json += dnsJson(flow.dns);
  return `${json}}`;
}

/**
 * The JSON fields of issue 13, each left out when the flow has no such field: `AgentIP` (the
 * newest netobserv's name), `Interfaces` and `IfDirections` (the interfaces crossed and the
 * direction on each, as netobserv's collector names them; names resolved through `interfaces`,
 * '' when unknown like `Interface`), `VlanId` and `InnerVlanId`, `Tunnel` (`Type`, `Id`, outer
 * `SrcAddr` and `DstAddr`), and on bidirectional records the reverse direction's `RevBytes`,
 * `RevPackets` (both always there, 0 for one-way traffic), `RevTimeFlowStart` and
 * `RevTimeFlowEnd` (when it had packets), `RevTcpFlags` and `RevDscp` (when not zero).
 */
export function identityJson(flow: Flow, interfaces: InterfaceNames): string {
  let json = '';
  if (flow.agentIp !== undefined) json += `,"AgentIP":"${formatIp(flow.agentIp, 0, 0)}"`;
  const crossed = flow.crossed;
  if (crossed !== undefined && crossed.length > 0) {
    json += `,"Interfaces":[${crossed.map((c) => jsonString(interfaces.nameOf(c.ifIndex))).join(',')}]`;
    json += `,"IfDirections":[${crossed.map((c) => c.direction).join(',')}]`;
  }
  if (flow.vlanOuter) json += `,"VlanId":${flow.vlanOuter}`;
  if (flow.vlanInner) json += `,"InnerVlanId":${flow.vlanInner}`;
  const tunnel = flow.tunnel;
  if (tunnel !== undefined) {
    json +=
      `,"Tunnel":{"Type":"${tunnelTypeName(tunnel.type)}","Id":${tunnel.id},` +
      `"SrcAddr":"${formatIp(tunnel.srcAddr, 0, 0)}","DstAddr":"${formatIp(tunnel.dstAddr, 0, 0)}"}`;
  }
  const reverse = flow.reverse;
  if (reverse !== undefined) {
    json += `,"RevBytes":${reverse.bytes},"RevPackets":${reverse.packets}`;
    if (reverse.packets > 0) {
      json +=
        `,"RevTimeFlowStart":"${formatRfc3339Nano(reverse.timeFlowStartNs)}"` +
        `,"RevTimeFlowEnd":"${formatRfc3339Nano(reverse.timeFlowEndNs)}"`;
    }
    if (reverse.tcpFlags !== 0) json += `,"RevTcpFlags":${reverse.tcpFlags}`;
    if (reverse.dscp !== 0) json += `,"RevDscp":${reverse.dscp}`;
  }
  return json;
}

/**
 * The JSON fields of issue 14 (TCP health), each left out when not measured or zero, named as
 * netobserv names them where it has them: `TimeFlowRttNs` (the latest smoothed RTT), then
 * flowtap's `TimeFlowRttMinNs` and `TimeFlowRttMaxNs`; `TimeHandshakeRttNs`; with drops,
 * netobserv's `PktDropBytes`, `PktDropPackets`, `PktDropLatestFlags`, `PktDropLatestState` (the
 * TCP state's name, left out when the dropped packet had no socket) and `PktDropLatestDropCause`
 * (the kernel's enumerator, `SKB_DROP_REASON_NETFILTER_DROP`, as netobserv writes it); with
 * retransmissions, flowtap's `PktRetransPackets` and `PktRetransBytes`.
 */
export function healthJson(health: FlowHealth, dropReasons: DropReasonNames): string {
  let json = '';
  const rtt = health.rtt;
  if (rtt !== undefined) {
    json += `,"TimeFlowRttNs":${rtt.lastNs},"TimeFlowRttMinNs":${rtt.minNs},"TimeFlowRttMaxNs":${rtt.maxNs}`;
  }
  if (health.handshakeRttNs !== undefined) json += `,"TimeHandshakeRttNs":${health.handshakeRttNs}`;
  const drop = health.latestDrop;
  if (health.dropPackets !== 0 && drop !== undefined) {
    json += `,"PktDropBytes":${health.dropBytes},"PktDropPackets":${health.dropPackets}`;
    json += `,"PktDropLatestFlags":${drop.tcpFlags}`;
    if (drop.tcpState !== 0)
      json += `,"PktDropLatestState":${jsonString(dropReasons.tcpStateName(drop.tcpState))}`;
    json += `,"PktDropLatestDropCause":${jsonString(dropReasons.kernelNameOf(drop.cause))}`;
  }
  if (health.retransPackets !== 0) {
    json += `,"PktRetransPackets":${health.retransPackets},"PktRetransBytes":${health.retransBytes}`;
  }
  return json;
}

/**
 * The JSON fields of a flow's DNS (issue 15), each left out when the flow has no such part:
 * netobserv's `DnsId`, `DnsFlags`, `DnsFlagsResponseCode` (the response code's name), `DnsLatencyMs`
 * (whole milliseconds), `DnsName` (the first question's name, '.' for the root) and `DnsErrno`
 * (non-zero), then flowtap's `DnsNameTruncated` (true when the name was cut to 64 bytes),
 * `DnsQueries`, `DnsAnswers`, `DnsUnanswered` and `DnsMalformed` (when non-zero).
 */
export function dnsJson(dns: FlowDns): string {
  let json = '';
  if (dns.header !== undefined) {
    json +=
      `,"DnsId":${dns.header.id},"DnsFlags":${dns.header.flags}` +
      `,"DnsFlagsResponseCode":"${dnsRcodeName(dns.header.flags)}"`;
  }
  if (dns.latencyNs !== undefined) json += `,"DnsLatencyMs":${dnsLatencyMs(dns.latencyNs)}`;
  if (dns.name !== undefined) json += `,"DnsName":${JSON.stringify(dns.name === '' ? '.' : dns.name)}`;
  if (dns.errno !== undefined) json += `,"DnsErrno":${dns.errno}`;
  if (dns.nameTruncated === true) json += ',"DnsNameTruncated":true';
  if (dns.queries !== 0) json += `,"DnsQueries":${dns.queries}`;
  if (dns.answers !== 0) json += `,"DnsAnswers":${dns.answers}`;
  if (dns.unanswered !== 0) json += `,"DnsUnanswered":${dns.unanswered}`;
  if (dns.malformed !== 0) json += `,"DnsMalformed":${dns.malformed}`;
  return json;
}

/** Key fields as one string, for tests and tools that group flows in a Map (not for hot paths). */
export function flowKeyString(key: FlowKey): string {
  return [
    key.etype,
    key.direction,
    formatMac(key.srcMac),
    formatMac(key.dstMac),
    formatIp(key.srcAddr, 0, key.etype),
    formatIp(key.dstAddr, 0, key.etype),
    key.srcPort,
    key.dstPort,
    key.proto,
    key.ifIndex,
    key.icmpType,
    key.icmpCode,
    key.vlanOuter ?? 0,
    key.vlanInner ?? 0,
  ].join('|');
}
