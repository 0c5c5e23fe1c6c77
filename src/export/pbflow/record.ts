/**
 * One row of a RecordBatch as the generated `pbflow.Record` message: the generic path, built with
 * protobuf-es. It is the specification the hand-written encoder (encode.ts) is tested against
 * byte for byte, and what consumers that want a message object (tests, tools) use.
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { DurationSchema, TimestampSchema } from '@bufbuild/protobuf/wkt';
import { type RecordBatch, readDns } from '../../codec/record-batch.ts';
import { HealthFlag, V2, V2_MAX_CROSSED } from '../../codec/v2-layout.ts';
import { isAllZero, isIpv4Mapped } from '../../model/ip.ts';
import { EtherType } from '../../model/names.ts';
import {
  DataLinkSchema,
  type DupMapEntry,
  DupMapEntrySchema,
  type IP,
  IPSchema,
  NetworkSchema,
  type Record,
  RecordSchema,
  TransportSchema,
  type Tunnel,
  TunnelSchema,
} from './gen/flow_pb.ts';

const NS_PER_S = 1_000_000_000n;

/**
 * True when the stored address at `offset` goes in the `ipv4` member of `pbflow.IP`: the flow is
 * IPv4, or the address is IPv4-mapped (what the reference's `net.IP.To4()` accepts).
 */
export function isPbIpv4(bytes: Uint8Array, offset: number, etype: number): boolean {
  return etype === EtherType.IPV4 || isIpv4Mapped(bytes, offset);
}

function ipOf(bytes: Buffer, offset: number, etype: number): IP {
  if (isPbIpv4(bytes, offset, etype)) {
    // fixed32 holding the address as a number: 10.0.0.1 is 0x0A000001, as the reference sends it.
    return create(IPSchema, { ipFamily: { case: 'ipv4', value: bytes.readUInt32BE(offset + 12) } });
  }
  return create(IPSchema, {
    ipFamily: { case: 'ipv6', value: Uint8Array.from(bytes.subarray(offset, offset + 16)) },
  });
}

function macOf(bytes: Buffer, offset: number): bigint {
  return (BigInt(bytes.readUInt16BE(offset)) << 32n) | BigInt(bytes.readUInt32BE(offset + 2));
}

function timestampOf(unixNs: bigint) {
  return create(TimestampSchema, { seconds: unixNs / NS_PER_S, nanos: Number(unixNs % NS_PER_S) });
}

function durationOf(ns: bigint) {
  return create(DurationSchema, { seconds: ns / NS_PER_S, nanos: Number(ns % NS_PER_S) });
}

/**
 * The health fields of the row at `o` (issue 14): RTTs only when measured (the health flags),
 * the latest drop's fields only with drops, counters only when not zero (proto3 leaves zero out).
 */
function healthOf(b: Buffer, o: number): MessageInitShape<typeof RecordSchema> {
  const flags = b[o + V2.HEALTH_FLAGS];
  const out: MessageInitShape<typeof RecordSchema> & object = {
    pktDropBytes: b.readBigUInt64LE(o + V2.DROP_BYTES),
    pktDropPackets: b.readBigUInt64LE(o + V2.DROP_PACKETS),
    pktRetransBytes: b.readBigUInt64LE(o + V2.RETRANS_BYTES),
    pktRetransPackets: b.readBigUInt64LE(o + V2.RETRANS_PACKETS),
  };
  if (out.pktDropPackets !== 0n) {
    out.pktDropLatestFlags = b.readUInt16LE(o + V2.DROP_LATEST_FLAGS);
    out.pktDropLatestState = b[o + V2.DROP_LATEST_STATE];
    out.pktDropLatestDropCause = b.readUInt32LE(o + V2.DROP_LATEST_CAUSE);
    out.pktDropLatestTime = timestampOf(b.readBigUInt64LE(o + V2.DROP_LATEST_NS));
  }
  if ((flags & HealthFlag.RTT) !== 0) {
    out.timeFlowRtt = durationOf(b.readBigUInt64LE(o + V2.RTT_LAST_NS));
    out.timeFlowRttMin = durationOf(b.readBigUInt64LE(o + V2.RTT_MIN_NS));
    out.timeFlowRttMax = durationOf(b.readBigUInt64LE(o + V2.RTT_MAX_NS));
    out.timeFlowRttSamples = b.readUInt32LE(o + V2.RTT_SAMPLES);
  }
  if ((flags & HealthFlag.HANDSHAKE) !== 0)
    out.timeHandshakeRtt = durationOf(b.readBigUInt64LE(o + V2.HANDSHAKE_RTT_NS));
  return out;
}

function dupListOf(batch: RecordBatch, o: number): DupMapEntry[] {
  const b = batch.bytes;
  const count = Math.min(b[o + V2.CROSSED_COUNT], V2_MAX_CROSSED);
  return Array.from({ length: count }, (_, k) =>
    create(DupMapEntrySchema, {
      interface: batch.interfaces.nameOf(b.readUInt32LE(o + V2.CROSSED_IF_INDEX + 4 * k)),
      direction: b[o + V2.CROSSED_DIRECTION + k],
    }),
  );
}

function tunnelOf(b: Buffer, o: number): Tunnel | undefined {
  const type = b[o + V2.TUNNEL_TYPE];
  if (type === 0) return undefined;
  return create(TunnelSchema, {
    type,
    id: b.readUInt32LE(o + V2.TUNNEL_ID),
    srcAddr: ipOf(b, o + V2.TUNNEL_SRC, 0),
    dstAddr: ipOf(b, o + V2.TUNNEL_DST, 0),
  });
}

/**
 * The DNS fields of the row at `o` (netobserv's 21, 22, 23, 25, 32 and flowtap's 1020-1024);
 * none when the row carries no DNS.
 */
function dnsFieldsOf(b: Buffer, o: number) {
  const dns = readDns(b, o);
  if (dns === undefined) return {};
  return {
    dnsId: dns.header?.id ?? 0,
    dnsFlags: dns.header?.flags ?? 0,
    dnsLatency: dns.latencyNs === undefined ? undefined : durationOf(dns.latencyNs),
    dnsErrno: dns.errno ?? 0,
    dnsName: dns.name ?? '',
    dnsQueries: dns.queries,
    dnsAnswers: dns.answers,
    dnsUnanswered: dns.unanswered,
    dnsMalformed: dns.malformed,
    dnsNameTruncated: dns.nameTruncated === true,
  };
}

/** Row `i` of `batch` as a `pbflow.Record` (allocates several objects; not for hot paths). */
export function pbRecordOf(batch: RecordBatch, i: number): Record {
  const b = batch.bytes;
  const o = batch.rowOffset(i);
  const etype = b.readUInt16LE(o + V2.ETH_PROTOCOL);
  return create(RecordSchema, {
    ethProtocol: etype,
    direction: b[o + V2.DIRECTION],
    timeFlowStart: timestampOf(b.readBigUInt64LE(o + V2.FIRST_SEEN_NS)),
    timeFlowEnd: timestampOf(b.readBigUInt64LE(o + V2.LAST_SEEN_NS)),
    dataLink: create(DataLinkSchema, { srcMac: macOf(b, o + V2.SRC_MAC), dstMac: macOf(b, o + V2.DST_MAC) }),
    network: create(NetworkSchema, {
      srcAddr: ipOf(b, o + V2.SRC_ADDR, etype),
      dstAddr: ipOf(b, o + V2.DST_ADDR, etype),
    }),
    transport: create(TransportSchema, {
      srcPort: b.readUInt16LE(o + V2.SRC_PORT),
      dstPort: b.readUInt16LE(o + V2.DST_PORT),
      protocol: b[o + V2.TRANSPORT_PROTOCOL],
    }),
    bytes: b.readBigUInt64LE(o + V2.BYTES),
    packets: b.readBigUInt64LE(o + V2.PACKETS),
    interface: batch.interfaces.nameOf(b.readUInt32LE(o + V2.IF_INDEX)),
    agentIp: isAllZero(b, o + V2.AGENT_IP) ? undefined : ipOf(b, o + V2.AGENT_IP, 0),
    dupList: dupListOf(batch, o),
    vlanId: b.readUInt16LE(o + V2.VLAN_OUTER),
    innerVlanId: b.readUInt16LE(o + V2.VLAN_INNER),
    tunnel: tunnelOf(b, o),
    ...healthOf(b, o),
    ...dnsFieldsOf(b, o),
  });
}
