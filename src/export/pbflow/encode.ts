/**
 * Hand-written protobuf encoder of `pbflow.Record`: reads the fields straight from the v2 rows and
 * writes the wire bytes into one reused scratch buffer, so the hot path makes no object per field
 * (the generic path in record.ts builds about ten per flow). The output is byte-identical to
 * `toBinary(RecordSchema, pbRecordOf(batch, i))`: fields in declaration order, proto3 scalars left
 * out when zero, the always-set sub-messages written even when empty, and the `IP` oneof member
 * always written (a oneof member has presence). Tests hold the two paths to that on random flows.
 */
import { type RecordBatch, rowHasDns } from '../../codec/record-batch.ts';
import { DnsFlag, HealthFlag, V2, V2_DNS_NAME_MAX, V2_MAX_CROSSED } from '../../codec/v2-layout.ts';
import { isAllZero } from '../../model/ip.ts';
import {
  DATA_LINK_FIELD,
  DUP_MAP_ENTRY_FIELD,
  IP_FIELD,
  NETWORK_FIELD,
  RECORD_FIELD,
  RECORDS_FIELD,
  TIMESTAMP_FIELD,
  TRANSPORT_FIELD,
  TUNNEL_FIELD,
  WIRE,
  wireTag,
} from './fields.ts';
import { isPbIpv4 } from './record.ts';

const { VARINT, LENGTH_DELIMITED, FIXED32 } = WIRE;
const TAG_RECORD_ETH_PROTOCOL = wireTag(RECORD_FIELD.ETH_PROTOCOL, VARINT);
const TAG_RECORD_DIRECTION = wireTag(RECORD_FIELD.DIRECTION, VARINT);
const TAG_RECORD_TIME_FLOW_START = wireTag(RECORD_FIELD.TIME_FLOW_START, LENGTH_DELIMITED);
const TAG_RECORD_TIME_FLOW_END = wireTag(RECORD_FIELD.TIME_FLOW_END, LENGTH_DELIMITED);
const TAG_RECORD_DATA_LINK = wireTag(RECORD_FIELD.DATA_LINK, LENGTH_DELIMITED);
const TAG_RECORD_NETWORK = wireTag(RECORD_FIELD.NETWORK, LENGTH_DELIMITED);
const TAG_RECORD_TRANSPORT = wireTag(RECORD_FIELD.TRANSPORT, LENGTH_DELIMITED);
const TAG_RECORD_BYTES = wireTag(RECORD_FIELD.BYTES, VARINT);
const TAG_RECORD_PACKETS = wireTag(RECORD_FIELD.PACKETS, VARINT);
const TAG_RECORD_INTERFACE = wireTag(RECORD_FIELD.INTERFACE, LENGTH_DELIMITED);
const TAG_RECORDS_ENTRIES = wireTag(RECORDS_FIELD.ENTRIES, LENGTH_DELIMITED);
const TAG_TIMESTAMP_SECONDS = wireTag(TIMESTAMP_FIELD.SECONDS, VARINT);
const TAG_TIMESTAMP_NANOS = wireTag(TIMESTAMP_FIELD.NANOS, VARINT);
const TAG_DATA_LINK_SRC_MAC = wireTag(DATA_LINK_FIELD.SRC_MAC, VARINT);
const TAG_DATA_LINK_DST_MAC = wireTag(DATA_LINK_FIELD.DST_MAC, VARINT);
const TAG_TRANSPORT_SRC_PORT = wireTag(TRANSPORT_FIELD.SRC_PORT, VARINT);
const TAG_TRANSPORT_DST_PORT = wireTag(TRANSPORT_FIELD.DST_PORT, VARINT);
const TAG_TRANSPORT_PROTOCOL = wireTag(TRANSPORT_FIELD.PROTOCOL, VARINT);
const TAG_NETWORK_SRC = wireTag(NETWORK_FIELD.SRC_ADDR, LENGTH_DELIMITED);
const TAG_NETWORK_DST = wireTag(NETWORK_FIELD.DST_ADDR, LENGTH_DELIMITED);
const TAG_IP_IPV4 = wireTag(IP_FIELD.IPV4, FIXED32);
const TAG_IP_IPV6 = wireTag(IP_FIELD.IPV6, LENGTH_DELIMITED);
const TAG_RECORD_AGENT_IP = wireTag(RECORD_FIELD.AGENT_IP, LENGTH_DELIMITED);
/** Tags past field 15 take two bytes (writeWideTag). */
const TAG_RECORD_DUP_LIST = wireTag(RECORD_FIELD.DUP_LIST, LENGTH_DELIMITED);
const TAG_RECORD_VLAN_ID = wireTag(RECORD_FIELD.VLAN_ID, VARINT);
const TAG_RECORD_INNER_VLAN_ID = wireTag(RECORD_FIELD.INNER_VLAN_ID, VARINT);
const TAG_RECORD_TUNNEL = wireTag(RECORD_FIELD.TUNNEL, LENGTH_DELIMITED);
const TAG_DUP_INTERFACE = wireTag(DUP_MAP_ENTRY_FIELD.INTERFACE, LENGTH_DELIMITED);
const TAG_DUP_DIRECTION = wireTag(DUP_MAP_ENTRY_FIELD.DIRECTION, VARINT);
const TAG_TUNNEL_TYPE = wireTag(TUNNEL_FIELD.TYPE, VARINT);
const TAG_TUNNEL_ID = wireTag(TUNNEL_FIELD.ID, VARINT);
const TAG_TUNNEL_SRC = wireTag(TUNNEL_FIELD.SRC_ADDR, LENGTH_DELIMITED);
const TAG_TUNNEL_DST = wireTag(TUNNEL_FIELD.DST_ADDR, LENGTH_DELIMITED);
const TAG_RECORD_PKT_DROP_BYTES = wireTag(RECORD_FIELD.PKT_DROP_BYTES, VARINT);
const TAG_RECORD_PKT_DROP_PACKETS = wireTag(RECORD_FIELD.PKT_DROP_PACKETS, VARINT);
const TAG_RECORD_PKT_DROP_LATEST_FLAGS = wireTag(RECORD_FIELD.PKT_DROP_LATEST_FLAGS, VARINT);
const TAG_RECORD_PKT_DROP_LATEST_STATE = wireTag(RECORD_FIELD.PKT_DROP_LATEST_STATE, VARINT);
const TAG_RECORD_PKT_DROP_LATEST_DROP_CAUSE = wireTag(RECORD_FIELD.PKT_DROP_LATEST_DROP_CAUSE, VARINT);
const TAG_RECORD_TIME_FLOW_RTT = wireTag(RECORD_FIELD.TIME_FLOW_RTT, LENGTH_DELIMITED);
const TAG_RECORD_TIME_FLOW_RTT_MIN = wireTag(RECORD_FIELD.TIME_FLOW_RTT_MIN, LENGTH_DELIMITED);
const TAG_RECORD_TIME_FLOW_RTT_MAX = wireTag(RECORD_FIELD.TIME_FLOW_RTT_MAX, LENGTH_DELIMITED);
const TAG_RECORD_TIME_FLOW_RTT_SAMPLES = wireTag(RECORD_FIELD.TIME_FLOW_RTT_SAMPLES, VARINT);
const TAG_RECORD_TIME_HANDSHAKE_RTT = wireTag(RECORD_FIELD.TIME_HANDSHAKE_RTT, LENGTH_DELIMITED);
const TAG_RECORD_PKT_RETRANS_BYTES = wireTag(RECORD_FIELD.PKT_RETRANS_BYTES, VARINT);
const TAG_RECORD_PKT_RETRANS_PACKETS = wireTag(RECORD_FIELD.PKT_RETRANS_PACKETS, VARINT);
const TAG_RECORD_PKT_DROP_LATEST_TIME = wireTag(RECORD_FIELD.PKT_DROP_LATEST_TIME, LENGTH_DELIMITED);
const TAG_RECORD_DNS_ID = wireTag(RECORD_FIELD.DNS_ID, VARINT);
const TAG_RECORD_DNS_FLAGS = wireTag(RECORD_FIELD.DNS_FLAGS, VARINT);
const TAG_RECORD_DNS_LATENCY = wireTag(RECORD_FIELD.DNS_LATENCY, LENGTH_DELIMITED);
const TAG_RECORD_DNS_ERRNO = wireTag(RECORD_FIELD.DNS_ERRNO, VARINT);
const TAG_RECORD_DNS_NAME = wireTag(RECORD_FIELD.DNS_NAME, LENGTH_DELIMITED);
const TAG_RECORD_DNS_QUERIES = wireTag(RECORD_FIELD.DNS_QUERIES, VARINT);
const TAG_RECORD_DNS_ANSWERS = wireTag(RECORD_FIELD.DNS_ANSWERS, VARINT);
const TAG_RECORD_DNS_UNANSWERED = wireTag(RECORD_FIELD.DNS_UNANSWERED, VARINT);
const TAG_RECORD_DNS_MALFORMED = wireTag(RECORD_FIELD.DNS_MALFORMED, VARINT);
const TAG_RECORD_DNS_NAME_TRUNCATED = wireTag(RECORD_FIELD.DNS_NAME_TRUNCATED, VARINT);

const IPV6_BYTES = 16;
const NS_PER_S = 1_000_000_000;
const TWO_POW_16 = 65_536;
/**
 * Upper bound of one encoded Record without its interface name, plus the entry framing of
 * `Records`: 4 + 3 + 2×14 + 18 + 42 + 14 + 2×11 + 1 + 5 (name length) + 6 (entry tag and length),
 * rounded up.
 */
const MAX_RECORD_BYTES_WITHOUT_NAME = 160;
/**
 * Upper bound of the fields issue 13 added, without the interface names of dup_list: agent_ip
 * (2 + 18), two VLAN ids (3 + 3 each), the tunnel (3 + 1 + 2 + 6 + 2 × 20) and per dup_list entry
 * its tag, length, name tag and length, and direction (2 + 5 + 1 + 5 + 3).
 */
const MAX_IDENTITY_BYTES = 20 + 12 + 52 + V2_MAX_CROSSED * 16;
/**
 * Upper bound of the health fields (issue 14): two u64 drop counters (2 + 10 each), flags, state
 * and cause (2 + 3, 2 + 2, 2 + 5), four durations and a timestamp (2 + 1 + 11 + 6 each), the
 * sample count (2 + 5) and two u64 retransmission counters (2 + 10 each).
 */
const MAX_HEALTH_BYTES = 24 + 14 + 5 * 20 + 7 + 24;
/**
 * Upper bound of the DNS fields (issue 15): id and flags (2 + 3 each), the latency (2 + 1 + 11
 * + 6), the errno (2 + 2), the name (2 + 2 + up to 2 UTF-8 bytes per byte kept), four counts
 * (2 + 5 each) and the cut flag (2 + 1).
 */
const MAX_DNS_BYTES = 10 + 20 + 4 + 4 + 2 * V2_DNS_NAME_MAX + 28 + 3;
/** Initial scratch size; it grows (doubling) to the largest output encoded and is kept. */
const INITIAL_SCRATCH_BYTES = 64 * 1024;

/** Interface names kept as UTF-8; beyond this many distinct names the cache starts over. */
const MAX_CACHED_NAMES = 1024;
/** Longer names (never a Linux one: IFNAMSIZ is 16) are encoded each time, bounding the cache's memory. */
const MAX_CACHED_NAME_CHARS = 256;
/** Names up to this many bytes are copied by a loop, longer ones by Buffer.copy (a native call costs more). */
const LOOP_COPY_MAX_BYTES = 32;
/** Record bodies up to this many bytes are moved by a loop when their length takes another size than guessed. */
const LOOP_SHIFT_MAX_BYTES = 512;

let scratch = Buffer.allocUnsafe(INITIAL_SCRATCH_BYTES);
const NO_NAMES: readonly Buffer[] = [];
/**
 * UTF-8 of the interface names seen, keyed by the name itself (not the index, which a registry may
 * rename), so the per-row cost is a lookup instead of a string encode.
 */
const nameBytesCache = new Map<string, Buffer>();

/** UTF-8 bytes of `name`, from the cache unless the name is too long to keep. */
function utf8Of(name: string): Buffer {
  if (name.length > MAX_CACHED_NAME_CHARS) return Buffer.from(name, 'utf8');
  let bytes = nameBytesCache.get(name);
  if (bytes === undefined) {
    if (nameBytesCache.size >= MAX_CACHED_NAMES) nameBytesCache.clear();
    bytes = Buffer.from(name, 'utf8');
    nameBytesCache.set(name, bytes);
  }
  return bytes;
}

/** Makes `scratch` hold at least `bytes`, keeping its first `used` bytes. */
function reserve(used: number, bytes: number): void {
  if (bytes <= scratch.length) return;
  let size = scratch.length * 2;
  while (size < bytes) size *= 2;
  const grown = Buffer.allocUnsafe(size);
  scratch.copy(grown, 0, 0, used);
  scratch = grown;
}

/** Varint of a value in [0, 2^32). */
function writeVarint32(out: Buffer, pos: number, value: number): number {
  let v = value >>> 0;
  while (v > 0x7f) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

/** Varint of the unsigned 64-bit value `hi * 2^32 + lo` (exact at any size). */
function writeVarint64(out: Buffer, pos: number, lo: number, hi: number): number {
  if (hi === 0) return writeVarint32(out, pos, lo);
  let low = lo;
  for (let k = 0; k < 4; k++) {
    out[pos++] = (low & 0x7f) | 0x80;
    low >>>= 7;
  }
  // Byte 5 carries bits 28..34: the top 4 bits of lo and the low 3 bits of hi.
  const fifth = low | ((hi & 0x7) << 4);
  const rest = hi >>> 3;
  if (rest === 0) {
    out[pos++] = fifth;
    return pos;
  }
  out[pos++] = fifth | 0x80;
  return writeVarint32(out, pos, rest);
}

/** Bytes the varint of `value` (in [0, 2^32)) takes. */
function varint32Size(value: number): number {
  let size = 1;
  for (let v = value >>> 7; v !== 0; v >>>= 7) size++;
  return size;
}

/** Writes a `google.protobuf.Timestamp` (tag, then {@link writeSecondsNanos}) of the u64 Unix nanoseconds at `offset` of `row`. */
function writeTimestamp(out: Buffer, pos: number, tag: number, row: Buffer, offset: number): number {
  out[pos++] = tag;
  return writeSecondsNanos(out, pos, row, offset);
}

/**
 * Writes the length, seconds and nanos of a Timestamp or Duration (the same two fields) of the
 * u64 nanoseconds at `offset` of `row`, after its tag. Seconds and nanos come from a long
 * division over 16-bit limbs, which stays exact in doubles where `hi * 2^32 + lo` would not
 * (epoch nanoseconds exceed 2^53).
 */
function writeSecondsNanos(out: Buffer, pos: number, row: Buffer, offset: number): number {
  const lo = row.readUInt32LE(offset);
  const hi = row.readUInt32LE(offset + 4);
  let rem = hi % NS_PER_S;
  const qHigh = (hi - rem) / NS_PER_S;
  let cur = rem * TWO_POW_16 + (lo >>> 16);
  const qMid = Math.floor(cur / NS_PER_S);
  rem = cur - qMid * NS_PER_S;
  cur = rem * TWO_POW_16 + (lo & 0xffff);
  const qLow = Math.floor(cur / NS_PER_S);
  const nanos = cur - qLow * NS_PER_S;
  // seconds = qHigh·2^32 + qMid·2^16 + qLow, with qMid and qLow below 2^16.
  const secondsLo = ((qMid << 16) | qLow) >>> 0;
  const lengthAt = pos++; // a Timestamp is at most 12 bytes: its length is one byte
  if (secondsLo !== 0 || qHigh !== 0) {
    out[pos++] = TAG_TIMESTAMP_SECONDS;
    pos = writeVarint64(out, pos, secondsLo, qHigh);
  }
  if (nanos !== 0) {
    out[pos++] = TAG_TIMESTAMP_NANOS;
    pos = writeVarint32(out, pos, nanos);
  }
  out[lengthAt] = pos - lengthAt - 1;
  return pos;
}

/** Writes the 6-byte MAC at `offset` of `row` as a uint64 field (0x112233445566) when non-zero. */
function writeMac(out: Buffer, pos: number, tag: number, row: Buffer, offset: number): number {
  const hi = (row[offset] << 8) | row[offset + 1];
  const lo =
    ((row[offset + 2] << 24) | (row[offset + 3] << 16) | (row[offset + 4] << 8) | row[offset + 5]) >>> 0;
  if (lo === 0 && hi === 0) return pos;
  out[pos++] = tag;
  return writeVarint64(out, pos, lo, hi);
}

/** Writes `pbflow.IP` of the stored address at `offset` of `row` as field `tag` of Network. */
function writeIp(out: Buffer, pos: number, tag: number, row: Buffer, offset: number, etype: number): number {
  out[pos++] = tag;
  if (isPbIpv4(row, offset, etype)) {
    out[pos++] = 5;
    out[pos++] = TAG_IP_IPV4;
    // fixed32 is little-endian on the wire; its value is the address as a number (10.0.0.1 = 0x0A000001).
    out[pos++] = row[offset + 15];
    out[pos++] = row[offset + 14];
    out[pos++] = row[offset + 13];
    out[pos++] = row[offset + 12];
    return pos;
  }
  out[pos++] = 2 + IPV6_BYTES;
  out[pos++] = TAG_IP_IPV6;
  out[pos++] = IPV6_BYTES;
  // A byte loop: Buffer.copy's call overhead outweighs 16 bytes.
  for (let k = 0; k < IPV6_BYTES; k++) out[pos++] = row[offset + k];
  return pos;
}

/** Writes the non-zero uint32 `value` as field `tag`. */
function writeUint32Field(out: Buffer, pos: number, tag: number, value: number): number {
  if (value === 0) return pos;
  out[pos++] = tag;
  return writeVarint32(out, pos, value);
}

/** Writes a tag that needs more than one byte (field numbers from 16). */
function writeWideTag(out: Buffer, pos: number, tag: number): number {
  return writeVarint32(out, pos, tag);
}

/** Writes the non-zero uint32 `value` as the field of the multi-byte `tag`. */
function writeWideUint32Field(out: Buffer, pos: number, tag: number, value: number): number {
  if (value === 0) return pos;
  return writeVarint32(out, writeWideTag(out, pos, tag), value);
}

/**
 * Writes `Record.tunnel` of the row at `o` when it has one: type, id and the outer addresses
 * (stored IPv4-mapped, so the address itself decides the `IP` member).
 */
function writeTunnel(out: Buffer, pos: number, row: Buffer, o: number): number {
  const type = row[o + V2.TUNNEL_TYPE];
  if (type === 0) return pos;
  pos = writeWideTag(out, pos, TAG_RECORD_TUNNEL);
  const lengthAt = pos++; // at most 2 + 6 + 2 × 20 bytes
  pos = writeUint32Field(out, pos, TAG_TUNNEL_TYPE, type);
  pos = writeUint32Field(out, pos, TAG_TUNNEL_ID, row.readUInt32LE(o + V2.TUNNEL_ID));
  pos = writeIp(out, pos, TAG_TUNNEL_SRC, row, o + V2.TUNNEL_SRC, 0);
  pos = writeIp(out, pos, TAG_TUNNEL_DST, row, o + V2.TUNNEL_DST, 0);
  out[lengthAt] = pos - lengthAt - 1;
  return pos;
}

/**
 * Writes netobserv's DNS fields 21 to 23 of the row at `o`: dns_id and dns_flags (a message's
 * header) and dns_latency (an answered query); dns_errno (25) follows the health RTT (24).
 */
function writeDnsHeader(out: Buffer, pos: number, row: Buffer, o: number): number {
  const flags = row[o + V2.DNS_RECORD_FLAGS];
  if ((flags & DnsFlag.HEADER) !== 0) {
    pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_ID, row.readUInt16LE(o + V2.DNS_ID));
    pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_FLAGS, row.readUInt16LE(o + V2.DNS_FLAGS));
  }
  if ((flags & DnsFlag.LATENCY) !== 0) {
    pos = writeWideSecondsNanos(out, pos, TAG_RECORD_DNS_LATENCY, row, o + V2.DNS_LATENCY_NS);
  }
  return pos;
}

/** Writes `Record.dns_name` of the row at `o`: its bytes (one character each) as UTF-8. */
function writeDnsName(out: Buffer, pos: number, row: Buffer, o: number): number {
  if ((row[o + V2.DNS_RECORD_FLAGS] & DnsFlag.NAME) === 0) return pos;
  const at = o + V2.DNS_NAME;
  const length = Math.min(row[o + V2.DNS_NAME_LEN], V2_DNS_NAME_MAX);
  let utf8 = length;
  for (let k = 0; k < length; k++) if (row[at + k] >= 0x80) utf8++;
  if (utf8 === 0) return pos; // proto3 leaves an empty string out
  pos = writeWideTag(out, pos, TAG_RECORD_DNS_NAME);
  pos = writeVarint32(out, pos, utf8);
  for (let k = 0; k < length; k++) {
    const c = row[at + k];
    if (c < 0x80) {
      out[pos++] = c;
    } else {
      out[pos++] = 0xc0 | (c >>> 6);
      out[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** Writes flowtap's DNS counts and the name's cut flag (1020-1024) of the row at `o`. */
function writeDnsCounts(out: Buffer, pos: number, row: Buffer, o: number): number {
  pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_QUERIES, row.readUInt32LE(o + V2.DNS_QUERIES));
  pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_ANSWERS, row.readUInt32LE(o + V2.DNS_ANSWERS));
  pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_UNANSWERED, row.readUInt32LE(o + V2.DNS_UNANSWERED));
  pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_MALFORMED, row.readUInt32LE(o + V2.DNS_MALFORMED));
  const cut = row[o + V2.DNS_RECORD_FLAGS] & DnsFlag.NAME_TRUNCATED;
  return writeWideUint32Field(out, pos, TAG_RECORD_DNS_NAME_TRUNCATED, cut === 0 ? 0 : 1);
}

/** Writes `Record.dup_list`: one DupMapEntry per interface crossed, with the names given. */
function writeDupList(out: Buffer, pos: number, row: Buffer, o: number, names: readonly Buffer[]): number {
  for (let k = 0; k < names.length; k++) {
    const name = names[k];
    const direction = row[o + V2.CROSSED_DIRECTION + k];
    const length =
      (name.length > 0 ? 1 + varint32Size(name.length) + name.length : 0) +
      (direction !== 0 ? 1 + varint32Size(direction) : 0);
    pos = writeWideTag(out, pos, TAG_RECORD_DUP_LIST);
    pos = writeVarint32(out, pos, length);
    if (name.length > 0) {
      out[pos++] = TAG_DUP_INTERFACE;
      pos = writeVarint32(out, pos, name.length);
      if (name.length <= LOOP_COPY_MAX_BYTES) {
        for (let b = 0; b < name.length; b++) out[pos++] = name[b];
      } else {
        pos += name.copy(out, pos);
      }
    }
    pos = writeUint32Field(out, pos, TAG_DUP_DIRECTION, direction);
  }
  return pos;
}

/** UTF-8 names of the interfaces crossed by the row at `o`. */
function crossedNames(batch: RecordBatch, o: number): readonly Buffer[] {
  const row = batch.bytes;
  const count = Math.min(row[o + V2.CROSSED_COUNT], V2_MAX_CROSSED);
  const names = new Array<Buffer>(count);
  for (let k = 0; k < count; k++) {
    names[k] = utf8Of(batch.interfaces.nameOf(row.readUInt32LE(o + V2.CROSSED_IF_INDEX + 4 * k)));
  }
  return names;
}

/** Writes the u64 counter at `offset` of `row` as field `tag` when non-zero. */
function writeU64Field(out: Buffer, pos: number, tag: number, row: Buffer, offset: number): number {
  const lo = row.readUInt32LE(offset);
  const hi = row.readUInt32LE(offset + 4);
  if (lo === 0 && hi === 0) return pos;
  out[pos++] = tag;
  return writeVarint64(out, pos, lo, hi);
}

/**
 * Writes the body of row `i` as a `pbflow.Record` at `pos` of the scratch buffer (growing it) and
 * returns where it ends. The interface name is the only unbounded part, so room is made for it
 * before anything is written.
 */
function writeRecord(batch: RecordBatch, i: number, start: number): number {
  const row = batch.bytes;
  const o = batch.rowOffset(i);
  const name = batch.interfaces.nameOf(row.readUInt32LE(o + V2.IF_INDEX));
  const nameUtf8 = name.length === 0 ? undefined : utf8Of(name);
  const nameBytes = nameUtf8 === undefined ? 0 : nameUtf8.length;
  const crossed = row[o + V2.CROSSED_COUNT] === 0 ? NO_NAMES : crossedNames(batch, o);
  let crossedBytes = 0;
  for (const n of crossed) crossedBytes += n.length;
  reserve(
    start,
    start +
      MAX_RECORD_BYTES_WITHOUT_NAME +
      nameBytes +
      MAX_IDENTITY_BYTES +
      crossedBytes +
      MAX_HEALTH_BYTES +
      MAX_DNS_BYTES,
  );
  const out = scratch;
  let pos = start;
  const etype = row.readUInt16LE(o + V2.ETH_PROTOCOL);
  pos = writeUint32Field(out, pos, TAG_RECORD_ETH_PROTOCOL, etype);
  pos = writeUint32Field(out, pos, TAG_RECORD_DIRECTION, row[o + V2.DIRECTION]);
  pos = writeTimestamp(out, pos, TAG_RECORD_TIME_FLOW_START, row, o + V2.FIRST_SEEN_NS);
  pos = writeTimestamp(out, pos, TAG_RECORD_TIME_FLOW_END, row, o + V2.LAST_SEEN_NS);

  out[pos++] = TAG_RECORD_DATA_LINK;
  let lengthAt = pos++; // at most 2 × (1 + 7) bytes
  pos = writeMac(out, pos, TAG_DATA_LINK_SRC_MAC, row, o + V2.SRC_MAC);
  pos = writeMac(out, pos, TAG_DATA_LINK_DST_MAC, row, o + V2.DST_MAC);
  out[lengthAt] = pos - lengthAt - 1;

  out[pos++] = TAG_RECORD_NETWORK;
  lengthAt = pos++; // at most 2 × (2 + 18) bytes
  pos = writeIp(out, pos, TAG_NETWORK_SRC, row, o + V2.SRC_ADDR, etype);
  pos = writeIp(out, pos, TAG_NETWORK_DST, row, o + V2.DST_ADDR, etype);
  out[lengthAt] = pos - lengthAt - 1;

  out[pos++] = TAG_RECORD_TRANSPORT;
  lengthAt = pos++; // at most 3 × (1 + 3) bytes
  pos = writeUint32Field(out, pos, TAG_TRANSPORT_SRC_PORT, row.readUInt16LE(o + V2.SRC_PORT));
  pos = writeUint32Field(out, pos, TAG_TRANSPORT_DST_PORT, row.readUInt16LE(o + V2.DST_PORT));
  pos = writeUint32Field(out, pos, TAG_TRANSPORT_PROTOCOL, row[o + V2.TRANSPORT_PROTOCOL]);
  out[lengthAt] = pos - lengthAt - 1;

  pos = writeU64Field(out, pos, TAG_RECORD_BYTES, row, o + V2.BYTES);
  pos = writeU64Field(out, pos, TAG_RECORD_PACKETS, row, o + V2.PACKETS);
  if (nameUtf8 !== undefined) {
    out[pos++] = TAG_RECORD_INTERFACE;
    pos = writeVarint32(out, pos, nameBytes);
    if (nameBytes <= LOOP_COPY_MAX_BYTES) {
      for (let k = 0; k < nameBytes; k++) out[pos++] = nameUtf8[k];
    } else {
      pos += nameUtf8.copy(out, pos);
    }
  }
  if (!isAllZero(row, o + V2.AGENT_IP)) pos = writeIp(out, pos, TAG_RECORD_AGENT_IP, row, o + V2.AGENT_IP, 0);
  // Fields by number, as protobuf-es writes them: health's and DNS's netobserv fields interleave
  // (16-20, 21-23, 24, 25), the DNS name follows dup_list, their extensions the tunnel.
  const dns = rowHasDns(row, o);
  pos = writeHealthDrops(out, pos, row, o);
  if (dns) pos = writeDnsHeader(out, pos, row, o);
  pos = writeHealthRtt(out, pos, row, o);
  if (dns) pos = writeWideUint32Field(out, pos, TAG_RECORD_DNS_ERRNO, row[o + V2.DNS_ERRNO]);
  pos = writeDupList(out, pos, row, o, crossed);
  if (dns) pos = writeDnsName(out, pos, row, o);
  pos = writeWideUint32Field(out, pos, TAG_RECORD_VLAN_ID, row.readUInt16LE(o + V2.VLAN_OUTER));
  pos = writeWideUint32Field(out, pos, TAG_RECORD_INNER_VLAN_ID, row.readUInt16LE(o + V2.VLAN_INNER));
  pos = writeTunnel(out, pos, row, o);
  pos = writeHealthExtensions(out, pos, row, o);
  return dns ? writeDnsCounts(out, pos, row, o) : pos;
}

/** Writes the u64 at `offset` of `row` as the field of the multi-byte `tag` when non-zero. */
function writeWideU64Field(out: Buffer, pos: number, tag: number, row: Buffer, offset: number): number {
  const lo = row.readUInt32LE(offset);
  const hi = row.readUInt32LE(offset + 4);
  if (lo === 0 && hi === 0) return pos;
  return writeVarint64(out, writeWideTag(out, pos, tag), lo, hi);
}

/** Writes the u64 nanoseconds at `offset` of `row` as the Timestamp or Duration field of the multi-byte `tag`. */
function writeWideSecondsNanos(out: Buffer, pos: number, tag: number, row: Buffer, offset: number): number {
  return writeSecondsNanos(out, writeWideTag(out, pos, tag), row, offset);
}

/** True when the row at `o` counts dropped packets: the latest drop's fields mean something. */
function hasDrops(row: Buffer, o: number): boolean {
  return row.readUInt32LE(o + V2.DROP_PACKETS) !== 0 || row.readUInt32LE(o + V2.DROP_PACKETS + 4) !== 0;
}

/** Writes the health fields netobserv numbers 16 to 20 (drops) of the row at `o`, as record.ts's `healthOf`. */
function writeHealthDrops(out: Buffer, pos: number, row: Buffer, o: number): number {
  pos = writeWideU64Field(out, pos, TAG_RECORD_PKT_DROP_BYTES, row, o + V2.DROP_BYTES);
  if (hasDrops(row, o)) {
    pos = writeWideU64Field(out, pos, TAG_RECORD_PKT_DROP_PACKETS, row, o + V2.DROP_PACKETS);
    pos = writeWideUint32Field(
      out,
      pos,
      TAG_RECORD_PKT_DROP_LATEST_FLAGS,
      row.readUInt16LE(o + V2.DROP_LATEST_FLAGS),
    );
    pos = writeWideUint32Field(out, pos, TAG_RECORD_PKT_DROP_LATEST_STATE, row[o + V2.DROP_LATEST_STATE]);
    pos = writeWideUint32Field(
      out,
      pos,
      TAG_RECORD_PKT_DROP_LATEST_DROP_CAUSE,
      row.readUInt32LE(o + V2.DROP_LATEST_CAUSE),
    );
  }
  return pos;
}

/** Writes netobserv's field 24 (the latest RTT) of the row at `o`, as record.ts's `healthOf`. */
function writeHealthRtt(out: Buffer, pos: number, row: Buffer, o: number): number {
  if ((row[o + V2.HEALTH_FLAGS] & HealthFlag.RTT) === 0) return pos;
  return writeWideSecondsNanos(out, pos, TAG_RECORD_TIME_FLOW_RTT, row, o + V2.RTT_LAST_NS);
}

/** Writes flowtap's health fields (1004 up) of the row at `o`, as record.ts's `healthOf`. */
function writeHealthExtensions(out: Buffer, pos: number, row: Buffer, o: number): number {
  const flags = row[o + V2.HEALTH_FLAGS];
  if ((flags & HealthFlag.RTT) !== 0) {
    pos = writeWideSecondsNanos(out, pos, TAG_RECORD_TIME_FLOW_RTT_MIN, row, o + V2.RTT_MIN_NS);
    pos = writeWideSecondsNanos(out, pos, TAG_RECORD_TIME_FLOW_RTT_MAX, row, o + V2.RTT_MAX_NS);
    pos = writeWideUint32Field(
      out,
      pos,
      TAG_RECORD_TIME_FLOW_RTT_SAMPLES,
      row.readUInt32LE(o + V2.RTT_SAMPLES),
    );
  }
  if ((flags & HealthFlag.HANDSHAKE) !== 0) {
    pos = writeWideSecondsNanos(out, pos, TAG_RECORD_TIME_HANDSHAKE_RTT, row, o + V2.HANDSHAKE_RTT_NS);
  }
  pos = writeWideU64Field(out, pos, TAG_RECORD_PKT_RETRANS_BYTES, row, o + V2.RETRANS_BYTES);
  pos = writeWideU64Field(out, pos, TAG_RECORD_PKT_RETRANS_PACKETS, row, o + V2.RETRANS_PACKETS);
  if (hasDrops(row, o)) {
    pos = writeWideSecondsNanos(out, pos, TAG_RECORD_PKT_DROP_LATEST_TIME, row, o + V2.DROP_LATEST_NS);
  }
  return pos;
}

/** A copy of the first `length` scratch bytes, owned by the caller. */
function takeScratch(length: number): Buffer {
  const owned = Buffer.allocUnsafe(length);
  scratch.copy(owned, 0, 0, length);
  return owned;
}

/** Row `i` of `batch` as a serialized `pbflow.Record` (one Kafka message value). */
export function encodePbRecord(batch: RecordBatch, i: number): Buffer {
  return takeScratch(writeRecord(batch, i, 0));
}

/**
 * Rows `start` to `end - 1` of `batch` as a serialized `pbflow.Records` (the body of one gRPC
 * `Collector.Send`).
 */
export function encodePbRecords(batch: RecordBatch, start: number, end: number): Buffer {
  let pos = 0;
  // Records of a batch are alike: guess the size of each one's length from the one before (one
  // byte under 128 bytes, two for most records with TCP health) and move the body when wrong.
  let guess = 1;
  for (let i = start; i < end; i++) {
    const bodyAt = pos + 1 + guess;
    const bodyEnd = writeRecord(batch, i, bodyAt);
    const length = bodyEnd - bodyAt;
    const lengthBytes = varint32Size(length);
    if (lengthBytes !== guess) {
      const to = pos + 1 + lengthBytes;
      reserve(bodyEnd, to + length);
      moveBody(bodyAt, to, length);
      guess = lengthBytes;
    }
    scratch[pos] = TAG_RECORDS_ENTRIES;
    pos = writeVarint32(scratch, pos + 1, length) + length;
  }
  return takeScratch(pos);
}

/** Moves `length` scratch bytes from `from` to `to` (the ranges may overlap). */
function moveBody(from: number, to: number, length: number): void {
  if (length > LOOP_SHIFT_MAX_BYTES) {
    scratch.copyWithin(to, from, from + length);
  } else if (to > from) {
    for (let k = length - 1; k >= 0; k--) scratch[to + k] = scratch[from + k];
  } else {
    for (let k = 0; k < length; k++) scratch[to + k] = scratch[from + k];
  }
}

/**
 * Rows `start` to `end - 1` of `batch`, each as its own serialized `pbflow.Record`: views into one
 * buffer allocated for the whole range, so a batch of Kafka messages costs one copy, not one per
 * message.
 */
export function encodePbRecordList(batch: RecordBatch, start: number, end: number): Buffer[] {
  const ends = new Array<number>(end - start);
  let pos = 0;
  for (let i = start; i < end; i++) {
    pos = writeRecord(batch, i, pos);
    ends[i - start] = pos;
  }
  const all = takeScratch(pos);
  const values = new Array<Buffer>(end - start);
  // Buffer.from(arrayBuffer, …) builds the view directly; subarray() goes through the species
  // constructor and costs several times more per message.
  let from = all.byteOffset;
  for (let k = 0; k < ends.length; k++) {
    const to = all.byteOffset + ends[k];
    values[k] = Buffer.from(all.buffer, from, to - from);
    from = to;
  }
  return values;
}
