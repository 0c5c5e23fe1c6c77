/**
 * A batch of flows as consecutive v2 records in one Buffer: the unit every stage passes on
 * (capture → account → export). Rows are read in place; `flow(i)` builds an object only when a
 * consumer wants one.
 */
import type { CrossedInterface, Flow, FlowDns, FlowHealth, FlowReverse, FlowTunnel } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { TWO_POW_32 } from '../model/u64.ts';
import { BatchBuilder } from './batch-builder.ts';
import {
  DnsFlag,
  HealthFlag,
  RecordFlag,
  TunnelType,
  V2,
  V2_DNS_NAME_MAX,
  V2_MAX_CROSSED,
  V2_RECORD_BYTES,
} from './v2-layout.ts';

function readU64Number(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_POW_32;
}

function writeU64Number(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32LE((value % TWO_POW_32) >>> 0, offset);
  buf.writeUInt32LE(Math.floor(value / TWO_POW_32) >>> 0, offset + 4);
}

/** Flows as v2 rows: row `i` starts at byte `i * V2_RECORD_BYTES` of `bytes`. */
export class RecordBatch {
  constructor(
    /** The rows; may be longer than `count` rows (the rest is unused). */
    readonly bytes: Buffer,
    /** Number of rows in use. */
    readonly count: number,
    /** Resolves the rows' interface indexes to names. */
    readonly interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  ) {}

  /** Byte offset of row `i` in `bytes`. */
  rowOffset(i: number): number {
    return i * V2_RECORD_BYTES;
  }

  /** Bytes counted for row `i`. */
  bytesAt(i: number): number {
    return readU64Number(this.bytes, i * V2_RECORD_BYTES + V2.BYTES);
  }

  /** Packets counted for row `i`. */
  packetsAt(i: number): number {
    return readU64Number(this.bytes, i * V2_RECORD_BYTES + V2.PACKETS);
  }

  /** Row `i` as a `Flow` object (allocates; for exporters and printers, not per-packet paths). */
  flow(i: number): Flow {
    const b = this.bytes;
    const o = i * V2_RECORD_BYTES;
    const ifIndex = b.readUInt32LE(o + V2.IF_INDEX);
    const flow: Flow = {
      etype: b.readUInt16LE(o + V2.ETH_PROTOCOL),
      direction: b[o + V2.DIRECTION],
      srcMac: b.subarray(o + V2.SRC_MAC, o + V2.SRC_MAC + 6),
      dstMac: b.subarray(o + V2.DST_MAC, o + V2.DST_MAC + 6),
      srcAddr: b.subarray(o + V2.SRC_ADDR, o + V2.SRC_ADDR + 16),
      dstAddr: b.subarray(o + V2.DST_ADDR, o + V2.DST_ADDR + 16),
      srcPort: b.readUInt16LE(o + V2.SRC_PORT),
      dstPort: b.readUInt16LE(o + V2.DST_PORT),
      proto: b[o + V2.TRANSPORT_PROTOCOL],
      ifIndex,
      icmpType: b[o + V2.ICMP_TYPE],
      icmpCode: b[o + V2.ICMP_CODE],
      bytes: readU64Number(b, o + V2.BYTES),
      packets: readU64Number(b, o + V2.PACKETS),
      timeFlowStartNs: b.readBigUInt64LE(o + V2.FIRST_SEEN_NS),
      timeFlowEndNs: b.readBigUInt64LE(o + V2.LAST_SEEN_NS),
      tcpFlags: b.readUInt16LE(o + V2.TCP_FLAGS),
      dscp: b[o + V2.DSCP],
      interface: this.interfaces.nameOf(ifIndex),
    };
    // Fields a row may not use are left out rather than set undefined, so flows compare as before.
    const vlanOuter = b.readUInt16LE(o + V2.VLAN_OUTER);
    const vlanInner = b.readUInt16LE(o + V2.VLAN_INNER);
    if (vlanOuter !== 0 || vlanInner !== 0) {
      flow.vlanOuter = vlanOuter;
      flow.vlanInner = vlanInner;
    }
    const tunnel = readTunnel(b, o);
    if (tunnel !== undefined) flow.tunnel = tunnel;
    const crossed = readCrossed(b, o);
    if (crossed !== undefined) flow.crossed = crossed;
    const agentIp = readAgentIp(b, o);
    if (agentIp !== undefined) flow.agentIp = agentIp;
    const reverse = readReverse(b, o);
    if (reverse !== undefined) flow.reverse = reverse;
    const health = readHealth(b, o);
    if (health !== undefined) flow.health = health;
    const dns = readDns(b, o);
    if (dns !== undefined) flow.dns = dns;
    return flow;
  }

  /** Every row as a `Flow` object. */
  *flows(): IterableIterator<Flow> {
    for (let i = 0; i < this.count; i++) yield this.flow(i);
  }
}

function readTunnel(b: Buffer, o: number): FlowTunnel | undefined {
  const type = b[o + V2.TUNNEL_TYPE];
  if (type === TunnelType.NONE) return undefined;
  return {
    type,
    id: b.readUInt32LE(o + V2.TUNNEL_ID),
    srcAddr: b.subarray(o + V2.TUNNEL_SRC, o + V2.TUNNEL_SRC + 16),
    dstAddr: b.subarray(o + V2.TUNNEL_DST, o + V2.TUNNEL_DST + 16),
  };
}

function readCrossed(b: Buffer, o: number): CrossedInterface[] | undefined {
  // A row never lists more (v2 validation refuses it); the bound keeps a damaged row in its fields.
  const count = Math.min(b[o + V2.CROSSED_COUNT], V2_MAX_CROSSED);
  if (count === 0) return undefined;
  const crossed: CrossedInterface[] = [];
  for (let i = 0; i < count; i++) {
    crossed.push({
      ifIndex: b.readUInt32LE(o + V2.CROSSED_IF_INDEX + 4 * i),
      direction: b[o + V2.CROSSED_DIRECTION + i],
    });
  }
  return crossed;
}

function readAgentIp(b: Buffer, o: number): Uint8Array | undefined {
  const at = o + V2.AGENT_IP;
  const any = b.readUInt32LE(at) | b.readUInt32LE(at + 4) | b.readUInt32LE(at + 8) | b.readUInt32LE(at + 12);
  return any === 0 ? undefined : b.subarray(at, at + 16);
}

function readReverse(b: Buffer, o: number): FlowReverse | undefined {
  if ((b[o + V2.RECORD_FLAGS] & RecordFlag.BIFLOW) === 0) return undefined;
  return {
    bytes: readU64Number(b, o + V2.REV_BYTES),
    packets: readU64Number(b, o + V2.REV_PACKETS),
    timeFlowStartNs: b.readBigUInt64LE(o + V2.REV_FIRST_SEEN_NS),
    timeFlowEndNs: b.readBigUInt64LE(o + V2.REV_LAST_SEEN_NS),
    tcpFlags: b.readUInt16LE(o + V2.REV_TCP_FLAGS),
    dscp: b[o + V2.REV_DSCP],
  };
}

/** True when row `o`'s health section holds anything (a measured RTT, drops or retransmissions). */
export function rowHasHealth(b: Buffer, o: number): boolean {
  return (
    b[o + V2.HEALTH_FLAGS] !== 0 ||
    readU64Number(b, o + V2.DROP_PACKETS) !== 0 ||
    readU64Number(b, o + V2.RETRANS_PACKETS) !== 0
  );
}

function readHealth(b: Buffer, o: number): FlowHealth | undefined {
  if (!rowHasHealth(b, o)) return undefined;
  const flags = b[o + V2.HEALTH_FLAGS];
  const dropPackets = readU64Number(b, o + V2.DROP_PACKETS);
  const health: FlowHealth = {
    dropBytes: readU64Number(b, o + V2.DROP_BYTES),
    dropPackets,
    retransBytes: readU64Number(b, o + V2.RETRANS_BYTES),
    retransPackets: readU64Number(b, o + V2.RETRANS_PACKETS),
  };
  if ((flags & HealthFlag.RTT) !== 0) {
    health.rtt = {
      minNs: b.readBigUInt64LE(o + V2.RTT_MIN_NS),
      maxNs: b.readBigUInt64LE(o + V2.RTT_MAX_NS),
      lastNs: b.readBigUInt64LE(o + V2.RTT_LAST_NS),
      samples: b.readUInt32LE(o + V2.RTT_SAMPLES),
    };
  }
  if ((flags & HealthFlag.HANDSHAKE) !== 0)
    health.handshakeRttNs = b.readBigUInt64LE(o + V2.HANDSHAKE_RTT_NS);
  if (dropPackets !== 0) {
    health.latestDrop = {
      timeNs: b.readBigUInt64LE(o + V2.DROP_LATEST_NS),
      cause: b.readUInt32LE(o + V2.DROP_LATEST_CAUSE),
      tcpFlags: b.readUInt16LE(o + V2.DROP_LATEST_FLAGS),
      tcpState: b[o + V2.DROP_LATEST_STATE],
    };
  }
  return health;
}

/** Writes `health` as the health section of the row at `offset` of `buf`. */
export function writeHealth(buf: Buffer, offset: number, health: FlowHealth): void {
  let flags = 0;
  const rtt = health.rtt;
  if (rtt !== undefined) {
    buf.writeBigUInt64LE(rtt.minNs, offset + V2.RTT_MIN_NS);
    buf.writeBigUInt64LE(rtt.maxNs, offset + V2.RTT_MAX_NS);
    buf.writeBigUInt64LE(rtt.lastNs, offset + V2.RTT_LAST_NS);
    buf.writeUInt32LE(rtt.samples >>> 0, offset + V2.RTT_SAMPLES);
    flags |= HealthFlag.RTT;
  }
  if (health.handshakeRttNs !== undefined) {
    buf.writeBigUInt64LE(health.handshakeRttNs, offset + V2.HANDSHAKE_RTT_NS);
    flags |= HealthFlag.HANDSHAKE;
  }
  writeU64Number(buf, offset + V2.DROP_BYTES, health.dropBytes);
  writeU64Number(buf, offset + V2.DROP_PACKETS, health.dropPackets);
  writeU64Number(buf, offset + V2.RETRANS_BYTES, health.retransBytes);
  writeU64Number(buf, offset + V2.RETRANS_PACKETS, health.retransPackets);
  const drop = health.latestDrop;
  if (drop !== undefined) {
    buf.writeBigUInt64LE(drop.timeNs, offset + V2.DROP_LATEST_NS);
    buf.writeUInt32LE(drop.cause >>> 0, offset + V2.DROP_LATEST_CAUSE);
    buf.writeUInt16LE(drop.tcpFlags, offset + V2.DROP_LATEST_FLAGS);
    buf[offset + V2.DROP_LATEST_STATE] = drop.tcpState;
  }
  buf[offset + V2.HEALTH_FLAGS] = flags;
}

/** True when row `o`'s DNS section holds anything (a message, a count or an errno). */
export function rowHasDns(b: Buffer, o: number): boolean {
  return (
    b[o + V2.DNS_RECORD_FLAGS] !== 0 ||
    b[o + V2.DNS_ERRNO] !== 0 ||
    (b.readUInt32LE(o + V2.DNS_QUERIES) |
      b.readUInt32LE(o + V2.DNS_ANSWERS) |
      b.readUInt32LE(o + V2.DNS_UNANSWERED) |
      b.readUInt32LE(o + V2.DNS_MALFORMED)) !==
      0
  );
}

/**
 * The DNS name of row `o` as text: its bytes one character each (latin1), so any byte a packet
 * held reads back as itself; a damaged length is bounded by the bytes a section keeps.
 */
export function rowDnsName(b: Buffer, o: number): string {
  const at = o + V2.DNS_NAME;
  return b.toString('latin1', at, at + Math.min(b[o + V2.DNS_NAME_LEN], V2_DNS_NAME_MAX));
}

/** The DNS section of row `o` as a `FlowDns`, or undefined when it is empty. */
export function readDns(b: Buffer, o: number): FlowDns | undefined {
  if (!rowHasDns(b, o)) return undefined;
  const flags = b[o + V2.DNS_RECORD_FLAGS];
  const dns: FlowDns = {
    queries: b.readUInt32LE(o + V2.DNS_QUERIES),
    answers: b.readUInt32LE(o + V2.DNS_ANSWERS),
    unanswered: b.readUInt32LE(o + V2.DNS_UNANSWERED),
    malformed: b.readUInt32LE(o + V2.DNS_MALFORMED),
    latestNs: b.readBigUInt64LE(o + V2.DNS_LATEST_NS),
  };
  if ((flags & DnsFlag.HEADER) !== 0)
    dns.header = { id: b.readUInt16LE(o + V2.DNS_ID), flags: b.readUInt16LE(o + V2.DNS_FLAGS) };
  if ((flags & DnsFlag.NAME) !== 0) dns.name = rowDnsName(b, o);
  if ((flags & DnsFlag.NAME_TRUNCATED) !== 0) dns.nameTruncated = true;
  if ((flags & DnsFlag.LATENCY) !== 0) dns.latencyNs = b.readBigUInt64LE(o + V2.DNS_LATENCY_NS);
  const errno = b[o + V2.DNS_ERRNO];
  if (errno !== 0) dns.errno = errno;
  return dns;
}

/** Writes `dns` as the DNS section of the row at `offset` of `buf` (a name is cut to 64 bytes). */
export function writeDns(buf: Buffer, offset: number, dns: FlowDns): void {
  let flags = 0;
  buf.writeUInt32LE(dns.queries >>> 0, offset + V2.DNS_QUERIES);
  buf.writeUInt32LE(dns.answers >>> 0, offset + V2.DNS_ANSWERS);
  buf.writeUInt32LE(dns.unanswered >>> 0, offset + V2.DNS_UNANSWERED);
  buf.writeUInt32LE(dns.malformed >>> 0, offset + V2.DNS_MALFORMED);
  buf.writeBigUInt64LE(dns.latestNs, offset + V2.DNS_LATEST_NS);
  if (dns.header !== undefined) {
    buf.writeUInt16LE(dns.header.id, offset + V2.DNS_ID);
    buf.writeUInt16LE(dns.header.flags, offset + V2.DNS_FLAGS);
    flags |= DnsFlag.HEADER;
  }
  buf.fill(0, offset + V2.DNS_NAME, offset + V2.DNS_NAME + V2_DNS_NAME_MAX);
  buf[offset + V2.DNS_NAME_LEN] = 0;
  if (dns.name !== undefined) {
    const written = buf.write(dns.name, offset + V2.DNS_NAME, V2_DNS_NAME_MAX, 'latin1');
    buf[offset + V2.DNS_NAME_LEN] = written;
    flags |= DnsFlag.NAME;
    if (written < dns.name.length) flags |= DnsFlag.NAME_TRUNCATED;
  }
  if (dns.nameTruncated === true) flags |= DnsFlag.NAME_TRUNCATED;
  buf.writeBigUInt64LE(dns.latencyNs ?? 0n, offset + V2.DNS_LATENCY_NS);
  if (dns.latencyNs !== undefined) flags |= DnsFlag.LATENCY;
  buf[offset + V2.DNS_ERRNO] = dns.errno ?? 0;
  buf[offset + V2.DNS_RECORD_FLAGS] = flags;
}

/** Writes `flow` as a v2 row at `offset` of `buf` (padding zeroed). */
export function writeFlowRow(buf: Buffer, offset: number, flow: Flow): void {
  buf.fill(0, offset, offset + V2_RECORD_BYTES);
  buf.writeUInt16LE(flow.etype, offset + V2.ETH_PROTOCOL);
  buf[offset + V2.DIRECTION] = flow.direction;
  buf[offset + V2.TRANSPORT_PROTOCOL] = flow.proto;
  buf.set(flow.srcMac.subarray(0, 6), offset + V2.SRC_MAC);
  buf.set(flow.dstMac.subarray(0, 6), offset + V2.DST_MAC);
  buf.set(flow.srcAddr.subarray(0, 16), offset + V2.SRC_ADDR);
  buf.set(flow.dstAddr.subarray(0, 16), offset + V2.DST_ADDR);
  buf.writeUInt16LE(flow.srcPort, offset + V2.SRC_PORT);
  buf.writeUInt16LE(flow.dstPort, offset + V2.DST_PORT);
  buf.writeUInt32LE(flow.ifIndex >>> 0, offset + V2.IF_INDEX);
  buf[offset + V2.ICMP_TYPE] = flow.icmpType;
  buf[offset + V2.ICMP_CODE] = flow.icmpCode;
  writeU64Number(buf, offset + V2.BYTES, flow.bytes);
  writeU64Number(buf, offset + V2.PACKETS, flow.packets);
  buf.writeBigUInt64LE(flow.timeFlowStartNs, offset + V2.FIRST_SEEN_NS);
  buf.writeBigUInt64LE(flow.timeFlowEndNs, offset + V2.LAST_SEEN_NS);
  buf.writeUInt16LE(flow.tcpFlags, offset + V2.TCP_FLAGS);
  buf[offset + V2.DSCP] = flow.dscp;
  buf.writeUInt16LE(flow.vlanOuter ?? 0, offset + V2.VLAN_OUTER);
  buf.writeUInt16LE(flow.vlanInner ?? 0, offset + V2.VLAN_INNER);
  const tunnel = flow.tunnel;
  if (tunnel !== undefined) {
    buf[offset + V2.TUNNEL_TYPE] = tunnel.type;
    buf.writeUInt32LE(tunnel.id >>> 0, offset + V2.TUNNEL_ID);
    buf.set(tunnel.srcAddr.subarray(0, 16), offset + V2.TUNNEL_SRC);
    buf.set(tunnel.dstAddr.subarray(0, 16), offset + V2.TUNNEL_DST);
  }
  const crossed = flow.crossed ?? [];
  const count = Math.min(crossed.length, V2_MAX_CROSSED);
  for (let i = 0; i < count; i++) {
    buf.writeUInt32LE(crossed[i].ifIndex >>> 0, offset + V2.CROSSED_IF_INDEX + 4 * i);
    buf[offset + V2.CROSSED_DIRECTION + i] = crossed[i].direction;
  }
  buf[offset + V2.CROSSED_COUNT] = count;
  if (flow.agentIp !== undefined) buf.set(flow.agentIp.subarray(0, 16), offset + V2.AGENT_IP);
  const reverse = flow.reverse;
  if (reverse !== undefined) {
    writeU64Number(buf, offset + V2.REV_BYTES, reverse.bytes);
    writeU64Number(buf, offset + V2.REV_PACKETS, reverse.packets);
    buf.writeBigUInt64LE(reverse.timeFlowStartNs, offset + V2.REV_FIRST_SEEN_NS);
    buf.writeBigUInt64LE(reverse.timeFlowEndNs, offset + V2.REV_LAST_SEEN_NS);
    buf.writeUInt16LE(reverse.tcpFlags, offset + V2.REV_TCP_FLAGS);
    buf[offset + V2.REV_DSCP] = reverse.dscp;
    buf[offset + V2.RECORD_FLAGS] |= RecordFlag.BIFLOW;
  }
  if (flow.health !== undefined) writeHealth(buf, offset, flow.health);
  if (flow.dns !== undefined) writeDns(buf, offset, flow.dns);
}

/**
 * Appends v2 rows to a growing buffer and hands them out as batches, lending and reusing buffers
 * by the rule of {@link BatchBuilder}. Parsers and the map drain write fields straight into
 * `bytes` at the offset `appendRow()` returns, so no object is made per record.
 */
export class RecordBatchBuilder extends BatchBuilder<RecordBatch> {
  constructor(
    initialRows = 1024,
    /** Names handed to every batch this builder finishes. */
    readonly interfaces: InterfaceNames = NO_INTERFACE_NAMES,
  ) {
    super(V2_RECORD_BYTES, initialRows);
  }

  protected batchOf(bytes: Buffer, count: number): RecordBatch {
    return new RecordBatch(bytes, count, this.interfaces);
  }

  /** Appends `flow` as one row. */
  append(flow: Flow): void {
    const offset = this.appendRow();
    writeFlowRow(this.bytes, offset, flow);
  }
}

/** A batch holding the given flows (tests, benchmarks, small tools). */
export function recordBatchOf(
  flows: readonly Flow[],
  interfaces: InterfaceNames = NO_INTERFACE_NAMES,
): RecordBatch {
  const builder = new RecordBatchBuilder(Math.max(flows.length, 1), interfaces);
  for (const flow of flows) builder.append(flow);
  return builder.finish();
}
