/**
 * Hand-written protobuf decoder of pbflow, the mirror of encode.ts: reads `Records` (a gRPC
 * `Collector.Send` body) or single `Record`s (Kafka message values) straight into v2 rows of a
 * RecordBatch, with no object per flow or per field. It reads what any conforming sender writes
 * (fields in any order, unknown fields skipped, a repeated scalar's last value kept, a repeated
 * sub-message's fields merged), and refuses what the flow model cannot hold with the same
 * messages as the generic path (from-pb.ts), against which tests hold it.
 *
 * pbflow carries an interface name but no index: the decoder numbers the names of a batch 1, 2, …
 * in order of appearance, and the batch's `interfaces` resolves them back; 0 means no name.
 */
import { RecordBatch, rowHasDns } from '../../codec/record-batch.ts';
import { DnsFlag, HealthFlag, V2, V2_DNS_NAME_MAX, V2_RECORD_BYTES } from '../../codec/v2-layout.ts';
import { MalformedMessageError } from '../../errors.ts';
import type { InterfaceNames } from '../../model/interfaces.ts';
import { IP_BYTES } from '../../model/ip.ts';
import { TWO_POW_32 } from '../../model/u64.ts';
import {
  DATA_LINK_FIELD,
  IP_FIELD,
  NETWORK_FIELD,
  RECORD_FIELD,
  RECORDS_FIELD,
  TIMESTAMP_FIELD,
  TRANSPORT_FIELD,
  TUNNEL_FIELD,
  WIRE,
} from './fields.ts';

const NS_PER_S = 1_000_000_000;
const TWO_POW_16 = 65_536;
/** Most seconds a u64 of nanoseconds holds (2^64 / 1e9, rounded down); the nanos may still overflow it. */
const MAX_SECONDS = 18_446_744_073;
const MAX_U16 = 0xffff;
const MAX_U8 = 0xff;
/** 802.1Q VLAN ids are 12 bits. */
const MAX_VLAN_ID = 0xfff;
/** High word bound of a 48-bit MAC. */
const MAX_MAC_HIGH = 0xffff;
const IPV4_MAPPED_PREFIX = 0xffff;
const INITIAL_ROWS = 1024;
/** Which RTT fields a record gave (bits of #record's `rttParts`). */
const RTT_MIN_GIVEN = 1;
const RTT_MAX_GIVEN = 2;
/**
 * Which sections a record gave fields of (bits of #record's `sections`): a row starts zeroed, so
 * one without health or DNS fields needs no completing (most flows have neither).
 */
const HEALTH_GIVEN = 1;
const DNS_GIVEN = 2;
/**
 * Bytes of a short `Records` entry (IPv4, no MACs), to size a batch from a message's length: an
 * allocation per message, not one per doubling; typical entries (~100 bytes) leave room unused.
 */
const TYPICAL_ENTRY_BYTES = 64;
/** Where each DNS count (dns_queries ... dns_malformed, in field order) goes in a row. */
const DNS_COUNT_OFFSET = [V2.DNS_QUERIES, V2.DNS_ANSWERS, V2.DNS_UNANSWERED, V2.DNS_MALFORMED];
/** Zeroes `b[from, to)`: a loop, as Buffer.fill costs a native call, too much for a few bytes per record. */
function zero(b: Buffer, from: number, to: number): void {
  for (let k = from; k < to; k++) b[k] = 0;
}

/** The buffer of a finished decoder until its next row. */
const NO_ROWS = Buffer.alloc(0);
/** Interface names looked up by comparing bytes; the rest of a batch's names through a map. */
const SCANNED_NAMES = 16;

/** The health fields read as u64 counters: their name (for errors) and row offset. */
const HEALTH_COUNTERS: { readonly [field: number]: readonly [string, number] } = {
  [RECORD_FIELD.PKT_DROP_BYTES]: ['pkt_drop_bytes', V2.DROP_BYTES],
  [RECORD_FIELD.PKT_DROP_PACKETS]: ['pkt_drop_packets', V2.DROP_PACKETS],
  [RECORD_FIELD.PKT_RETRANS_BYTES]: ['pkt_retrans_bytes', V2.RETRANS_BYTES],
  [RECORD_FIELD.PKT_RETRANS_PACKETS]: ['pkt_retrans_packets', V2.RETRANS_PACKETS],
};
/** The health fields read as Durations or a Timestamp into u64 nanoseconds: name and row offset. */
const HEALTH_TIMES: { readonly [field: number]: readonly [string, number] } = {
  [RECORD_FIELD.TIME_FLOW_RTT]: ['time_flow_rtt', V2.RTT_LAST_NS],
  [RECORD_FIELD.TIME_FLOW_RTT_MIN]: ['time_flow_rtt_min', V2.RTT_MIN_NS],
  [RECORD_FIELD.TIME_FLOW_RTT_MAX]: ['time_flow_rtt_max', V2.RTT_MAX_NS],
  [RECORD_FIELD.TIME_HANDSHAKE_RTT]: ['time_handshake_rtt', V2.HANDSHAKE_RTT_NS],
  [RECORD_FIELD.PKT_DROP_LATEST_TIME]: ['pkt_drop_latest_time', V2.DROP_LATEST_NS],
};

/** Interface names of one decoded batch, numbered from 1 in order of appearance. */
class DecodedInterfaceNames implements InterfaceNames {
  /** Name of index i + 1. */
  readonly names: string[] = [];

  nameOf(ifIndex: number): string {
    return this.names[ifIndex - 1] ?? '';
  }
}

/**
 * Decodes pbflow messages into one growing batch; `finish()` hands it out and starts the next.
 * Not reentrant: one decoder per source.
 */
export class PbflowBatchDecoder {
  #bytes: Buffer;
  #count = 0;
  #names = new DecodedInterfaceNames();
  /** UTF-8 bytes of each name of the batch (index i + 1), compared in place of decoding the string. */
  #nameBytes: Uint8Array[] = [];
  #indexByName = new Map<string, number>();
  // Scratch of the varint being read: low and high 32 bits (set by #varint).
  #lo = 0;
  #hi = 0;

  constructor(private readonly initialRows = INITIAL_ROWS) {
    this.#bytes = Buffer.alloc(initialRows * V2_RECORD_BYTES);
  }

  /** Rows decoded since the last `finish()`. */
  get count(): number {
    return this.#count;
  }

  /**
   * Appends every entry of a serialized `pbflow.Records`. A malformed message throws
   * MalformedMessageError and appends nothing.
   */
  appendRecords(message: Uint8Array): number {
    const before = this.#count;
    const namesBefore = this.#names.names.length;
    try {
      let pos = 0;
      const end = message.length;
      let entry = 0;
      while (pos < end) {
        pos = this.#varint(message, pos, end, entry);
        const tag = this.#lo;
        if (this.#hi !== 0) this.#fail(entry, 'field number out of range');
        if (tag >>> 3 === RECORDS_FIELD.ENTRIES && (tag & 7) === WIRE.LENGTH_DELIMITED) {
          pos = this.#varint(message, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#record(message, pos, pos + length, entry);
          pos += length;
          entry++;
        } else {
          pos = this.#skip(message, pos, end, tag, entry);
        }
      }
    } catch (err) {
      this.#rollback(before, namesBefore);
      throw err;
    }
    return this.#count - before;
  }

  /** Appends one serialized `pbflow.Record` (a Kafka message value); throws MalformedMessageError. */
  appendRecord(message: Uint8Array): void {
    const before = this.#count;
    const namesBefore = this.#names.names.length;
    try {
      this.#record(message, 0, message.length, 0);
    } catch (err) {
      this.#rollback(before, namesBefore);
      throw err;
    }
  }

  /**
   * The rows decoded so far as a batch; the decoder starts over with new names and allocates its
   * next buffer at the next row (a decoder used once, per request or per fetch, never zeroes one
   * it would not use: that was half the collector's garbage).
   */
  finish(): RecordBatch {
    const batch = new RecordBatch(this.#bytes, this.#count, this.#names);
    this.#bytes = NO_ROWS;
    this.#count = 0;
    this.#names = new DecodedInterfaceNames();
    this.#nameBytes = [];
    this.#indexByName = new Map();
    return batch;
  }

  #rollback(count: number, names: number): void {
    this.#bytes.fill(0, count * V2_RECORD_BYTES, this.#count * V2_RECORD_BYTES);
    this.#count = count;
    for (const name of this.#names.names.splice(names)) this.#indexByName.delete(name);
    this.#nameBytes.length = names;
  }

  #fail(entry: number, detail: string): never {
    throw new MalformedMessageError('pbflow', `entry ${entry}: ${detail}`);
  }

  /** Reads a varint at `pos` into #lo/#hi and returns the position after it. */
  #varint(b: Uint8Array, pos: number, end: number, entry: number): number {
    let lo = 0;
    let shift = 0;
    let byte = 0;
    // Bytes 1..4 fill bits 0..27.
    for (; shift < 28; shift += 7) {
      if (pos >= end) this.#fail(entry, 'truncated varint');
      byte = b[pos++];
      lo |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.#lo = lo >>> 0;
        this.#hi = 0;
        return pos;
      }
    }
    // Byte 5 carries bits 28..31 of lo and 0..2 of hi.
    if (pos >= end) this.#fail(entry, 'truncated varint');
    byte = b[pos++];
    lo |= (byte & 0x0f) << 28;
    let hi = (byte & 0x7f) >>> 4;
    if (byte >= 0x80) {
      for (shift = 3; ; shift += 7) {
        if (shift > 63) this.#fail(entry, 'varint longer than 10 bytes');
        if (pos >= end) this.#fail(entry, 'truncated varint');
        byte = b[pos++];
        if (shift < 32) hi |= (byte & 0x7f) << shift;
        if (byte < 0x80) break;
      }
    }
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
    return pos;
  }

  /** The length just read (#lo/#hi) checked against the bytes left after `pos`. */
  #lengthOf(pos: number, end: number, entry: number): number {
    if (this.#hi !== 0 || this.#lo > end - pos) this.#fail(entry, 'length runs past the end of the message');
    return this.#lo;
  }

  /** Skips the value of an unknown field with `tag`, as protobuf readers must. */
  #skip(b: Uint8Array, pos: number, end: number, tag: number, entry: number): number {
    switch (tag & 7) {
      case WIRE.VARINT:
        return this.#varint(b, pos, end, entry);
      case WIRE.FIXED64:
        if (end - pos < 8) this.#fail(entry, 'truncated fixed64');
        return pos + 8;
      case WIRE.LENGTH_DELIMITED: {
        pos = this.#varint(b, pos, end, entry);
        return pos + this.#lengthOf(pos, end, entry);
      }
      case WIRE.FIXED32:
        if (end - pos < 4) this.#fail(entry, 'truncated fixed32');
        return pos + 4;
      default:
        return this.#fail(entry, `wire type ${tag & 7} is not one protobuf has`);
    }
  }

  /** Reads a tag at `pos` (into #lo) and returns the position after it. */
  #tag(b: Uint8Array, pos: number, end: number, entry: number): number {
    pos = this.#varint(b, pos, end, entry);
    if (this.#hi !== 0 || this.#lo >>> 3 === 0) this.#fail(entry, 'invalid field number 0');
    return pos;
  }

  /** A known field arrived with another wire type than the schema's. */
  #wrongWireType(entry: number, field: string, tag: number): never {
    return this.#fail(entry, `${field} has wire type ${tag & 7}`);
  }

  /** Reserves a zeroed row and returns its offset. */
  #appendRow(): number {
    const offset = this.#count * V2_RECORD_BYTES;
    if (offset + V2_RECORD_BYTES > this.#bytes.length) {
      const grown = Buffer.alloc(
        Math.max(this.#bytes.length * 2, this.initialRows * V2_RECORD_BYTES, V2_RECORD_BYTES),
      );
      this.#bytes.copy(grown, 0, 0, offset);
      this.#bytes = grown;
    }
    this.#count++;
    return offset;
  }

  #record(b: Uint8Array, pos: number, end: number, entry: number): void {
    const o = this.#appendRow();
    const row = this.#bytes;
    let rttParts = 0;
    let sections = 0;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const wire = tag & 7;
      switch (tag >>> 3) {
        case RECORD_FIELD.ETH_PROTOCOL:
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'eth_protocol', tag);
          pos = this.#varint(b, pos, end, entry);
          if (this.#hi !== 0 || this.#lo > MAX_U16)
            this.#fail(entry, `eth_protocol ${this.#u64Text()} is above 65535`);
          row[o + V2.ETH_PROTOCOL] = this.#lo & 0xff;
          row[o + V2.ETH_PROTOCOL + 1] = this.#lo >>> 8;
          break;
        case RECORD_FIELD.DIRECTION:
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'direction', tag);
          pos = this.#varint(b, pos, end, entry);
          if (this.#hi !== 0 || this.#lo > MAX_U8)
            this.#fail(entry, `direction ${this.#i32Text()} is outside 0..255`);
          row[o + V2.DIRECTION] = this.#lo;
          break;
        case RECORD_FIELD.TIME_FLOW_START:
        case RECORD_FIELD.TIME_FLOW_END: {
          const start = tag >>> 3 === RECORD_FIELD.TIME_FLOW_START;
          const name = start ? 'time_flow_start' : 'time_flow_end';
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, name, tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#timestamp(
            b,
            pos,
            pos + length,
            entry,
            name,
            o + (start ? V2.FIRST_SEEN_NS : V2.LAST_SEEN_NS),
          );
          pos += length;
          break;
        }
        case RECORD_FIELD.DATA_LINK: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'data_link', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#dataLink(b, pos, pos + length, entry, o);
          pos += length;
          break;
        }
        case RECORD_FIELD.NETWORK: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'network', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#network(b, pos, pos + length, entry, o);
          pos += length;
          break;
        }
        case RECORD_FIELD.TRANSPORT: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'transport', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#transport(b, pos, pos + length, entry, o);
          pos += length;
          break;
        }
        case RECORD_FIELD.BYTES:
        case RECORD_FIELD.PACKETS: {
          const bytes = tag >>> 3 === RECORD_FIELD.BYTES;
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, bytes ? 'bytes' : 'packets', tag);
          pos = this.#varint(b, pos, end, entry);
          this.#writeU32Pair(row, o + (bytes ? V2.BYTES : V2.PACKETS), this.#lo, this.#hi);
          break;
        }
        case RECORD_FIELD.INTERFACE: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'interface', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          const index = length === 0 ? 0 : this.#interfaceIndex(b, pos, length);
          row[o + V2.IF_INDEX] = index & 0xff;
          row[o + V2.IF_INDEX + 1] = (index >>> 8) & 0xff;
          row[o + V2.IF_INDEX + 2] = (index >>> 16) & 0xff;
          row[o + V2.IF_INDEX + 3] = index >>> 24;
          pos += length;
          break;
        }
        case RECORD_FIELD.AGENT_IP: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'agent_ip', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#ip(b, pos, pos + length, entry, 'agent_ip', o + V2.AGENT_IP);
          pos += length;
          break;
        }
        case RECORD_FIELD.VLAN_ID:
        case RECORD_FIELD.INNER_VLAN_ID: {
          const outer = tag >>> 3 === RECORD_FIELD.VLAN_ID;
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, outer ? 'vlan_id' : 'inner_vlan_id', tag);
          pos = this.#varint(b, pos, end, entry);
          if (this.#hi !== 0 || this.#lo > MAX_VLAN_ID) this.#fail(entry, 'a VLAN id is above 4095');
          row.writeUInt16LE(this.#lo, o + (outer ? V2.VLAN_OUTER : V2.VLAN_INNER));
          break;
        }
        case RECORD_FIELD.TUNNEL: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'tunnel', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#tunnel(b, pos, pos + length, entry, o);
          pos += length;
          break;
        }
        case RECORD_FIELD.PKT_DROP_BYTES:
        case RECORD_FIELD.PKT_DROP_PACKETS:
        case RECORD_FIELD.PKT_RETRANS_BYTES:
        case RECORD_FIELD.PKT_RETRANS_PACKETS:
          pos = this.#healthCounter(b, pos, end, entry, tag, o);
          sections |= HEALTH_GIVEN;
          break;
        case RECORD_FIELD.PKT_DROP_LATEST_FLAGS:
        case RECORD_FIELD.PKT_DROP_LATEST_STATE:
        case RECORD_FIELD.PKT_DROP_LATEST_DROP_CAUSE:
          pos = this.#latestDrop(b, pos, end, entry, tag, o);
          sections |= HEALTH_GIVEN;
          break;
        case RECORD_FIELD.TIME_FLOW_RTT_SAMPLES:
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'time_flow_rtt_samples', tag);
          pos = this.#varint(b, pos, end, entry);
          row.writeUInt32LE(this.#lo >>> 0, o + V2.RTT_SAMPLES);
          sections |= HEALTH_GIVEN;
          break;
        case RECORD_FIELD.TIME_FLOW_RTT:
        case RECORD_FIELD.TIME_FLOW_RTT_MIN:
        case RECORD_FIELD.TIME_FLOW_RTT_MAX:
        case RECORD_FIELD.TIME_HANDSHAKE_RTT:
        case RECORD_FIELD.PKT_DROP_LATEST_TIME: {
          const field = tag >>> 3;
          const [name, at] = HEALTH_TIMES[field] as readonly [string, number];
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, name, tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#timestamp(b, pos, pos + length, entry, name, o + at);
          pos += length;
          if (field === RECORD_FIELD.TIME_FLOW_RTT) row[o + V2.HEALTH_FLAGS] |= HealthFlag.RTT;
          else if (field === RECORD_FIELD.TIME_HANDSHAKE_RTT)
            row[o + V2.HEALTH_FLAGS] |= HealthFlag.HANDSHAKE;
          else if (field === RECORD_FIELD.TIME_FLOW_RTT_MIN) rttParts |= RTT_MIN_GIVEN;
          else if (field === RECORD_FIELD.TIME_FLOW_RTT_MAX) rttParts |= RTT_MAX_GIVEN;
          sections |= HEALTH_GIVEN;
          break;
        }
        case RECORD_FIELD.DNS_ID:
        case RECORD_FIELD.DNS_FLAGS: {
          const id = tag >>> 3 === RECORD_FIELD.DNS_ID;
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, id ? 'dns_id' : 'dns_flags', tag);
          pos = this.#varint(b, pos, end, entry);
          if (this.#lo > MAX_U16)
            this.#fail(entry, `${id ? 'dns_id' : 'dns_flags'} ${this.#lo} is above 65535`);
          row.writeUInt16LE(this.#lo, o + (id ? V2.DNS_ID : V2.DNS_FLAGS));
          sections |= DNS_GIVEN;
          break;
        }
        case RECORD_FIELD.DNS_LATENCY: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'dns_latency', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#timestamp(b, pos, pos + length, entry, 'dns_latency', o + V2.DNS_LATENCY_NS);
          row[o + V2.DNS_RECORD_FLAGS] |= DnsFlag.LATENCY;
          pos += length;
          sections |= DNS_GIVEN;
          break;
        }
        case RECORD_FIELD.DNS_ERRNO:
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'dns_errno', tag);
          pos = this.#varint(b, pos, end, entry);
          if (this.#lo > MAX_U8) this.#fail(entry, `dns_errno ${this.#lo} is above 255`);
          row[o + V2.DNS_ERRNO] = this.#lo;
          sections |= DNS_GIVEN;
          break;
        case RECORD_FIELD.DNS_NAME: {
          if (wire !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, 'dns_name', tag);
          pos = this.#varint(b, pos, end, entry);
          const length = this.#lengthOf(pos, end, entry);
          this.#dnsName(b, pos, length, o);
          pos += length;
          sections |= DNS_GIVEN;
          break;
        }
        case RECORD_FIELD.DNS_QUERIES:
        case RECORD_FIELD.DNS_ANSWERS:
        case RECORD_FIELD.DNS_UNANSWERED:
        case RECORD_FIELD.DNS_MALFORMED: {
          const field = tag >>> 3;
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'a DNS count', tag);
          pos = this.#varint(b, pos, end, entry);
          // A uint32 keeps the low 32 bits of a longer varint, as protobuf-es reads it.
          row.writeUInt32LE(this.#lo >>> 0, o + DNS_COUNT_OFFSET[field - RECORD_FIELD.DNS_QUERIES]);
          sections |= DNS_GIVEN;
          break;
        }
        case RECORD_FIELD.DNS_NAME_TRUNCATED:
          if (wire !== WIRE.VARINT) this.#wrongWireType(entry, 'dns_name_truncated', tag);
          pos = this.#varint(b, pos, end, entry);
          if ((this.#lo | this.#hi) !== 0) row[o + V2.DNS_RECORD_FLAGS] |= DnsFlag.NAME_TRUNCATED;
          else row[o + V2.DNS_RECORD_FLAGS] &= ~DnsFlag.NAME_TRUNCATED;
          sections |= DNS_GIVEN;
          break;
        // dup_list names interfaces of the sender's host, which have no index here: skipped, as
        // the generic decoder (from-pb.ts) does.
        default:
          pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, 'a field runs past the end of its record');
    if ((sections & HEALTH_GIVEN) !== 0) this.#completeHealth(o, rttParts);
    if ((sections & DNS_GIVEN) !== 0) this.#finishDns(row, o);
  }

  /** A u64 drop or retransmission counter into its row field. */
  #healthCounter(b: Uint8Array, pos: number, end: number, entry: number, tag: number, o: number): number {
    const field = tag >>> 3;
    const [name, at] = HEALTH_COUNTERS[field] as readonly [string, number];
    if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, name, tag);
    pos = this.#varint(b, pos, end, entry);
    this.#writeU32Pair(this.#bytes, o + at, this.#lo, this.#hi);
    return pos;
  }

  /** The latest drop's TCP flags (16 bits), TCP state (8 bits) or reason (32 bits). */
  #latestDrop(b: Uint8Array, pos: number, end: number, entry: number, tag: number, o: number): number {
    const row = this.#bytes;
    const field = tag >>> 3;
    const name =
      field === RECORD_FIELD.PKT_DROP_LATEST_FLAGS
        ? 'pkt_drop_latest_flags'
        : field === RECORD_FIELD.PKT_DROP_LATEST_STATE
          ? 'pkt_drop_latest_state'
          : 'pkt_drop_latest_drop_cause';
    if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, name, tag);
    pos = this.#varint(b, pos, end, entry);
    if (field === RECORD_FIELD.PKT_DROP_LATEST_FLAGS) {
      if (this.#hi !== 0 || this.#lo > MAX_U16)
        this.#fail(entry, `${name} ${this.#u64Text()} is above 65535`);
      row.writeUInt16LE(this.#lo, o + V2.DROP_LATEST_FLAGS);
    } else if (field === RECORD_FIELD.PKT_DROP_LATEST_STATE) {
      if (this.#hi !== 0 || this.#lo > MAX_U8) this.#fail(entry, `${name} ${this.#u64Text()} is above 255`);
      row[o + V2.DROP_LATEST_STATE] = this.#lo;
    } else {
      row.writeUInt32LE(this.#lo >>> 0, o + V2.DROP_LATEST_CAUSE);
    }
    return pos;
  }

  /**
   * The health section of the record just read, made whole as from-pb.ts makes it: a sender
   * that gives only the latest RTT (netobserv) has it as min and max too, over one sample; RTT
   * parts without the latest RTT, and a latest drop without dropped packets, are not kept.
   */
  #completeHealth(o: number, rttParts: number): void {
    const row = this.#bytes;
    if ((row[o + V2.HEALTH_FLAGS] & HealthFlag.RTT) !== 0) {
      if ((rttParts & RTT_MIN_GIVEN) === 0)
        row.copy(row, o + V2.RTT_MIN_NS, o + V2.RTT_LAST_NS, o + V2.RTT_LAST_NS + 8);
      if ((rttParts & RTT_MAX_GIVEN) === 0)
        row.copy(row, o + V2.RTT_MAX_NS, o + V2.RTT_LAST_NS, o + V2.RTT_LAST_NS + 8);
      if (row.readUInt32LE(o + V2.RTT_SAMPLES) === 0) row.writeUInt32LE(1, o + V2.RTT_SAMPLES);
    } else {
      zero(row, o + V2.RTT_MIN_NS, o + V2.RTT_LAST_NS + 8);
      row.writeUInt32LE(0, o + V2.RTT_SAMPLES);
    }
    if (row.readUInt32LE(o + V2.DROP_PACKETS) === 0 && row.readUInt32LE(o + V2.DROP_PACKETS + 4) === 0) {
      zero(row, o + V2.DROP_LATEST_NS, o + V2.HEALTH_FLAGS);
    }
  }

  /**
   * The DNS name given as UTF-8 at `pos` into the row: one byte per character (latin1, as rows
   * keep names), its first 64 bytes, the cut flagged. The last name of a record wins.
   */
  #dnsName(b: Uint8Array, pos: number, length: number, o: number): void {
    const row = this.#bytes;
    row.fill(0, o + V2.DNS_NAME, o + V2.DNS_NAME + V2_DNS_NAME_MAX);
    const text = Buffer.from(b.buffer, b.byteOffset + pos, length).toString('utf8');
    const written = row.write(text, o + V2.DNS_NAME, V2_DNS_NAME_MAX, 'latin1');
    row[o + V2.DNS_NAME_LEN] = written;
    if (written > 0) row[o + V2.DNS_RECORD_FLAGS] |= DnsFlag.NAME;
    else row[o + V2.DNS_RECORD_FLAGS] &= ~DnsFlag.NAME;
    if (written < text.length) row[o + V2.DNS_RECORD_FLAGS] |= DnsFlag.NAME_TRUNCATED;
  }

  /**
   * Completes the DNS section of the record at `o`: the header is present when an id or flags
   * word is not zero (proto3 leaves zeros out), and the section is as recent as the flow's end.
   */
  #finishDns(row: Buffer, o: number): void {
    if ((row.readUInt16LE(o + V2.DNS_ID) | row.readUInt16LE(o + V2.DNS_FLAGS)) !== 0)
      row[o + V2.DNS_RECORD_FLAGS] |= DnsFlag.HEADER;
    if (rowHasDns(row, o)) row.copy(row, o + V2.DNS_LATEST_NS, o + V2.LAST_SEEN_NS, o + V2.LAST_SEEN_NS + 8);
  }

  /** A `Tunnel` into the row's tunnel fields; one of type 0 (none) leaves them all zero. */
  #tunnel(b: Uint8Array, pos: number, end: number, entry: number, o: number): void {
    const row = this.#bytes;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === TUNNEL_FIELD.TYPE || field === TUNNEL_FIELD.ID) {
        const type = field === TUNNEL_FIELD.TYPE;
        if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, type ? 'tunnel.type' : 'tunnel.id', tag);
        pos = this.#varint(b, pos, end, entry);
        if (type) {
          if (this.#hi !== 0 || this.#lo > MAX_U8)
            this.#fail(entry, `tunnel type ${this.#u64Text()} is above 255`);
          row[o + V2.TUNNEL_TYPE] = this.#lo;
        } else {
          row.writeUInt32LE(this.#lo >>> 0, o + V2.TUNNEL_ID);
        }
      } else if (field === TUNNEL_FIELD.SRC_ADDR || field === TUNNEL_FIELD.DST_ADDR) {
        const src = field === TUNNEL_FIELD.SRC_ADDR;
        const name = src ? 'tunnel.src_addr' : 'tunnel.dst_addr';
        if ((tag & 7) !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, name, tag);
        pos = this.#varint(b, pos, end, entry);
        const length = this.#lengthOf(pos, end, entry);
        this.#ip(b, pos, pos + length, entry, name, o + (src ? V2.TUNNEL_SRC : V2.TUNNEL_DST));
        pos += length;
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, 'tunnel runs past its length');
    if (row[o + V2.TUNNEL_TYPE] === 0) row.fill(0, o + V2.TUNNEL_ID, o + V2.TUNNEL_DST + IP_BYTES);
  }

  /** Text of the u64 in #lo/#hi, for error messages only. */
  #u64Text(): string {
    return ((BigInt(this.#hi) << 32n) | BigInt(this.#lo)).toString();
  }

  /** Text of the varint in #lo/#hi read as a protobuf int32 (an enum), for error messages only. */
  #i32Text(): string {
    return String(this.#lo | 0);
  }

  #writeU32Pair(row: Buffer, at: number, lo: number, hi: number): void {
    row[at] = lo & 0xff;
    row[at + 1] = (lo >>> 8) & 0xff;
    row[at + 2] = (lo >>> 16) & 0xff;
    row[at + 3] = lo >>> 24;
    row[at + 4] = hi & 0xff;
    row[at + 5] = (hi >>> 8) & 0xff;
    row[at + 6] = (hi >>> 16) & 0xff;
    row[at + 7] = hi >>> 24;
  }

  /**
   * A `Timestamp` as u64 Unix nanoseconds at `at`: seconds × 10^9 + nanos over 16-bit limbs,
   * exact where `seconds * 1e9` in a double would not be (epoch nanoseconds exceed 2^53).
   */
  #timestamp(b: Uint8Array, pos: number, end: number, entry: number, name: string, at: number): void {
    let seconds = 0;
    let nanos = 0;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === TIMESTAMP_FIELD.SECONDS || field === TIMESTAMP_FIELD.NANOS) {
        if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, name, tag);
        pos = this.#varint(b, pos, end, entry);
        if (field === TIMESTAMP_FIELD.SECONDS) {
          // Negative seconds (a 64-bit two's complement) land here too: the model has no time before 1970.
          if (this.#hi * TWO_POW_32 + this.#lo > MAX_SECONDS)
            this.#fail(entry, `${name}.seconds is outside what u64 nanoseconds hold`);
          seconds = this.#hi * TWO_POW_32 + this.#lo;
        } else {
          nanos = this.#lo | 0;
          if (this.#hi !== 0 && this.#hi !== 0xffffffff) nanos = -1;
          if (nanos < 0 || nanos >= NS_PER_S)
            this.#fail(entry, `${name}.nanos ${nanos} is outside 0..999999999`);
        }
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, `${name} runs past its length`);
    // seconds = sHigh·2^16 + sLow; each product with 10^9 stays below 2^53. Split by floor of a
    // division by a power of two (exact in doubles), not `%`: on values past 2^31, V8 computes a
    // double's `%` with a call to fmod, which made this the decoder's costliest function.
    const sHigh = Math.floor(seconds / TWO_POW_16);
    const sLow = seconds - sHigh * TWO_POW_16;
    const a = sLow * NS_PER_S + nanos;
    const bProduct = sHigh * NS_PER_S;
    const bHigh = Math.floor(bProduct / TWO_POW_16);
    const bLow = bProduct - bHigh * TWO_POW_16;
    const t = bLow * TWO_POW_16 + a;
    const carry = Math.floor(t / TWO_POW_32);
    const lo = t - carry * TWO_POW_32;
    const hi = bHigh + carry;
    if (hi >= TWO_POW_32) this.#fail(entry, `${name} is outside what u64 nanoseconds hold`);
    this.#writeU32Pair(this.#bytes, at, lo >>> 0, hi >>> 0);
  }

  #dataLink(b: Uint8Array, pos: number, end: number, entry: number, o: number): void {
    const row = this.#bytes;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === DATA_LINK_FIELD.SRC_MAC || field === DATA_LINK_FIELD.DST_MAC) {
        const name = field === DATA_LINK_FIELD.SRC_MAC ? 'src_mac' : 'dst_mac';
        if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, name, tag);
        pos = this.#varint(b, pos, end, entry);
        if (this.#hi > MAX_MAC_HIGH) this.#fail(entry, `${name} 0x${this.#u64Hex()} is wider than 48 bits`);
        // 0x112233445566 is 11:22:33:44:55:66: the value's bytes in network order.
        const at = o + (field === DATA_LINK_FIELD.SRC_MAC ? V2.SRC_MAC : V2.DST_MAC);
        const lo = this.#lo;
        const hi = this.#hi;
        row[at] = hi >>> 8;
        row[at + 1] = hi & 0xff;
        row[at + 2] = lo >>> 24;
        row[at + 3] = (lo >>> 16) & 0xff;
        row[at + 4] = (lo >>> 8) & 0xff;
        row[at + 5] = lo & 0xff;
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, 'data_link runs past its length');
  }

  #u64Hex(): string {
    return ((BigInt(this.#hi) << 32n) | BigInt(this.#lo)).toString(16);
  }

  #network(b: Uint8Array, pos: number, end: number, entry: number, o: number): void {
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === NETWORK_FIELD.SRC_ADDR || field === NETWORK_FIELD.DST_ADDR) {
        const name = field === NETWORK_FIELD.SRC_ADDR ? 'src_addr' : 'dst_addr';
        if ((tag & 7) !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, name, tag);
        pos = this.#varint(b, pos, end, entry);
        const length = this.#lengthOf(pos, end, entry);
        this.#ip(
          b,
          pos,
          pos + length,
          entry,
          name,
          o + (field === NETWORK_FIELD.SRC_ADDR ? V2.SRC_ADDR : V2.DST_ADDR),
        );
        pos += length;
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, 'network runs past its length');
  }

  /** An `IP` into the 16 bytes at `at`: ipv4 stored IPv4-mapped, the last oneof member winning. */
  #ip(b: Uint8Array, pos: number, end: number, entry: number, name: string, at: number): void {
    const row = this.#bytes;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === IP_FIELD.IPV4) {
        if ((tag & 7) !== WIRE.FIXED32) this.#wrongWireType(entry, `${name}.ipv4`, tag);
        if (end - pos < 4) this.#fail(entry, `${name}.ipv4 is truncated`);
        zero(row, at, at + 10);
        row[at + 10] = IPV4_MAPPED_PREFIX >>> 8;
        row[at + 11] = IPV4_MAPPED_PREFIX & 0xff;
        // fixed32 is little-endian; its value is the address as a number (10.0.0.1 = 0x0A000001).
        row[at + 12] = b[pos + 3];
        row[at + 13] = b[pos + 2];
        row[at + 14] = b[pos + 1];
        row[at + 15] = b[pos];
        pos += 4;
      } else if (field === IP_FIELD.IPV6) {
        if ((tag & 7) !== WIRE.LENGTH_DELIMITED) this.#wrongWireType(entry, `${name}.ipv6`, tag);
        pos = this.#varint(b, pos, end, entry);
        const length = this.#lengthOf(pos, end, entry);
        if (length !== IP_BYTES) this.#fail(entry, `${name}.ipv6 has ${length} bytes, not 16`);
        for (let k = 0; k < IP_BYTES; k++) row[at + k] = b[pos + k];
        pos += length;
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, `${name} runs past its length`);
  }

  #transport(b: Uint8Array, pos: number, end: number, entry: number, o: number): void {
    const row = this.#bytes;
    while (pos < end) {
      pos = this.#tag(b, pos, end, entry);
      const tag = this.#lo;
      const field = tag >>> 3;
      if (field === TRANSPORT_FIELD.SRC_PORT || field === TRANSPORT_FIELD.DST_PORT) {
        if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, 'port', tag);
        pos = this.#varint(b, pos, end, entry);
        if (this.#hi !== 0 || this.#lo > MAX_U16) this.#fail(entry, `port ${this.#u64Text()} is above 65535`);
        const at = o + (field === TRANSPORT_FIELD.SRC_PORT ? V2.SRC_PORT : V2.DST_PORT);
        row[at] = this.#lo & 0xff;
        row[at + 1] = this.#lo >>> 8;
      } else if (field === TRANSPORT_FIELD.PROTOCOL) {
        if ((tag & 7) !== WIRE.VARINT) this.#wrongWireType(entry, 'protocol', tag);
        pos = this.#varint(b, pos, end, entry);
        if (this.#hi !== 0 || this.#lo > MAX_U8)
          this.#fail(entry, `protocol ${this.#u64Text()} is above 255`);
        row[o + V2.TRANSPORT_PROTOCOL] = this.#lo;
      } else {
        pos = this.#skip(b, pos, end, tag, entry);
      }
    }
    if (pos !== end) this.#fail(entry, 'transport runs past its length');
  }

  /**
   * The batch's index of the interface named by the UTF-8 bytes at `pos`, added when new. The
   * first names are found by comparing bytes (no string made); a batch with more names (never one
   * host's) falls back to a map, so a sender cannot make the lookup quadratic.
   */
  #interfaceIndex(b: Uint8Array, pos: number, length: number): number {
    const known = this.#nameBytes;
    const scanned = Math.min(known.length, SCANNED_NAMES);
    outer: for (let i = 0; i < scanned; i++) {
      const name = known[i];
      if (name.length !== length) continue;
      for (let k = 0; k < length; k++) if (name[k] !== b[pos + k]) continue outer;
      return i + 1;
    }
    const text = Buffer.from(b.buffer, b.byteOffset + pos, length).toString('utf8');
    if (known.length > SCANNED_NAMES) {
      const index = this.#indexByName.get(text);
      if (index !== undefined) return index;
    }
    known.push(Uint8Array.prototype.slice.call(b, pos, pos + length));
    this.#names.names.push(text);
    this.#indexByName.set(text, known.length);
    return known.length;
  }
}

/** A serialized `pbflow.Records` as one batch; throws MalformedMessageError when it is not one. */
export function decodePbRecords(message: Uint8Array): RecordBatch {
  const decoder = new PbflowBatchDecoder(Math.ceil(message.length / TYPICAL_ENTRY_BYTES));
  decoder.appendRecords(message);
  return decoder.finish();
}
