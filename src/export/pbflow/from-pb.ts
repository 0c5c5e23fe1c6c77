/**
 * The collector side of pbflow: a serialized `pbflow.Records` (as the reference or flowtap sends
 * it) back to `Flow` objects, through the generated schema so any conforming sender is read the
 * same way. pbflow carries no interface index, ICMP type/code, TCP flags or DSCP: those are 0.
 * Values the flow model cannot hold (an IPv6 member that is not 16 bytes, a port above 65535) make
 * the whole message malformed rather than being silently cut.
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { Duration, Timestamp } from '@bufbuild/protobuf/wkt';
import { MalformedMessageError } from '../../errors.ts';
import type { Flow, FlowDns, FlowHealth } from '../../model/flow.ts';
import { IP_BYTES, writeIpv4Mapped } from '../../model/ip.ts';
import { MAC_BYTES } from '../../model/mac.ts';
import { type IP, type Record, RecordsSchema } from './gen/flow_pb.ts';

const NS_PER_S = 1_000_000_000n;
const MAX_MAC = (1n << 48n) - 1n;
const MAX_U64 = (1n << 64n) - 1n;

function check(ok: boolean, entry: number, detail: string): void {
  if (!ok) throw new MalformedMessageError('pbflow', `entry ${entry}: ${detail}`);
}

function addressOf(ip: IP | undefined, entry: number, field: string): Uint8Array {
  const out = new Uint8Array(IP_BYTES);
  const family = ip?.ipFamily;
  if (family?.case === 'ipv4') writeIpv4Mapped(family.value, out, 0);
  else if (family?.case === 'ipv6') {
    check(family.value.length === IP_BYTES, entry, `${field}.ipv6 has ${family.value.length} bytes, not 16`);
    out.set(family.value);
  }
  return out;
}

function macOf(value: bigint, entry: number, field: string): Uint8Array {
  check(value <= MAX_MAC, entry, `${field} 0x${value.toString(16)} is wider than 48 bits`);
  const out = new Uint8Array(MAC_BYTES);
  for (let k = MAC_BYTES - 1, v = value; k >= 0; k--, v >>= 8n) out[k] = Number(v & 0xffn);
  return out;
}

function unixNsOf(ts: Timestamp | Duration | undefined, entry: number, field: string): bigint {
  if (!ts) return 0n;
  check(ts.nanos >= 0 && ts.nanos < 1e9, entry, `${field}.nanos ${ts.nanos} is outside 0..999999999`);
  const ns = ts.seconds * NS_PER_S + BigInt(ts.nanos);
  check(ts.seconds >= 0n && ns <= MAX_U64, entry, `${field}.seconds is outside what u64 nanoseconds hold`);
  return ns;
}

/** One decoded `pbflow.Record` as a Flow; `entry` (its index) names it in errors. */
export function flowFromPbRecord(record: Record, entry = 0): Flow {
  const transport = record.transport;
  const srcPort = transport?.srcPort ?? 0;
  const dstPort = transport?.dstPort ?? 0;
  const proto = transport?.protocol ?? 0;
  check(record.ethProtocol <= 0xffff, entry, `eth_protocol ${record.ethProtocol} is above 65535`);
  check(record.direction <= 0xff, entry, `direction ${record.direction} is above 255`);
  check(srcPort <= 0xffff && dstPort <= 0xffff, entry, `port ${Math.max(srcPort, dstPort)} is above 65535`);
  check(proto <= 0xff, entry, `protocol ${proto} is above 255`);
  return {
    etype: record.ethProtocol,
    direction: record.direction,
    srcMac: macOf(record.dataLink?.srcMac ?? 0n, entry, 'src_mac'),
    dstMac: macOf(record.dataLink?.dstMac ?? 0n, entry, 'dst_mac'),
    srcAddr: addressOf(record.network?.srcAddr, entry, 'src_addr'),
    dstAddr: addressOf(record.network?.dstAddr, entry, 'dst_addr'),
    srcPort,
    dstPort,
    proto,
    ifIndex: 0,
    icmpType: 0,
    icmpCode: 0,
    // Counters above 2^53 lose precision in a number; no real flow comes near.
    bytes: Number(record.bytes),
    packets: Number(record.packets),
    timeFlowStartNs: unixNsOf(record.timeFlowStart, entry, 'time_flow_start'),
    timeFlowEndNs: unixNsOf(record.timeFlowEnd, entry, 'time_flow_end'),
    tcpFlags: 0,
    dscp: 0,
    interface: record.interface,
    ...identityOf(record, entry),
    ...healthOf(record, entry),
    ...dnsOf(record, entry),
  };
}

/**
 * The DNS a record carries (netobserv's fields 21-25, 32 and flowtap's 1020-1024), dated by the
 * flow's end; none when it carries no DNS field. The name keeps one byte per character, its first
 * 64, as rows do (record-batch.ts writeDns).
 */
function dnsOf(record: Record, entry: number): Partial<Flow> {
  check(record.dnsId <= 0xffff, entry, `dns_id ${record.dnsId} is above 65535`);
  check(record.dnsFlags <= 0xffff, entry, `dns_flags ${record.dnsFlags} is above 65535`);
  check(record.dnsErrno <= 0xff, entry, `dns_errno ${record.dnsErrno} is above 255`);
  const dns: FlowDns = {
    queries: record.dnsQueries,
    answers: record.dnsAnswers,
    unanswered: record.dnsUnanswered,
    malformed: record.dnsMalformed,
    latestNs: unixNsOf(record.timeFlowEnd, entry, 'time_flow_end'),
  };
  if (record.dnsId !== 0 || record.dnsFlags !== 0) dns.header = { id: record.dnsId, flags: record.dnsFlags };
  if (record.dnsLatency !== undefined) dns.latencyNs = unixNsOf(record.dnsLatency, entry, 'dns_latency');
  if (record.dnsErrno !== 0) dns.errno = record.dnsErrno;
  const name = Buffer.from(record.dnsName, 'latin1').subarray(0, 64).toString('latin1');
  if (name !== '') dns.name = name;
  if (record.dnsNameTruncated || record.dnsName.length > name.length) dns.nameTruncated = true;
  const any =
    dns.header !== undefined ||
    dns.latencyNs !== undefined ||
    dns.errno !== undefined ||
    dns.name !== undefined ||
    dns.nameTruncated === true ||
    (dns.queries | dns.answers | dns.unanswered | dns.malformed) !== 0;
  return any ? { dns } : {};
}

/**
 * The health fields of issue 14 a record carries. A sender that gives only the latest RTT
 * (netobserv) has it as min and max too, over one sample; RTT parts without the latest RTT, and a
 * latest drop without dropped packets, are not kept (decode.ts does the same to its rows).
 */
function healthOf(record: Record, entry: number): Partial<Flow> {
  check(
    record.pktDropLatestFlags <= 0xffff,
    entry,
    `pkt_drop_latest_flags ${record.pktDropLatestFlags} is above 65535`,
  );
  check(
    record.pktDropLatestState <= 0xff,
    entry,
    `pkt_drop_latest_state ${record.pktDropLatestState} is above 255`,
  );
  const health: FlowHealth = {
    // Counters above 2^53 lose precision in a number, as bytes and packets do.
    dropBytes: Number(record.pktDropBytes),
    dropPackets: Number(record.pktDropPackets),
    retransBytes: Number(record.pktRetransBytes),
    retransPackets: Number(record.pktRetransPackets),
  };
  if (record.timeFlowRtt !== undefined) {
    const lastNs = unixNsOf(record.timeFlowRtt, entry, 'time_flow_rtt');
    health.rtt = {
      minNs:
        record.timeFlowRttMin === undefined
          ? lastNs
          : unixNsOf(record.timeFlowRttMin, entry, 'time_flow_rtt_min'),
      maxNs:
        record.timeFlowRttMax === undefined
          ? lastNs
          : unixNsOf(record.timeFlowRttMax, entry, 'time_flow_rtt_max'),
      lastNs,
      samples: record.timeFlowRttSamples === 0 ? 1 : record.timeFlowRttSamples,
    };
  }
  if (record.timeHandshakeRtt !== undefined) {
    health.handshakeRttNs = unixNsOf(record.timeHandshakeRtt, entry, 'time_handshake_rtt');
  }
  if (record.pktDropPackets !== 0n) {
    health.latestDrop = {
      timeNs: unixNsOf(record.pktDropLatestTime, entry, 'pkt_drop_latest_time'),
      cause: record.pktDropLatestDropCause,
      tcpFlags: record.pktDropLatestFlags,
      tcpState: record.pktDropLatestState,
    };
  }
  const measured =
    health.rtt !== undefined ||
    health.handshakeRttNs !== undefined ||
    record.pktDropPackets !== 0n ||
    record.pktRetransPackets !== 0n;
  return measured ? { health } : {};
}

/**
 * The fields of issue 13 a record carries: agent IP, VLAN ids, tunnel. `dup_list` names
 * interfaces of the sender's host, which have no index here, so it is not read into the flow.
 */
function identityOf(record: Record, entry: number): Partial<Flow> {
  const out: Partial<Flow> = {};
  if (record.agentIp?.ipFamily.case !== undefined) out.agentIp = addressOf(record.agentIp, entry, 'agent_ip');
  check(record.vlanId <= 0xfff && record.innerVlanId <= 0xfff, entry, 'a VLAN id is above 4095');
  if (record.vlanId !== 0 || record.innerVlanId !== 0) {
    out.vlanOuter = record.vlanId;
    out.vlanInner = record.innerVlanId;
  }
  const tunnel = record.tunnel;
  if (tunnel !== undefined && tunnel.type !== 0) {
    check(tunnel.type <= 0xff, entry, `tunnel type ${tunnel.type} is above 255`);
    out.tunnel = {
      type: tunnel.type,
      id: tunnel.id,
      srcAddr: addressOf(tunnel.srcAddr, entry, 'tunnel.src_addr'),
      dstAddr: addressOf(tunnel.dstAddr, entry, 'tunnel.dst_addr'),
    };
  }
  return out;
}

/** A serialized `pbflow.Records` as Flows; throws MalformedMessageError when it is not one. */
export function flowsFromPbRecords(bytes: Uint8Array): Flow[] {
  let entries: Record[];
  try {
    entries = fromBinary(RecordsSchema, bytes).entries;
  } catch (err) {
    throw new MalformedMessageError('pbflow', `not a pbflow.Records message (${(err as Error).message})`, {
      cause: err,
    });
  }
  return entries.map((record, i) => flowFromPbRecord(record, i));
}
