/**
 * Bidirectional records (RFC 5103): the stage after accounting that pairs the two directions of a
 * conversation in an evicted batch into one record, and its inverse for the outputs that have no
 * bidirectional form (pbflow, Kafka).
 *
 * Two rows pair when they are the two directions of one conversation on one interface: same
 * Ethernet type, protocol, interface and VLAN ids, with source and destination (address and port)
 * swapped; ICMP echo requests pair with the echo replies coming back (ICMPv6 likewise), other ICMP
 * messages only with the same type and code the other way. Direction and MAC addresses are not
 * compared (a reply may come back through another router). The **forward** side is the row seen
 * first (the smaller first-seen time; at equal times, the earlier row in the batch): within an
 * eviction window the first packet of a new conversation is its initiator's, so forward is the
 * initiator's direction, but a long conversation re-evicted every active timeout is oriented by
 * whichever side spoke first in each window. The record keeps the forward row's key and metrics;
 * the reverse row's counters go in the reverse fields (rev_bytes, rev_packets, rev first/last
 * seen, rev TCP flags, rev DSCP). Every record leaving the stage has FLOWTAP_RECORD_BIFLOW set; a
 * one-way flow has zero reverse counts. A record's health and DNS sections are its
 * conversation's: the reverse row's are merged into the forward row's by the merge rule (drops and
 * retransmissions of both directions add, the RTT range spans both; the queries of one side and
 * the answers of the other make one DNS exchange), and when a record is split again they stay
 * with the forward row, so nothing is counted twice.
 *
 * Pairs are found within one evicted batch: the accounter evicts the whole cache at once, so both
 * directions of a conversation are in the same batch except across an eviction forced by a full
 * cache. In kernel dedup mode a row's interface is the first it was seen on, so a forwarded
 * conversation whose reply is first seen on another interface stays two one-way records.
 */
import { mergeFlowDns, mergeFlowHealth } from '../codec/merge-rule.ts';
import { RecordBatch } from '../codec/record-batch.ts';
import { int32Words, rowWords } from '../codec/row-words.ts';
import { RecordFlag, V2, V2_RECORD_BYTES, V2_ROW_WORDS } from '../codec/v2-layout.ts';
import { IpProto } from '../model/names.ts';

/** ICMP query types and the reply type that answers each (ICMP and ICMPv6 numbers differ). */
const ICMP_REPLY_OF = new Map<number, number>([
  [8, 0], // echo
  [13, 14], // timestamp
  [15, 16], // information
  [17, 18], // address mask
]);
const ICMPV6_REPLY_OF = new Map<number, number>([[128, 129]]); // echo
const ICMP_REQUEST_OF = new Map([...ICMP_REPLY_OF].map(([q, r]) => [r, q]));
const ICMPV6_REQUEST_OF = new Map([...ICMPV6_REPLY_OF].map(([q, r]) => [r, q]));

/** Bytes of an endpoint in a pairing key: a 16-byte address and a 2-byte port. */
const ENDPOINT_BYTES = 18;
/** Where a row's health section (struct flow_health) starts; the DNS section follows it to the end. */
const HEALTH_AT = V2.RTT_MIN_NS;
/** Where a row's DNS section (struct flow_dns) starts. */
const DNS_AT = V2.DNS_LATENCY_NS;

/** -1, 0 or 1 as the endpoint (address, port) at `a` sorts before, equal to or after the one at `b`. */
function compareEndpoints(row: Buffer, a: number, aPort: number, b: number, bPort: number): number {
  for (let k = 0; k < 16; k++) {
    const d = row[a + k] - row[b + k];
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return aPort === bPort ? 0 : aPort < bPort ? -1 : 1;
}

/**
 * The conversation a row belongs to and its side in it, as one string: rows `x` and `y` pair when
 * `pairingKey(x)` is `pairingKey(y)` with its last character (the side, '0' or '1') flipped.
 * Undefined when the row cannot pair (both ends equal).
 */
function pairingKey(row: Buffer, o: number, scratch: Buffer): string | undefined {
  const proto = row[o + V2.TRANSPORT_PROTOCOL];
  const srcPort = row.readUInt16LE(o + V2.SRC_PORT);
  const dstPort = row.readUInt16LE(o + V2.DST_PORT);
  let type = row[o + V2.ICMP_TYPE];
  let side: number;
  const icmp = proto === IpProto.ICMP || proto === IpProto.ICMPV6;
  const replyOf = proto === IpProto.ICMP ? ICMP_REPLY_OF : ICMPV6_REPLY_OF;
  const requestOf = proto === IpProto.ICMP ? ICMP_REQUEST_OF : ICMPV6_REQUEST_OF;
  if (icmp && replyOf.has(type)) {
    side = 0; // a request: its source is the conversation's first end
  } else if (icmp && requestOf.has(type)) {
    type = requestOf.get(type) ?? type;
    side = 1;
  } else {
    const order = compareEndpoints(row, o + V2.SRC_ADDR, srcPort, o + V2.DST_ADDR, dstPort);
    if (order === 0) return undefined;
    side = order < 0 ? 0 : 1;
  }
  // first end, second end, then what must be equal on both sides
  const [first, firstPort, second, secondPort] =
    side === 0
      ? [o + V2.SRC_ADDR, srcPort, o + V2.DST_ADDR, dstPort]
      : [o + V2.DST_ADDR, dstPort, o + V2.SRC_ADDR, srcPort];
  row.copy(scratch, 0, first, first + 16);
  scratch.writeUInt16LE(firstPort, 16);
  row.copy(scratch, ENDPOINT_BYTES, second, second + 16);
  scratch.writeUInt16LE(secondPort, ENDPOINT_BYTES + 16);
  let p = 2 * ENDPOINT_BYTES;
  scratch.writeUInt16LE(row.readUInt16LE(o + V2.ETH_PROTOCOL), p);
  scratch[p + 2] = proto;
  scratch[p + 3] = icmp ? type : 0;
  scratch[p + 4] = icmp ? row[o + V2.ICMP_CODE] : 0;
  scratch.writeUInt32LE(row.readUInt32LE(o + V2.IF_INDEX), p + 5);
  scratch.writeUInt16LE(row.readUInt16LE(o + V2.VLAN_OUTER), p + 9);
  scratch.writeUInt16LE(row.readUInt16LE(o + V2.VLAN_INNER), p + 11);
  p += 13;
  return `${scratch.toString('latin1', 0, p)}${side}`;
}

/** The key of the other side of the conversation whose side key is `key`. */
function partnerKey(key: string): string {
  return key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
}

/** True when row `a` was seen before row `b` (first-seen, then position). */
function seenFirst(bytes: Buffer, a: number, b: number): boolean {
  const ta = bytes.readBigUInt64LE(a * V2_RECORD_BYTES + V2.FIRST_SEEN_NS);
  const tb = bytes.readBigUInt64LE(b * V2_RECORD_BYTES + V2.FIRST_SEEN_NS);
  return ta < tb || (ta === tb && a < b);
}

/** Copies the metrics of row `from` into the reverse fields of the output row at `out`. */
function writeReverse(src: Buffer, from: number, dst: Buffer, out: number): void {
  const f = from * V2_RECORD_BYTES;
  src.copy(dst, out + V2.REV_BYTES, f + V2.BYTES, f + V2.BYTES + 8);
  src.copy(dst, out + V2.REV_PACKETS, f + V2.PACKETS, f + V2.PACKETS + 8);
  src.copy(dst, out + V2.REV_FIRST_SEEN_NS, f + V2.FIRST_SEEN_NS, f + V2.FIRST_SEEN_NS + 8);
  src.copy(dst, out + V2.REV_LAST_SEEN_NS, f + V2.LAST_SEEN_NS, f + V2.LAST_SEEN_NS + 8);
  dst.writeUInt16LE(src.readUInt16LE(f + V2.TCP_FLAGS), out + V2.REV_TCP_FLAGS);
  dst[out + V2.REV_DSCP] = src[f + V2.DSCP];
}

/** True when row `i` of `bytes` is already a bidirectional record. */
function isBiflow(bytes: Buffer, i: number): boolean {
  return (bytes[i * V2_RECORD_BYTES + V2.RECORD_FLAGS] & RecordFlag.BIFLOW) !== 0;
}

/**
 * The rows of `batch` with the two directions of each conversation in one bidirectional record
 * (see the module comment). Records keep the position of their forward row; rows that already
 * are bidirectional pass unchanged.
 */
export function pairBiflows(batch: RecordBatch): RecordBatch {
  const src = batch.bytes;
  const count = batch.count;
  /** partner[i]: the row paired with row i, or -1. */
  const partner = new Int32Array(count).fill(-1);
  const waiting = new Map<string, number>();
  const scratch = Buffer.alloc(2 * ENDPOINT_BYTES + 13);
  for (let i = 0; i < count; i++) {
    if (isBiflow(src, i)) continue;
    const key = pairingKey(src, i * V2_RECORD_BYTES, scratch);
    if (key === undefined) continue;
    const other = partnerKey(key);
    const j = waiting.get(other);
    if (j !== undefined) {
      waiting.delete(other);
      partner[i] = j;
      partner[j] = i;
    } else if (!waiting.has(key)) {
      waiting.set(key, i);
    }
  }
  const out = Buffer.alloc(count * V2_RECORD_BYTES);
  const outWords = int32Words(out, count * V2_ROW_WORDS);
  let srcWords: Int32Array | undefined;
  let rows = 0;
  for (let i = 0; i < count; i++) {
    const j = partner[i];
    if (j >= 0 && !seenFirst(src, i, j)) continue; // the reverse side, written with its forward
    const o = rows * V2_RECORD_BYTES;
    src.copy(out, o, i * V2_RECORD_BYTES, (i + 1) * V2_RECORD_BYTES);
    if (j >= 0) {
      writeReverse(src, j, out, o);
      srcWords ??= rowWords(batch);
      const reverseLater =
        src.readBigUInt64LE(j * V2_RECORD_BYTES + V2.LAST_SEEN_NS) >
        src.readBigUInt64LE(i * V2_RECORD_BYTES + V2.LAST_SEEN_NS);
      mergeFlowHealth(
        outWords,
        (o + HEALTH_AT) / 4,
        srcWords,
        j * V2_ROW_WORDS + HEALTH_AT / 4,
        reverseLater,
      );
      mergeFlowDns(outWords, (o + DNS_AT) / 4, srcWords, j * V2_ROW_WORDS + DNS_AT / 4);
    }
    out[o + V2.RECORD_FLAGS] |= RecordFlag.BIFLOW;
    rows++;
  }
  return new RecordBatch(out, rows, batch.interfaces);
}

/** True when some row of `batch` is a bidirectional record with reverse traffic. */
export function hasReverseTraffic(batch: RecordBatch): boolean {
  const b = batch.bytes;
  for (let i = 0; i < batch.count; i++) {
    const o = i * V2_RECORD_BYTES;
    if ((b[o + V2.RECORD_FLAGS] & RecordFlag.BIFLOW) !== 0 && b.readBigUInt64LE(o + V2.REV_PACKETS) > 0n) {
      return true;
    }
  }
  return false;
}

/** The ICMP type the other side of a conversation sends back for `type` (its own when none). */
function reverseIcmpType(proto: number, type: number): number {
  const table =
    proto === IpProto.ICMP ? ICMP_REPLY_OF : proto === IpProto.ICMPV6 ? ICMPV6_REPLY_OF : undefined;
  return table?.get(type) ?? type;
}

/**
 * The inverse of {@link pairBiflows} for outputs without a bidirectional form: each bidirectional
 * record with reverse traffic becomes two unidirectional rows, the forward one as it was and the
 * reverse one with source and destination (MAC, address, port) swapped, the opposite direction,
 * the reply's ICMP type, and the reverse counters. A record's direction is that of its forward
 * row; the reverse row's own was not kept, and on one interface the two directions of a
 * conversation are opposite. Other fields (interface, VLAN, tunnel, agent IP) are the forward
 * row's; the reverse row's interfaces-crossed list is its interface alone, and its health and DNS
 * sections are empty (the record's stay on the forward row, so they are counted once). Returns
 * `batch` itself when nothing needs splitting.
 */
export function splitBiflows(batch: RecordBatch): RecordBatch {
  if (!hasReverseTraffic(batch)) return batch;
  const src = batch.bytes;
  const out = Buffer.alloc(2 * batch.count * V2_RECORD_BYTES);
  let rows = 0;
  for (let i = 0; i < batch.count; i++) {
    const f = i * V2_RECORD_BYTES;
    let o = rows * V2_RECORD_BYTES;
    src.copy(out, o, f, f + V2_RECORD_BYTES);
    clearReverse(out, o);
    rows++;
    if (
      (src[f + V2.RECORD_FLAGS] & RecordFlag.BIFLOW) === 0 ||
      src.readBigUInt64LE(f + V2.REV_PACKETS) === 0n
    ) {
      continue;
    }
    o = rows * V2_RECORD_BYTES;
    src.copy(out, o, f, f + V2_RECORD_BYTES);
    clearReverse(out, o);
    src.copy(out, o + V2.SRC_MAC, f + V2.DST_MAC, f + V2.DST_MAC + 6);
    src.copy(out, o + V2.DST_MAC, f + V2.SRC_MAC, f + V2.SRC_MAC + 6);
    src.copy(out, o + V2.SRC_ADDR, f + V2.DST_ADDR, f + V2.DST_ADDR + 16);
    src.copy(out, o + V2.DST_ADDR, f + V2.SRC_ADDR, f + V2.SRC_ADDR + 16);
    out.writeUInt16LE(src.readUInt16LE(f + V2.DST_PORT), o + V2.SRC_PORT);
    out.writeUInt16LE(src.readUInt16LE(f + V2.SRC_PORT), o + V2.DST_PORT);
    const direction = src[f + V2.DIRECTION];
    const reverseDirection = direction <= 1 ? 1 - direction : direction;
    out[o + V2.DIRECTION] = reverseDirection;
    const proto = src[f + V2.TRANSPORT_PROTOCOL];
    out[o + V2.ICMP_TYPE] = reverseIcmpType(proto, src[f + V2.ICMP_TYPE]);
    src.copy(out, o + V2.BYTES, f + V2.REV_BYTES, f + V2.REV_BYTES + 8);
    src.copy(out, o + V2.PACKETS, f + V2.REV_PACKETS, f + V2.REV_PACKETS + 8);
    src.copy(out, o + V2.FIRST_SEEN_NS, f + V2.REV_FIRST_SEEN_NS, f + V2.REV_FIRST_SEEN_NS + 8);
    src.copy(out, o + V2.LAST_SEEN_NS, f + V2.REV_LAST_SEEN_NS, f + V2.REV_LAST_SEEN_NS + 8);
    out.writeUInt16LE(src.readUInt16LE(f + V2.REV_TCP_FLAGS), o + V2.TCP_FLAGS);
    out[o + V2.DSCP] = src[f + V2.REV_DSCP];
    out.fill(0, o + V2.CROSSED_IF_INDEX, o + V2.CROSSED_COUNT + 1);
    // The conversation's health and DNS stay with the forward row: a copy here would count them twice.
    out.fill(0, o + HEALTH_AT, o + V2_RECORD_BYTES);
    out.writeUInt32LE(src.readUInt32LE(f + V2.IF_INDEX), o + V2.CROSSED_IF_INDEX);
    out[o + V2.CROSSED_DIRECTION] = reverseDirection;
    out[o + V2.CROSSED_COUNT] = 1;
    rows++;
  }
  return new RecordBatch(out, rows, batch.interfaces);
}

/** Zeroes the reverse fields and the biflow flag of the row at `o`: a unidirectional row. */
function clearReverse(out: Buffer, o: number): void {
  out.fill(0, o + V2.REV_BYTES, o + V2.REV_DSCP + 1);
  out[o + V2.RECORD_FLAGS] &= ~RecordFlag.BIFLOW;
}
