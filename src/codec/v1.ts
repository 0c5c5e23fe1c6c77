/**
 * The reference's 36-byte packed record ("v1"): what netobserv-ebpf-agent v0.1.0-rc1's kernel
 * program wrote and its `ReadFrom` read. It carries no times, packets or interface, so the reader
 * supplies them as the reference's tracer did (read time, one packet, the traced interface).
 */
import { MalformedRecordError, TruncatedRecordError } from '../errors.ts';
import type { Flow } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { TWO_POW_32 } from '../model/u64.ts';
import { RecordBatch } from './record-batch.ts';
import type { DecodedRecords } from './record-stream.ts';
import { int32Words } from './row-words.ts';
import { V2_RECORD_BYTES, V2_ROW_WORDS } from './v2-layout.ts';

/** Size of one v1 record. */
export const V1_RECORD_BYTES = 36;

/** v1 field offsets (packed, little-endian). */
export const V1 = {
  ETH_PROTOCOL: 0,
  DIRECTION: 2,
  SRC_MAC: 3,
  DST_MAC: 9,
  SRC_ADDR: 15,
  DST_ADDR: 19,
  SRC_PORT: 23,
  DST_PORT: 25,
  TRANSPORT_PROTOCOL: 27,
  BYTES: 28,
} as const;

const LAYOUT = 'v1';
const ROW_WORDS = V2_ROW_WORDS;
/** Bytes 8..11 of an IPv4-mapped address (00 00 ff ff) read as a little-endian word. */
const IPV4_MAPPED_PREFIX_WORD = 0xffff0000 | 0;

/** What a v1 record does not carry and the reader supplies. */
export interface V1Context {
  /** Time the records were read, Unix ns: becomes each record's start and end. */
  readTimeNs: bigint;
  /** Interface index given to every record. */
  ifIndex?: number;
  /** Names for that index. */
  interfaces?: InterfaceNames;
  /** Offset of `buf[0]` in the whole input, so errors name the input's offset. */
  baseOffset?: number;
}

/** The error of a record whose direction byte is neither ingress nor egress (v1's one check). */
function badDirection(buf: Buffer, at: number, baseOffset: number): MalformedRecordError {
  const direction = buf[at + V1.DIRECTION];
  return new MalformedRecordError(
    baseOffset + at + V1.DIRECTION,
    'direction',
    `is ${direction}, not 0 or 1`,
    LAYOUT,
  );
}

const V1_RECORD_WORDS = V1_RECORD_BYTES / 4;

function byteSwap(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/**
 * Decodes the whole v1 records of `buf` into one v2 batch (one allocation for the batch, none per
 * record), up to the first malformed record: the records before it are returned with its error.
 * `buf` must hold whole records: a remainder raises `TruncatedRecordError` naming its offset.
 */
export function decodeV1Records(buf: Buffer, ctx: V1Context): DecodedRecords {
  const base = ctx.baseOffset ?? 0;
  const count = Math.floor(buf.length / V1_RECORD_BYTES);
  const rest = buf.length - count * V1_RECORD_BYTES;
  if (rest !== 0) {
    throw new TruncatedRecordError(base + count * V1_RECORD_BYTES, V1_RECORD_BYTES, rest, LAYOUT);
  }

  // Rows are written word by word into memory that is not zero-filled first: every word of a
  // returned row is set, and the rows after a malformed record are cut off.
  const out = Buffer.allocUnsafeSlow(count * V2_RECORD_BYTES);
  const words = new Int32Array(out.buffer, out.byteOffset, count * ROW_WORDS);
  const ifIndex = (ctx.ifIndex ?? 0) | 0;
  const timeLo = Number(ctx.readTimeNs & 0xffffffffn) | 0;
  const timeHi = Number(ctx.readTimeNs >> 32n) | 0;
  // v1 records are 9 words long; reading them as words and shifting beats 36 byte loads.
  const input = int32Words(buf, count * V1_RECORD_WORDS);
  let i = 0;
  for (let a = 0, w = 0; i < count; i++, a += V1_RECORD_WORDS, w += ROW_WORDS) {
    const i0 = input[a];
    if (((i0 >>> 16) & 0xff) > 1) break; // direction: neither ingress nor egress
    const i1 = input[a + 1];
    const i2 = input[a + 2];
    const i3 = input[a + 3];
    const i4 = input[a + 4];
    const i5 = input[a + 5];
    const i6 = input[a + 6];
    words[w] = (i0 & 0xffffff) | (i6 & 0xff000000); // etype, direction, protocol
    words[w + 1] = (i0 >>> 24) | (i1 << 8); // MAC bytes, wire order, as in v1
    words[w + 2] = (i1 >>> 24) | (i2 << 8);
    words[w + 3] = (i2 >>> 24) | (i3 << 8);
    words[w + 4] = 0;
    words[w + 5] = 0;
    words[w + 6] = IPV4_MAPPED_PREFIX_WORD;
    words[w + 7] = byteSwap((i3 >>> 24) | (i4 << 8)); // v1 holds the address value; rows hold network order
    words[w + 8] = 0;
    words[w + 9] = 0;
    words[w + 10] = IPV4_MAPPED_PREFIX_WORD;
    words[w + 11] = byteSwap((i4 >>> 24) | (i5 << 8));
    words[w + 12] = (i5 >>> 24) | ((i6 & 0xffffff) << 8); // both ports
    words[w + 13] = ifIndex;
    words[w + 14] = 0;
    words[w + 15] = 0;
    words[w + 16] = input[a + 7];
    words[w + 17] = input[a + 8];
    words[w + 18] = 1;
    words[w + 19] = 0;
    words[w + 20] = timeLo;
    words[w + 21] = timeHi;
    words[w + 22] = timeLo;
    words[w + 23] = timeHi;
    words.fill(0, w + 24, w + ROW_WORDS); // flags, DSCP, tunnel, crossed (the key's only), user section
  }
  return {
    batch: new RecordBatch(out.subarray(0, i * V2_RECORD_BYTES), i, ctx.interfaces ?? NO_INTERFACE_NAMES),
    error: i < count ? badDirection(buf, i * V1_RECORD_BYTES, base) : undefined,
  };
}

/**
 * Decodes every whole v1 record in `buf` into one v2 batch; any malformed record raises its
 * `MalformedRecordError`, a remainder `TruncatedRecordError`.
 */
export function decodeV1Batch(buf: Buffer, ctx: V1Context): RecordBatch {
  const { batch, error } = decodeV1Records(buf, ctx);
  if (error !== undefined) throw error;
  return batch;
}

/** Decodes the one v1 record at `offset` of `buf` (the reference's `ReadFrom`). */
export function decodeV1(buf: Buffer, offset: number, ctx: V1Context): Flow {
  if (buf.length - offset < V1_RECORD_BYTES) {
    throw new TruncatedRecordError(
      (ctx.baseOffset ?? 0) + offset,
      V1_RECORD_BYTES,
      Math.max(0, buf.length - offset),
      LAYOUT,
    );
  }
  return decodeV1Batch(buf.subarray(offset, offset + V1_RECORD_BYTES), {
    ...ctx,
    baseOffset: (ctx.baseOffset ?? 0) + offset,
  }).flow(0);
}

/**
 * Encodes `flow` as a v1 record (for tests and benchmarks). v1 holds only IPv4 and 64-bit bytes;
 * times, packets, interface and flowtap's extensions are not part of it.
 */
export function encodeV1(flow: Flow, out: Buffer = Buffer.alloc(V1_RECORD_BYTES), offset = 0): Buffer {
  out.writeUInt16LE(flow.etype, offset + V1.ETH_PROTOCOL);
  out[offset + V1.DIRECTION] = flow.direction;
  out.set(flow.srcMac.subarray(0, 6), offset + V1.SRC_MAC);
  out.set(flow.dstMac.subarray(0, 6), offset + V1.DST_MAC);
  const v4 = (addr: Uint8Array) => ((addr[12] << 24) | (addr[13] << 16) | (addr[14] << 8) | addr[15]) >>> 0;
  out.writeUInt32LE(v4(flow.srcAddr), offset + V1.SRC_ADDR);
  out.writeUInt32LE(v4(flow.dstAddr), offset + V1.DST_ADDR);
  out.writeUInt16LE(flow.srcPort, offset + V1.SRC_PORT);
  out.writeUInt16LE(flow.dstPort, offset + V1.DST_PORT);
  out[offset + V1.TRANSPORT_PROTOCOL] = flow.proto;
  out.writeUInt32LE((flow.bytes % TWO_POW_32) >>> 0, offset + V1.BYTES);
  out.writeUInt32LE(Math.floor(flow.bytes / TWO_POW_32) >>> 0, offset + V1.BYTES + 4);
  return out;
}
