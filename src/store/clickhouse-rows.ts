/**
 * Rows of RecordBatches → ClickHouse's RowBinary input format, read in place from the v2 rows
 * into one buffer per insert: fixed-width little-endian values, the interface name as a varint
 * length and its UTF-8 bytes. No object per flow; the only per-row lookup is the name, cached per
 * interface index of a batch. Addresses and MACs become the numbers schema.ts describes.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { DnsFlag, HealthFlag, V2, V2_DNS_NAME_MAX, V2_RECORD_BYTES } from '../codec/v2-layout.ts';

/** The columns a RowBinary row holds, in the order written (the INSERT names them so). */
export const ROW_BINARY_COLUMNS = [
  'time_start',
  'time_end',
  'etype',
  'direction',
  'proto',
  'src_ip_hi',
  'src_ip_lo',
  'dst_ip_hi',
  'dst_ip_lo',
  'src_port',
  'dst_port',
  'icmp_type',
  'icmp_code',
  'if_index',
  'interface',
  'bytes',
  'packets',
  'tcp_flags',
  'dscp',
  'src_mac',
  'dst_mac',
  // Schema 4 (issue 14): the health section, written by writeHealth.
  'rtt_last_ns',
  'rtt_min_ns',
  'rtt_max_ns',
  'handshake_rtt_ns',
  'drop_bytes',
  'drop_packets',
  'drop_latest_cause',
  'drop_latest_flags',
  'drop_latest_state',
  'retrans_bytes',
  'retrans_packets',
  // Schema 5 (issue 15): the DNS section, written by writeDns.
  'dns_id',
  'dns_flags',
  'dns_latency_ns',
  'dns_name',
  'dns_errno',
  'dns_queries',
  'dns_answers',
  'dns_unanswered',
  'dns_malformed',
  'dns_record_flags',
] as const;

/** Bytes of the health columns: four times and four counters, the cause, flags and state. */
const HEALTH_ROW_BYTES = 8 * 8 + 4 + 2 + 1;
/**
 * Bytes of the DNS columns at most: id and flags, the latency, the name (a 2-byte length and up
 * to 2 UTF-8 bytes per byte kept), errno, four counts and the parts-present flags.
 */
const DNS_ROW_BYTES = 2 + 2 + 8 + 2 + 2 * V2_DNS_NAME_MAX + 1 + 4 * 4 + 1;
/** Bytes of a row without its name's length and bytes. */
const FIXED_ROW_BYTES =
  8 * 2 + 2 + 1 + 1 + 8 * 4 + 2 * 2 + 1 + 1 + 4 + 8 * 2 + 2 + 1 + 8 * 2 + HEALTH_ROW_BYTES + DNS_ROW_BYTES;
/** A name's varint length takes at most this many bytes (names are far below 2^21). */
const MAX_NAME_LENGTH_BYTES = 3;
/** Longer names are cut (never a Linux one: IFNAMSIZ is 16); keeps a row's size bounded. */
export const MAX_INTERFACE_NAME_BYTES = 256;

/** Collects rows of several batches into one RowBinary body. */
export class RowBinaryWriter {
  #out: Buffer;
  #pos = 0;
  #rows = 0;

  constructor(initialBytes = 1 << 20) {
    this.#out = Buffer.allocUnsafe(initialBytes);
  }

  /** Rows written since the last `take()`. */
  get rows(): number {
    return this.#rows;
  }

  /** Appends rows `from` to `to - 1` of `batch`. */
  append(batch: RecordBatch, from = 0, to = batch.count): void {
    const names = new Map<number, Buffer>();
    const b = batch.bytes;
    for (let i = from; i < to; i++) {
      const o = i * V2_RECORD_BYTES;
      const ifIndex = b.readUInt32LE(o + V2.IF_INDEX);
      let name = names.get(ifIndex);
      if (name === undefined) {
        name = Buffer.from(batch.interfaces.nameOf(ifIndex), 'utf8').subarray(0, MAX_INTERFACE_NAME_BYTES);
        names.set(ifIndex, name);
      }
      this.#reserve(FIXED_ROW_BYTES + MAX_NAME_LENGTH_BYTES + name.length);
      const out = this.#out;
      let p = this.#pos;
      p = copy(out, p, b, o + V2.FIRST_SEEN_NS, 8);
      p = copy(out, p, b, o + V2.LAST_SEEN_NS, 8);
      p = copy(out, p, b, o + V2.ETH_PROTOCOL, 2);
      out[p++] = b[o + V2.DIRECTION];
      out[p++] = b[o + V2.TRANSPORT_PROTOCOL];
      p = reversed(out, p, b, o + V2.SRC_ADDR, 8);
      p = reversed(out, p, b, o + V2.SRC_ADDR + 8, 8);
      p = reversed(out, p, b, o + V2.DST_ADDR, 8);
      p = reversed(out, p, b, o + V2.DST_ADDR + 8, 8);
      p = copy(out, p, b, o + V2.SRC_PORT, 2);
      p = copy(out, p, b, o + V2.DST_PORT, 2);
      out[p++] = b[o + V2.ICMP_TYPE];
      out[p++] = b[o + V2.ICMP_CODE];
      p = copy(out, p, b, o + V2.IF_INDEX, 4);
      let length = name.length;
      while (length > 0x7f) {
        out[p++] = (length & 0x7f) | 0x80;
        length >>>= 7;
      }
      out[p++] = length;
      for (let k = 0; k < name.length; k++) out[p++] = name[k];
      p = copy(out, p, b, o + V2.BYTES, 8);
      p = copy(out, p, b, o + V2.PACKETS, 8);
      p = copy(out, p, b, o + V2.TCP_FLAGS, 2);
      out[p++] = b[o + V2.DSCP];
      p = mac(out, p, b, o + V2.SRC_MAC);
      p = mac(out, p, b, o + V2.DST_MAC);
      p = writeHealth(out, p, b, o);
      p = writeDns(out, p, b, o);
      this.#pos = p;
      this.#rows++;
    }
  }

  /**
   * The rows written as one body, and a fresh start: the body keeps the writer's buffer (no copy
   * of an insert's megabytes) and the writer starts a new one as large.
   */
  take(): Buffer {
    const body = this.#out.subarray(0, this.#pos);
    this.#out = Buffer.allocUnsafe(this.#out.length);
    this.#pos = 0;
    this.#rows = 0;
    return body;
  }

  #reserve(bytes: number): void {
    if (this.#pos + bytes <= this.#out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#out.length * 2, this.#pos + bytes));
    this.#out.copy(grown, 0, 0, this.#pos);
    this.#out = grown;
  }
}

/**
 * The health columns of the row at `o` (schema.ts, schema 4): RTTs and the handshake time only
 * when measured (0 otherwise), the latest drop's fields only with drops.
 */
function writeHealth(out: Buffer, p: number, b: Buffer, o: number): number {
  const flags = b[o + V2.HEALTH_FLAGS];
  const rtt = (flags & HealthFlag.RTT) !== 0;
  p = copyOrZero(out, p, b, o + V2.RTT_LAST_NS, 8, rtt);
  p = copyOrZero(out, p, b, o + V2.RTT_MIN_NS, 8, rtt);
  p = copyOrZero(out, p, b, o + V2.RTT_MAX_NS, 8, rtt);
  p = copyOrZero(out, p, b, o + V2.HANDSHAKE_RTT_NS, 8, (flags & HealthFlag.HANDSHAKE) !== 0);
  p = copy(out, p, b, o + V2.DROP_BYTES, 8);
  p = copy(out, p, b, o + V2.DROP_PACKETS, 8);
  const dropped = b.readUInt32LE(o + V2.DROP_PACKETS) !== 0 || b.readUInt32LE(o + V2.DROP_PACKETS + 4) !== 0;
  p = copyOrZero(out, p, b, o + V2.DROP_LATEST_CAUSE, 4, dropped);
  p = copyOrZero(out, p, b, o + V2.DROP_LATEST_FLAGS, 2, dropped);
  out[p++] = dropped ? b[o + V2.DROP_LATEST_STATE] : 0;
  p = copy(out, p, b, o + V2.RETRANS_BYTES, 8);
  return copy(out, p, b, o + V2.RETRANS_PACKETS, 8);
}

/**
 * The DNS columns of the row at `o` (schema.ts, schema 5): id and flags only with a header, the
 * latency only when measured, the name (one character per byte, as UTF-8) only when read.
 */
function writeDns(out: Buffer, p: number, b: Buffer, o: number): number {
  const parts = b[o + V2.DNS_RECORD_FLAGS];
  const header = (parts & DnsFlag.HEADER) !== 0;
  p = copyOrZero(out, p, b, o + V2.DNS_ID, 2, header);
  p = copyOrZero(out, p, b, o + V2.DNS_FLAGS, 2, header);
  p = copyOrZero(out, p, b, o + V2.DNS_LATENCY_NS, 8, (parts & DnsFlag.LATENCY) !== 0);
  const length = (parts & DnsFlag.NAME) === 0 ? 0 : Math.min(b[o + V2.DNS_NAME_LEN], V2_DNS_NAME_MAX);
  let utf8 = length;
  for (let k = 0; k < length; k++) if (b[o + V2.DNS_NAME + k] >= 0x80) utf8++;
  // At most 128 bytes: a varint of one or two bytes.
  if (utf8 > 0x7f) {
    out[p++] = (utf8 & 0x7f) | 0x80;
    out[p++] = utf8 >>> 7;
  } else {
    out[p++] = utf8;
  }
  for (let k = 0; k < length; k++) {
    const c = b[o + V2.DNS_NAME + k];
    if (c < 0x80) {
      out[p++] = c;
    } else {
      out[p++] = 0xc0 | (c >>> 6);
      out[p++] = 0x80 | (c & 0x3f);
    }
  }
  out[p++] = b[o + V2.DNS_ERRNO];
  p = copy(out, p, b, o + V2.DNS_QUERIES, 4);
  p = copy(out, p, b, o + V2.DNS_ANSWERS, 4);
  p = copy(out, p, b, o + V2.DNS_UNANSWERED, 4);
  p = copy(out, p, b, o + V2.DNS_MALFORMED, 4);
  out[p++] = parts;
  return p;
}

/** Copies `n` bytes as {@link copy} does when `present`, zeros otherwise. */
function copyOrZero(out: Buffer, p: number, b: Buffer, at: number, n: number, present: boolean): number {
  if (present) return copy(out, p, b, at, n);
  // A loop: Buffer.fill's native call costs more than these few bytes.
  for (let k = 0; k < n; k++) out[p++] = 0;
  return p;
}

/** Copies `n` little-endian bytes as they are (the v2 row is little-endian too). */
function copy(out: Buffer, p: number, b: Buffer, at: number, n: number): number {
  for (let k = 0; k < n; k++) out[p++] = b[at + k];
  return p;
}

/** `n` bytes in network order as the little-endian number they spell. */
function reversed(out: Buffer, p: number, b: Buffer, at: number, n: number): number {
  for (let k = n - 1; k >= 0; k--) out[p++] = b[at + k];
  return p;
}

/** A MAC in wire order as the little-endian UInt64 0x112233445566. */
function mac(out: Buffer, p: number, b: Buffer, at: number): number {
  p = reversed(out, p, b, at, 6);
  out[p++] = 0;
  out[p++] = 0;
  return p;
}
