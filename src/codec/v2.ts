/**
 * flowtap's own record layout ("v2", bpf/flow_record.h) read and written in batches. A v2 buffer
 * already is a `RecordBatch`: decoding validates it and wraps it without copying.
 */
import { MalformedRecordError, TruncatedRecordError } from '../errors.ts';
import type { Flow } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { isIpv4Mapped } from '../model/ip.ts';
import { EtherType } from '../model/names.ts';
import { RecordBatch, rowHasDns, writeFlowRow } from './record-batch.ts';
import type { DecodedRecords } from './record-stream.ts';
import {
  V2,
  V2_DNS_NAME_MAX,
  V2_EVENT_BYTES,
  V2_KEY_BYTES,
  V2_MAX_CROSSED,
  V2_RECORD_BYTES,
  V2_ROW_WORDS,
} from './v2-layout.ts';

const LAYOUT = 'v2';

/** Options of {@link decodeV2Batch}. */
export interface V2Context {
  /** Names for the rows' interface indexes. */
  interfaces?: InterfaceNames;
  /** Offset of `buf[0]` in the whole input, so errors name the input's offset. */
  baseOffset?: number;
}

function malformed(base: number, at: number, field: string, detail: string): MalformedRecordError {
  return new MalformedRecordError(base + at, field, detail, LAYOUT);
}

const ROW_WORDS = V2_ROW_WORDS;

/**
 * Byte ranges [from, to) every v2 row has zero: padding, and the dedup MACs, which only the
 * kernel's map value uses (the drain moves them into the key).
 */
const ZERO_FIELDS: ReadonlyArray<readonly [string, number, number]> = [
  ['key_pad', V2.KEY_PAD, V2_KEY_BYTES],
  ['metrics_pad0', V2.METRICS_PAD0, V2.METRICS_PAD0 + 1],
  ['dedup_src_mac', V2.DEDUP_SRC_MAC, V2.DEDUP_DST_MAC],
  ['dedup_dst_mac', V2.DEDUP_DST_MAC, V2.METRICS_PAD],
  ['metrics_pad', V2.METRICS_PAD, V2_EVENT_BYTES],
  ['user_pad', V2.USER_PAD, V2.RTT_MIN_NS],
  ['health_pad', V2.HEALTH_PAD, V2.DNS_LATENCY_NS],
  ['dns_pad', V2.DNS_PAD, V2.DNS_NAME],
];
const W_KEY_PAD = V2.KEY_PAD >> 2;
const W_CROSSED_COUNT = V2.CROSSED_COUNT >> 2;
const W_DEDUP_MACS = V2.DEDUP_SRC_MAC >> 2;
const W_METRICS_PAD = V2.METRICS_PAD >> 2;
const W_USER_PAD = V2.USER_PAD >> 2;
const W_HEALTH_PAD = V2.HEALTH_PAD >> 2;
/** dns_name_len (bits 0..7), dns_errno, dns_record_flags, dns_pad (24..31). */
const W_DNS_NAME_LEN_PAD = V2.DNS_NAME_LEN >> 2;
const W_PACKETS = V2.PACKETS >> 2;
const W_FIRST = V2.FIRST_SEEN_NS >> 2;
const W_LAST = V2.LAST_SEEN_NS >> 2;
const W_SRC_ADDR = V2.SRC_ADDR >> 2;
const W_DST_ADDR = V2.DST_ADDR >> 2;
/** Bytes 8..11 of an IPv4-mapped address (00 00 ff ff) read as a little-endian word. */
const IPV4_MAPPED_PREFIX_WORD = 0xffff0000 | 0;
const ETH_IPV4_WORD_LOW = EtherType.IPV4;

/** The error naming the first field of the row at byte `o` that v2 does not allow; undefined when the row is good. */
function rowError(buf: Buffer, o: number, base: number): MalformedRecordError | undefined {
  const direction = buf[o + V2.DIRECTION];
  if (direction > 1) return malformed(base, o + V2.DIRECTION, 'direction', `is ${direction}, not 0 or 1`);
  for (const [field, from, to] of ZERO_FIELDS) {
    for (let p = from; p < to; p++) {
      if (buf[p + o] !== 0) return malformed(base, o + p, field, 'is not zero');
    }
  }
  const crossed = buf[o + V2.CROSSED_COUNT];
  if (crossed > V2_MAX_CROSSED) {
    return malformed(
      base,
      o + V2.CROSSED_COUNT,
      'crossed_count',
      `is ${crossed}, more than ${V2_MAX_CROSSED}`,
    );
  }
  const nameLength = buf[o + V2.DNS_NAME_LEN];
  if (nameLength > V2_DNS_NAME_MAX) {
    return malformed(
      base,
      o + V2.DNS_NAME_LEN,
      'dns_name_len',
      `is ${nameLength}, more than ${V2_DNS_NAME_MAX}`,
    );
  }
  const noPackets = buf.readUInt32LE(o + V2.PACKETS) === 0 && buf.readUInt32LE(o + V2.PACKETS + 4) === 0;
  if (noPackets && !rowHasDns(buf, o)) {
    return malformed(
      base,
      o + V2.PACKETS,
      'packets',
      'is 0: a record counts at least one packet, unless it carries DNS only (an unanswered query)',
    );
  }
  if (buf.readBigUInt64LE(o + V2.LAST_SEEN_NS) < buf.readBigUInt64LE(o + V2.FIRST_SEEN_NS)) {
    return malformed(base, o + V2.LAST_SEEN_NS, 'last_seen_ns', 'is before first_seen_ns');
  }
  if (buf.readUInt16LE(o + V2.ETH_PROTOCOL) === EtherType.IPV4) {
    if (!isIpv4Mapped(buf, o + V2.SRC_ADDR))
      return malformed(base, o + V2.SRC_ADDR, 'src_addr', 'is not IPv4-mapped in an IPv4 flow');
    if (!isIpv4Mapped(buf, o + V2.DST_ADDR))
      return malformed(base, o + V2.DST_ADDR, 'dst_addr', 'is not IPv4-mapped in an IPv4 flow');
  }
  return undefined;
}

/** True when row `i` passes every check of `rowError`, tested word by word (the fast path). */
function rowLooksValid(w: Int32Array, i: number): boolean {
  const r = i * ROW_WORDS;
  const w0 = w[r];
  if (((w0 >>> 16) & 0xff) > 1) return false; // direction
  if (w[r + W_KEY_PAD] >>> 16 !== 0) return false; // key_pad
  const countWord = w[r + W_CROSSED_COUNT];
  if (countWord >>> 24 !== 0 || ((countWord >>> 16) & 0xff) > V2_MAX_CROSSED) return false; // pad0, crossed_count
  if ((w[r + W_DEDUP_MACS] | w[r + W_DEDUP_MACS + 1] | w[r + W_DEDUP_MACS + 2]) !== 0) return false;
  if (w[r + W_METRICS_PAD] !== 0 || w[r + W_USER_PAD] !== 0 || w[r + W_HEALTH_PAD] !== 0) return false; // pads
  const dnsWord = w[r + W_DNS_NAME_LEN_PAD];
  if (dnsWord >>> 24 !== 0 || (dnsWord & 0xff) > V2_DNS_NAME_MAX) return false; // dns_pad, dns_name_len
  if (w[r + W_PACKETS] === 0 && w[r + W_PACKETS + 1] === 0) return false; // packets (DNS-only rows: rowError)
  const firstHi = w[r + W_FIRST + 1] >>> 0;
  const lastHi = w[r + W_LAST + 1] >>> 0;
  if (lastHi < firstHi || (lastHi === firstHi && w[r + W_LAST] >>> 0 < w[r + W_FIRST] >>> 0)) return false;
  if ((w0 & 0xffff) === ETH_IPV4_WORD_LOW) {
    const s = r + W_SRC_ADDR;
    if (w[s] !== 0 || w[s + 1] !== 0 || w[s + 2] !== IPV4_MAPPED_PREFIX_WORD) return false;
    const d = r + W_DST_ADDR;
    if (w[d] !== 0 || w[d + 1] !== 0 || w[d + 2] !== IPV4_MAPPED_PREFIX_WORD) return false;
  }
  return true;
}

/**
 * Validates the rows of `buf` up to the first malformed one and wraps the good ones before it as
 * a batch, without copying; the malformed row's error comes with them. `buf` must hold whole
 * records: a remainder raises `TruncatedRecordError` naming its offset.
 */
export function decodeV2Records(buf: Buffer, ctx: V2Context = {}): DecodedRecords {
  const base = ctx.baseOffset ?? 0;
  const count = Math.floor(buf.length / V2_RECORD_BYTES);
  const rest = buf.length - count * V2_RECORD_BYTES;
  if (rest !== 0)
    throw new TruncatedRecordError(base + count * V2_RECORD_BYTES, V2_RECORD_BYTES, rest, LAYOUT);
  const aligned = (buf.byteOffset & 3) === 0;
  // Unaligned input (a slice of a concatenated chunk) skips the word test: one copy would cost more.
  const words = aligned ? new Int32Array(buf.buffer, buf.byteOffset, count * ROW_WORDS) : undefined;
  let good = 0;
  let error: MalformedRecordError | undefined;
  for (; good < count; good++) {
    // The byte-wise check runs only to name the offending field.
    if (words !== undefined && rowLooksValid(words, good)) continue;
    error = rowError(buf, good * V2_RECORD_BYTES, base);
    if (error !== undefined) break;
  }
  const rows = good === count ? buf : buf.subarray(0, good * V2_RECORD_BYTES);
  return { batch: new RecordBatch(rows, good, ctx.interfaces ?? NO_INTERFACE_NAMES), error };
}

/**
 * Validates every row of `buf` and wraps it as a batch without copying; any malformed row raises
 * its `MalformedRecordError`, a remainder `TruncatedRecordError`.
 */
export function decodeV2Batch(buf: Buffer, ctx: V2Context = {}): RecordBatch {
  const { batch, error } = decodeV2Records(buf, ctx);
  if (error !== undefined) throw error;
  return batch;
}

/** Decodes the one v2 record at `offset` of `buf`. */
export function decodeV2(buf: Buffer, offset: number, ctx: V2Context = {}): Flow {
  const base = ctx.baseOffset ?? 0;
  if (buf.length - offset < V2_RECORD_BYTES) {
    throw new TruncatedRecordError(base + offset, V2_RECORD_BYTES, Math.max(0, buf.length - offset), LAYOUT);
  }
  return decodeV2Batch(buf.subarray(offset, offset + V2_RECORD_BYTES), {
    ...ctx,
    baseOffset: base + offset,
  }).flow(0);
}

/** Encodes flows as consecutive v2 records. */
export function encodeV2(flows: readonly Flow[]): Buffer {
  const out = Buffer.alloc(flows.length * V2_RECORD_BYTES);
  for (let i = 0; i < flows.length; i++) writeFlowRow(out, i * V2_RECORD_BYTES, flows[i]);
  return out;
}
