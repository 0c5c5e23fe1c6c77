/**
 * IPFIX (RFC 7011) message encoder: turns the rows of a RecordBatch into messages no larger than
 * a byte bound (the path MTU over UDP), reading each v2 row in place and writing big-endian fields
 * straight into one Buffer per batch: no object per record or field.
 *
 * Sequence numbers follow RFC 7011 §3.1: the header carries the count (mod 2^32) of data records
 * sent before this message in the transport session; template messages do not advance it.
 */
import { type RecordBatch, rowHasDns, rowHasHealth } from '../../codec/record-batch.ts';
import {
  DnsFlag,
  HealthFlag,
  RecordFlag,
  TunnelType,
  V2,
  V2_DNS_NAME_MAX,
  V2_RECORD_BYTES,
} from '../../codec/v2-layout.ts';
import { ConfigError } from '../../errors.ts';
import type { InterfaceNames } from '../../model/interfaces.ts';
import { isAllZero, isIpv4Mapped } from '../../model/ip.ts';
import { EtherType } from '../../model/names.ts';
import { TWO_POW_32 } from '../../model/u64.ts';
import {
  encodeTemplateSets,
  HEALTH_BYTES,
  IPFIX_VERSION,
  LAYER2_SEGMENT_VXLAN,
  MAX_INTERFACE_NAME_BYTES,
  MAX_RECORD_BYTES,
  MESSAGE_HEADER_BYTES,
  SET_HEADER_BYTES,
  TEMPLATE_ID_BASE,
  TEMPLATES,
  TemplateShape,
} from './templates.ts';

/** Default largest message: fits a 1500-byte MTU with IP/UDP headers and tunnel headroom. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1400;
/** The message length field is 16 bits. */
export const MAX_MESSAGE_BYTES_LIMIT = 65_535;
/** Smallest bound that still fits the template set and the largest data record. */
export const MIN_MAX_MESSAGE_BYTES = 512;

/** Settings of an {@link IpfixEncoder}. */
export interface IpfixEncoderOptions {
  /** Observation Domain ID written in every message header (default 0). */
  observationDomainId?: number;
  /** Largest message in bytes (default {@link DEFAULT_MAX_MESSAGE_BYTES}). */
  maxMessageBytes?: number;
}

/** Messages encoded from one batch: back to back in `bytes`, message `k` ends at `messageEnds[k]`. */
export interface IpfixMessages {
  bytes: Buffer;
  messageEnds: number[];
}

const NS_PER_MS = 1_000_000;
const EMPTY = Buffer.alloc(0);
const FIXED_BYTES = TEMPLATES.map((t) => t.fixedBytes);
/** Bit 0 of record_flags: the reverse fields hold the reverse direction (see src/account/biflow.ts). */
const BIFLOW_FLAG = RecordFlag.BIFLOW;

/** True when the agent address at `o` is IPv6 (neither IPv4-mapped nor unset). */
function isIpv6Agent(b: Buffer, o: number): boolean {
  return !isIpv4Mapped(b, o) && !isAllZero(b, o);
}

/** Writes the u64 little-endian nanoseconds at `b[o]` as big-endian milliseconds at `out[p]`. */
function writeMsFromNs(b: Buffer, o: number, out: Buffer, p: number): void {
  // Long division in base 2^16 keeps every intermediate below 2^53, so the result is exact
  // without a BigInt per record.
  let r = b[o + 6] | (b[o + 7] << 8);
  const q3 = Math.floor(r / NS_PER_MS);
  r = (r - q3 * NS_PER_MS) * 65_536 + (b[o + 4] | (b[o + 5] << 8));
  const q2 = Math.floor(r / NS_PER_MS);
  r = (r - q2 * NS_PER_MS) * 65_536 + (b[o + 2] | (b[o + 3] << 8));
  const q1 = Math.floor(r / NS_PER_MS);
  r = (r - q1 * NS_PER_MS) * 65_536 + (b[o] | (b[o + 1] << 8));
  const q0 = Math.floor(r / NS_PER_MS);
  const ms = ((q3 * 65_536 + q2) * 65_536 + q1) * 65_536 + q0;
  const hi = Math.floor(ms / TWO_POW_32);
  const lo = ms - hi * TWO_POW_32;
  out[p] = hi >>> 24;
  out[p + 1] = (hi >>> 16) & 0xff;
  out[p + 2] = (hi >>> 8) & 0xff;
  out[p + 3] = hi & 0xff;
  out[p + 4] = lo >>> 24;
  out[p + 5] = (lo >>> 16) & 0xff;
  out[p + 6] = (lo >>> 8) & 0xff;
  out[p + 7] = lo & 0xff;
}

/**
 * layer2SegmentId (8 bytes, big-endian) of the row at `o`: IANA's VXLAN code in the top byte and
 * the VNI in the low 24 bits for a VXLAN flow, 0 otherwise (no other tunnel has an IANA code).
 */
function writeLayer2SegmentId(b: Buffer, o: number, out: Buffer, p: number): void {
  out.fill(0, p, p + 8);
  if (b[o + V2.TUNNEL_TYPE] !== TunnelType.VXLAN) return;
  out[p] = LAYER2_SEGMENT_VXLAN;
  out[p + 5] = b[o + V2.TUNNEL_ID + 2];
  out[p + 6] = b[o + V2.TUNNEL_ID + 1];
  out[p + 7] = b[o + V2.TUNNEL_ID];
}

/**
 * The health fields (templates.ts, HEALTH_FIELDS) of the row at `o` at `out[p]`: drops, RTT
 * latest/min/max/samples, handshake time, retransmissions, the latest drop's reason, TCP flags and
 * state; a part not measured (a health flag clear, no drops) is written as zeros.
 */
function writeHealth(b: Buffer, o: number, out: Buffer, p: number): void {
  copyReversed(b, o + V2.DROP_BYTES, out, p, 8);
  copyReversed(b, o + V2.DROP_PACKETS, out, p + 8, 8);
  const flags = b[o + V2.HEALTH_FLAGS];
  if ((flags & HealthFlag.RTT) !== 0) {
    copyReversed(b, o + V2.RTT_LAST_NS, out, p + 16, 8);
    copyReversed(b, o + V2.RTT_MIN_NS, out, p + 24, 8);
    copyReversed(b, o + V2.RTT_MAX_NS, out, p + 32, 8);
    copyReversed(b, o + V2.RTT_SAMPLES, out, p + 40, 4);
  } else {
    out.fill(0, p + 16, p + 44);
  }
  if ((flags & HealthFlag.HANDSHAKE) !== 0) copyReversed(b, o + V2.HANDSHAKE_RTT_NS, out, p + 44, 8);
  else out.fill(0, p + 44, p + 52);
  copyReversed(b, o + V2.RETRANS_PACKETS, out, p + 52, 8);
  copyReversed(b, o + V2.RETRANS_BYTES, out, p + 60, 8);
  if (b.readUInt32LE(o + V2.DROP_PACKETS) !== 0 || b.readUInt32LE(o + V2.DROP_PACKETS + 4) !== 0) {
    copyReversed(b, o + V2.DROP_LATEST_CAUSE, out, p + 68, 4);
    copyReversed(b, o + V2.DROP_LATEST_FLAGS, out, p + 72, 2);
    out[p + 74] = b[o + V2.DROP_LATEST_STATE];
  } else {
    out.fill(0, p + 68, p + HEALTH_BYTES);
  }
}

/** Copies `n` little-endian bytes at `b[o]` to `out[p]` reversed (big-endian). */
function copyReversed(b: Buffer, o: number, out: Buffer, p: number, n: number): void {
  for (let k = 0; k < n; k++) out[p + k] = b[o + n - 1 - k];
}

function copyBytes(b: Buffer, o: number, out: Buffer, p: number, n: number): void {
  for (let k = 0; k < n; k++) out[p + k] = b[o + k];
}

/** Bytes the DNS name of the row at `o` takes as UTF-8 (one character per byte kept). */
function dnsNameUtf8Bytes(b: Buffer, o: number): number {
  if ((b[o + V2.DNS_RECORD_FLAGS] & DnsFlag.NAME) === 0) return 0;
  const length = Math.min(b[o + V2.DNS_NAME_LEN], V2_DNS_NAME_MAX);
  let bytes = length;
  for (let k = 0; k < length; k++) if (b[o + V2.DNS_NAME + k] >= 0x80) bytes++;
  return bytes;
}

/**
 * Writes flowtap's DNS elements of the row at `o` at `out[p]` (templates.ts, DnsIE, in template
 * order) and returns where they end: id and flags (0 without a header), latency (0 without one),
 * errno, the four counts, the parts-present flags and the name (length byte, UTF-8).
 */
function writeDns(b: Buffer, o: number, out: Buffer, p: number, nameBytes: number): number {
  const flags = b[o + V2.DNS_RECORD_FLAGS];
  const header = (flags & DnsFlag.HEADER) !== 0;
  out[p] = header ? b[o + V2.DNS_ID + 1] : 0;
  out[p + 1] = header ? b[o + V2.DNS_ID] : 0;
  out[p + 2] = header ? b[o + V2.DNS_FLAGS + 1] : 0;
  out[p + 3] = header ? b[o + V2.DNS_FLAGS] : 0;
  if ((flags & DnsFlag.LATENCY) !== 0) copyReversed(b, o + V2.DNS_LATENCY_NS, out, p + 4, 8);
  else out.fill(0, p + 4, p + 12);
  out[p + 12] = b[o + V2.DNS_ERRNO];
  copyReversed(b, o + V2.DNS_QUERIES, out, p + 13, 4);
  copyReversed(b, o + V2.DNS_ANSWERS, out, p + 17, 4);
  copyReversed(b, o + V2.DNS_UNANSWERED, out, p + 21, 4);
  copyReversed(b, o + V2.DNS_MALFORMED, out, p + 25, 4);
  out[p + 29] = flags;
  // At most 2 x 64 bytes: the one-byte length form applies.
  out[p + 30] = nameBytes;
  let at = p + 31;
  const length = nameBytes === 0 ? 0 : Math.min(b[o + V2.DNS_NAME_LEN], V2_DNS_NAME_MAX);
  for (let k = 0; k < length; k++) {
    const c = b[o + V2.DNS_NAME + k];
    if (c < 0x80) {
      out[at++] = c;
    } else {
      out[at++] = 0xc0 | (c >>> 6);
      out[at++] = 0x80 | (c & 0x3f);
    }
  }
  return at;
}

/** UTF-8 bytes of `name`, cut at a character boundary to {@link MAX_INTERFACE_NAME_BYTES}. */
function encodeInterfaceName(name: string): Buffer {
  if (name === '') return EMPTY;
  const out = Buffer.alloc(MAX_INTERFACE_NAME_BYTES);
  const written = out.write(name, 0, MAX_INTERFACE_NAME_BYTES, 'utf8');
  return out.subarray(0, written);
}

/** Encodes batches into IPFIX messages for one transport session and observation domain. */
export class IpfixEncoder {
  /** Observation Domain ID in every header. */
  readonly observationDomainId: number;
  /** Largest message in bytes. */
  readonly maxMessageBytes: number;
  #sequence = 0;
  readonly #templateSets: Buffer[];

  constructor(options: IpfixEncoderOptions = {}) {
    const odid = options.observationDomainId ?? 0;
    if (!Number.isInteger(odid) || odid < 0 || odid >= TWO_POW_32) {
      throw new ConfigError('observation domain id', String(odid), 'an integer from 0 to 4294967295');
    }
    const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(max) || max < MIN_MAX_MESSAGE_BYTES || max > MAX_MESSAGE_BYTES_LIMIT) {
      throw new ConfigError(
        'IPFIX max message bytes',
        String(max),
        `an integer from ${MIN_MAX_MESSAGE_BYTES} to ${MAX_MESSAGE_BYTES_LIMIT}`,
      );
    }
    this.observationDomainId = odid;
    this.maxMessageBytes = max;
    this.#templateSets = encodeTemplateSets(max - MESSAGE_HEADER_BYTES);
  }

  /** Data records sent so far in this session (mod 2^32): the next message's sequence number. */
  get sequenceNumber(): number {
    return this.#sequence;
  }

  /** Starts a new transport session (a new TCP connection): sequence numbers restart at 0. */
  resetSequence(): void {
    this.#sequence = 0;
  }

  /** Messages holding every template, each within the message bound (one or two at the UDP size). */
  templateMessages(exportTimeS: number): Buffer[] {
    return this.#templateSets.map((set) => {
      const length = MESSAGE_HEADER_BYTES + set.length;
      const out = Buffer.allocUnsafe(length);
      this.#writeHeader(out, 0, length, exportTimeS, this.#sequence);
      set.copy(out, MESSAGE_HEADER_BYTES);
      return out;
    });
  }

  /** Encodes every row of `batch` into messages and advances the sequence number by `batch.count`. */
  encodeBatch(batch: RecordBatch, exportTimeS: number): IpfixMessages {
    const count = batch.count;
    // Worst case: every record opens a set and every message holds at least one record.
    const out = Buffer.allocUnsafe(count * (MAX_RECORD_BYTES + SET_HEADER_BYTES + MESSAGE_HEADER_BYTES));
    const names = new Map<number, Buffer>();
    const messageEnds: number[] = [];
    const b = batch.bytes;
    const max = this.maxMessageBytes;
    let p = 0;
    let messageStart = -1;
    let messageRecords = 0;
    let setStart = -1;
    let setId = -1;
    for (let i = 0; i < count; i++) {
      const o = i * V2_RECORD_BYTES;
      const ipv6 = (b[o + V2.ETH_PROTOCOL] | (b[o + V2.ETH_PROTOCOL + 1] << 8)) === EtherType.IPV6;
      const direction = b[o + V2.DIRECTION];
      const agentIpv6 = isIpv6Agent(b, o + V2.AGENT_IP);
      const biflow = (b[o + V2.RECORD_FLAGS] & BIFLOW_FLAG) !== 0;
      const health = rowHasHealth(b, o);
      const dns = rowHasDns(b, o);
      const templateIndex =
        (direction === 1 ? TemplateShape.EGRESS : 0) |
        (ipv6 ? TemplateShape.IPV6 : 0) |
        (agentIpv6 ? TemplateShape.AGENT_IPV6 : 0) |
        (biflow ? TemplateShape.BIFLOW : 0) |
        (health ? TemplateShape.HEALTH : 0) |
        (dns ? TemplateShape.DNS : 0);
      const templateId = TEMPLATE_ID_BASE + templateIndex;
      const ifIndex = b.readUInt32LE(o + V2.IF_INDEX);
      const name = this.#nameOf(names, batch.interfaces, ifIndex);
      const dnsNameBytes = dns ? dnsNameUtf8Bytes(b, o) : 0;
      const recordBytes = FIXED_BYTES[templateIndex] + 1 + name.length + (dns ? 1 + dnsNameBytes : 0);
      const needSet = templateId !== setId;
      if (messageStart < 0 || p + recordBytes + (needSet ? SET_HEADER_BYTES : 0) > messageStart + max) {
        if (messageStart >= 0) {
          out.writeUInt16BE(p - setStart, setStart + 2);
          this.#finishMessage(out, messageStart, p, exportTimeS, messageRecords);
          messageEnds.push(p);
        }
        messageStart = p;
        messageRecords = 0;
        p += MESSAGE_HEADER_BYTES;
        setId = -1;
      }
      if (templateId !== setId) {
        if (setId >= 0) out.writeUInt16BE(p - setStart, setStart + 2);
        setStart = p;
        setId = templateId;
        out.writeUInt16BE(templateId, p);
        p += SET_HEADER_BYTES;
      }
      if (biflow) {
        copyReversed(b, o + V2.REV_BYTES, out, p, 8);
        copyReversed(b, o + V2.REV_PACKETS, out, p + 8, 8);
        writeMsFromNs(b, o + V2.REV_FIRST_SEEN_NS, out, p + 16);
        writeMsFromNs(b, o + V2.REV_LAST_SEEN_NS, out, p + 24);
        out[p + 32] = b[o + V2.REV_TCP_FLAGS + 1];
        out[p + 33] = b[o + V2.REV_TCP_FLAGS];
        out[p + 34] = (b[o + V2.REV_DSCP] << 2) & 0xff;
        p += 35;
      }
      const addrBytes = ipv6 ? 16 : 4;
      const addrOffset = ipv6 ? 0 : 12;
      copyBytes(b, o + V2.SRC_ADDR + addrOffset, out, p, addrBytes);
      p += addrBytes;
      copyBytes(b, o + V2.DST_ADDR + addrOffset, out, p, addrBytes);
      p += addrBytes;
      out[p] = b[o + V2.SRC_PORT + 1];
      out[p + 1] = b[o + V2.SRC_PORT];
      out[p + 2] = b[o + V2.DST_PORT + 1];
      out[p + 3] = b[o + V2.DST_PORT];
      out[p + 4] = b[o + V2.TRANSPORT_PROTOCOL];
      copyReversed(b, o + V2.BYTES, out, p + 5, 8);
      copyReversed(b, o + V2.PACKETS, out, p + 13, 8);
      writeMsFromNs(b, o + V2.FIRST_SEEN_NS, out, p + 21);
      writeMsFromNs(b, o + V2.LAST_SEEN_NS, out, p + 29);
      out[p + 37] = direction;
      copyBytes(b, o + V2.SRC_MAC, out, p + 38, 6);
      copyBytes(b, o + V2.DST_MAC, out, p + 44, 6);
      out[p + 50] = b[o + V2.ETH_PROTOCOL + 1];
      out[p + 51] = b[o + V2.ETH_PROTOCOL];
      out[p + 52] = b[o + V2.TCP_FLAGS + 1];
      out[p + 53] = b[o + V2.TCP_FLAGS];
      // ipClassOfService is the whole TOS / traffic class octet; flowtap keeps the DSCP (its
      // upper six bits) and not the ECN bits, which are written as 0.
      out[p + 54] = (b[o + V2.DSCP] << 2) & 0xff;
      copyReversed(b, o + V2.IF_INDEX, out, p + 55, 4);
      p += 59;
      if (agentIpv6) {
        copyBytes(b, o + V2.AGENT_IP, out, p, 16);
        p += 16;
      } else {
        copyBytes(b, o + V2.AGENT_IP + 12, out, p, 4);
        p += 4;
      }
      // vlanId and dot1qVlanId both carry the outer tag: older collectors know only the first.
      out[p] = b[o + V2.VLAN_OUTER + 1];
      out[p + 1] = b[o + V2.VLAN_OUTER];
      out[p + 2] = b[o + V2.VLAN_OUTER + 1];
      out[p + 3] = b[o + V2.VLAN_OUTER];
      out[p + 4] = b[o + V2.VLAN_INNER + 1];
      out[p + 5] = b[o + V2.VLAN_INNER];
      writeLayer2SegmentId(b, o, out, p + 6);
      p += 14;
      // Names are at most MAX_INTERFACE_NAME_BYTES (< 255), so the one-byte length form applies.
      out[p] = name.length;
      p += 1;
      for (let k = 0; k < name.length; k++) out[p + k] = name[k];
      p += name.length;
      out[p] = b[o + V2.ICMP_TYPE];
      out[p + 1] = b[o + V2.ICMP_CODE];
      p += 2;
      if (health) {
        writeHealth(b, o, out, p);
        p += HEALTH_BYTES;
      }
      if (dns) p = writeDns(b, o, out, p, dnsNameBytes);
      messageRecords++;
    }
    if (messageStart >= 0) {
      out.writeUInt16BE(p - setStart, setStart + 2);
      this.#finishMessage(out, messageStart, p, exportTimeS, messageRecords);
      messageEnds.push(p);
    }
    return { bytes: out.subarray(0, p), messageEnds };
  }

  #nameOf(names: Map<number, Buffer>, interfaces: InterfaceNames, ifIndex: number): Buffer {
    let bytes = names.get(ifIndex);
    if (bytes === undefined) {
      bytes = encodeInterfaceName(interfaces.nameOf(ifIndex));
      names.set(ifIndex, bytes);
    }
    return bytes;
  }

  #finishMessage(out: Buffer, start: number, end: number, exportTimeS: number, records: number): void {
    this.#writeHeader(out, start, end - start, exportTimeS, this.#sequence);
    this.#sequence = (this.#sequence + records) >>> 0;
  }

  #writeHeader(out: Buffer, p: number, length: number, exportTimeS: number, sequence: number): void {
    out.writeUInt16BE(IPFIX_VERSION, p);
    out.writeUInt16BE(length, p + 2);
    out.writeUInt32BE(exportTimeS >>> 0, p + 4);
    out.writeUInt32BE(sequence, p + 8);
    out.writeUInt32BE(this.observationDomainId, p + 12);
  }
}
