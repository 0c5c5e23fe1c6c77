/**
 * The reference's 36-byte packed record ("v1"): what netobserv-ebpf-agent v0.1.0-rc1's kernel
 * program wrote and its `ReadFrom` read. It carries no times, packets or interface, so the reader
 * supplies them as the reference's tracer did (read time, one packet, the traced interface).
 */
import { MalformedRecordError, TruncatedRecordError } from '../errors.ts';
import type { Flow } from '../model/flow.ts';
import { type InterfaceNames, NO_INTERFACE_NAMES } from '../model/interfaces.ts';
import { EtherType } from '../model/names.ts';
import { RecordBatch } from './record-batch.ts';
import { V2, V2_RECORD_BYTES } from './v2-layout.ts';

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
const TWO_POW_32 = 2 ** 32;

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

function checkRecord(buf: Buffer, at: number, baseOffset: number): void {
  const direction = buf[at + V1.DIRECTION];
  if (direction > 1) {
    throw new MalformedRecordError(
      baseOffset + at + V1.DIRECTION,
      'direction',
      `is ${direction}, not 0 or 1`,
      LAYOUT,
    );
  }
}

/**
 * Decodes every whole v1 record in `buf` into one v2 batch (one allocation for the batch, none per
 * record). `buf` must hold whole records: a remainder raises `TruncatedRecordError` naming its offset.
 */
export function decodeV1Batch(buf: Buffer, ctx: V1Context): RecordBatch {
  const base = ctx.baseOffset ?? 0;
  const count = Math.floor(buf.length / V1_RECORD_BYTES);
  const rest = buf.length - count * V1_RECORD_BYTES;
  if (rest !== 0) {
    throw new TruncatedRecordError(base + count * V1_RECORD_BYTES, V1_RECORD_BYTES, rest, LAYOUT);
  }
  for (let i = 0, at = 0; i < count; i++, at += V1_RECORD_BYTES) checkRecord(buf, at, base);

  const out = Buffer.alloc(count * V2_RECORD_BYTES);
  const ifIndex = (ctx.ifIndex ?? 0) >>> 0;
  const timeLo = Number(ctx.readTimeNs & 0xffffffffn);
  const timeHi = Number(ctx.readTimeNs >> 32n);
  for (let i = 0, at = 0, o = 0; i < count; i++, at += V1_RECORD_BYTES, o += V2_RECORD_BYTES) {
    out[o + V2.ETH_PROTOCOL] = buf[at + V1.ETH_PROTOCOL];
    out[o + V2.ETH_PROTOCOL + 1] = buf[at + V1.ETH_PROTOCOL + 1];
    out[o + V2.DIRECTION] = buf[at + V1.DIRECTION];
    out[o + V2.TRANSPORT_PROTOCOL] = buf[at + V1.TRANSPORT_PROTOCOL];
    buf.copy(out, o + V2.SRC_MAC, at + V1.SRC_MAC, at + V1.SRC_MAC + 12); // both MACs, same order
    // v1 addresses are u32 values little-endian; stored addresses are network order, mapped.
    out[o + V2.SRC_ADDR + 10] = 0xff;
    out[o + V2.SRC_ADDR + 11] = 0xff;
    out[o + V2.SRC_ADDR + 12] = buf[at + V1.SRC_ADDR + 3];
    out[o + V2.SRC_ADDR + 13] = buf[at + V1.SRC_ADDR + 2];
    out[o + V2.SRC_ADDR + 14] = buf[at + V1.SRC_ADDR + 1];
    out[o + V2.SRC_ADDR + 15] = buf[at + V1.SRC_ADDR];
    out[o + V2.DST_ADDR + 10] = 0xff;
    out[o + V2.DST_ADDR + 11] = 0xff;
    out[o + V2.DST_ADDR + 12] = buf[at + V1.DST_ADDR + 3];
    out[o + V2.DST_ADDR + 13] = buf[at + V1.DST_ADDR + 2];
    out[o + V2.DST_ADDR + 14] = buf[at + V1.DST_ADDR + 1];
    out[o + V2.DST_ADDR + 15] = buf[at + V1.DST_ADDR];
    out[o + V2.SRC_PORT] = buf[at + V1.SRC_PORT];
    out[o + V2.SRC_PORT + 1] = buf[at + V1.SRC_PORT + 1];
    out[o + V2.DST_PORT] = buf[at + V1.DST_PORT];
    out[o + V2.DST_PORT + 1] = buf[at + V1.DST_PORT + 1];
    out.writeUInt32LE(ifIndex, o + V2.IF_INDEX);
    buf.copy(out, o + V2.BYTES, at + V1.BYTES, at + V1.BYTES + 8);
    out[o + V2.PACKETS] = 1;
    out.writeUInt32LE(timeLo, o + V2.FIRST_SEEN_NS);
    out.writeUInt32LE(timeHi, o + V2.FIRST_SEEN_NS + 4);
    out.writeUInt32LE(timeLo, o + V2.LAST_SEEN_NS);
    out.writeUInt32LE(timeHi, o + V2.LAST_SEEN_NS + 4);
  }
  return new RecordBatch(out, count, ctx.interfaces ?? NO_INTERFACE_NAMES);
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

/** True when v1 can carry this flow's key unchanged (IPv4 or non-IP). */
export function fitsV1(flow: Flow): boolean {
  return flow.etype !== EtherType.IPV6;
}
