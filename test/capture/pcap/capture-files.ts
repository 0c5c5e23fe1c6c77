/**
 * Writers of small pcap and pcapng files for tests, fuzzing and benchmarks, with every knob the
 * reader must honour: byte order, timestamp resolution and offset, several interfaces and
 * sections, simple and unknown blocks, packet flags.
 */

/** One packet of a classic pcap file. */
export interface ClassicPacket {
  frame: Uint8Array;
  seconds: number;
  /** Microseconds, or nanoseconds in a nanosecond file. */
  fraction: number;
  /** Original length (default: the frame's length). */
  wireBytes?: number;
  /** Captured length written in the header (default: the frame's length). */
  capturedBytes?: number;
}

/** Options of {@link classicPcap}. */
export interface ClassicOptions {
  linkType?: number;
  nanos?: boolean;
  bigEndian?: boolean;
  snapBytes?: number;
}

/** A classic pcap file of `packets`. */
export function classicPcap(packets: readonly ClassicPacket[], options: ClassicOptions = {}): Buffer {
  const be = options.bigEndian ?? false;
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  const magic = options.nanos ? 0xa1b23c4d : 0xa1b2c3d4;
  if (be) header.writeUInt32BE(magic, 0);
  else header.writeUInt32LE(magic, 0);
  const u16 = (b: Buffer, v: number, at: number) => (be ? b.writeUInt16BE(v, at) : b.writeUInt16LE(v, at));
  const u32 = (b: Buffer, v: number, at: number) => (be ? b.writeUInt32BE(v, at) : b.writeUInt32LE(v, at));
  u16(header, 2, 4);
  u16(header, 4, 6);
  u32(header, options.snapBytes ?? 262144, 16);
  u32(header, options.linkType ?? 1, 20);
  parts.push(header);
  for (const p of packets) {
    const record = Buffer.alloc(16);
    u32(record, p.seconds, 0);
    u32(record, p.fraction, 4);
    u32(record, p.capturedBytes ?? p.frame.length, 8);
    u32(record, p.wireBytes ?? p.frame.length, 12);
    parts.push(record, Buffer.from(p.frame));
  }
  return Buffer.concat(parts);
}

/** Options of one pcapng interface. */
export interface PcapngInterface {
  linkType: number;
  name?: string;
  /** Raw `if_tsresol` byte (default: none, i.e. microseconds). */
  tsresol?: number;
  /** `if_tsoffset` seconds. */
  tsoffsetSeconds?: bigint;
  snapBytes?: number;
}

/** Builds a pcapng file block by block. */
export class PcapngWriter {
  readonly #blocks: Buffer[] = [];
  #be = false;

  /** Starts a section in the given byte order. */
  section(bigEndian = false): this {
    this.#be = bigEndian;
    const body = Buffer.alloc(16);
    this.#u32(body, 0x1a2b3c4d, 0);
    this.#u16(body, 1, 4);
    this.#u16(body, 0, 6);
    body.writeInt32LE(-1, 8);
    body.writeInt32LE(-1, 12);
    return this.block(0x0a0d0d0a, body);
  }

  /** Declares an interface of the current section. */
  iface(i: PcapngInterface): this {
    const head = Buffer.alloc(8);
    this.#u16(head, i.linkType, 0);
    this.#u32(head, i.snapBytes ?? 0, 4);
    const options: Buffer[] = [];
    if (i.name !== undefined) options.push(this.#option(2, Buffer.from(i.name, 'utf8')));
    if (i.tsresol !== undefined) options.push(this.#option(9, Buffer.from([i.tsresol])));
    if (i.tsoffsetSeconds !== undefined) {
      const v = Buffer.alloc(8);
      if (this.#be) v.writeBigInt64BE(i.tsoffsetSeconds);
      else v.writeBigInt64LE(i.tsoffsetSeconds);
      options.push(this.#option(14, v));
    }
    if (options.length > 0) options.push(Buffer.alloc(4));
    return this.block(1, Buffer.concat([head, ...options]));
  }

  /** An Enhanced Packet Block; `ticks` in the interface's resolution; `flags` adds `epb_flags`. */
  epb(
    ifId: number,
    ticks: bigint,
    frame: Uint8Array,
    opts: { wireBytes?: number; flags?: number } = {},
  ): this {
    const head = Buffer.alloc(20);
    this.#u32(head, ifId, 0);
    this.#u32(head, Number(ticks >> 32n), 4);
    this.#u32(head, Number(ticks & 0xffffffffn), 8);
    this.#u32(head, frame.length, 12);
    this.#u32(head, opts.wireBytes ?? frame.length, 16);
    const parts = [head, pad(Buffer.from(frame))];
    if (opts.flags !== undefined) {
      const v = Buffer.alloc(4);
      this.#u32(v, opts.flags, 0);
      parts.push(this.#option(2, v), Buffer.alloc(4));
    }
    return this.block(6, Buffer.concat(parts));
  }

  /** A Simple Packet Block (interface 0, no timestamp). */
  spb(frame: Uint8Array, wireBytes = frame.length): this {
    const head = Buffer.alloc(4);
    this.#u32(head, wireBytes, 0);
    return this.block(3, Buffer.concat([head, pad(Buffer.from(frame))]));
  }

  /** Any block: type and body (padded to 4 bytes). */
  block(type: number, body: Buffer): this {
    const padded = pad(body);
    const b = Buffer.alloc(12 + padded.length);
    this.#u32(b, type, 0);
    this.#u32(b, b.length, 4);
    padded.copy(b, 8);
    this.#u32(b, b.length, b.length - 4);
    this.#blocks.push(b);
    return this;
  }

  /** The file so far. */
  toBuffer(): Buffer {
    return Buffer.concat(this.#blocks);
  }

  #option(code: number, value: Buffer): Buffer {
    const head = Buffer.alloc(4);
    this.#u16(head, code, 0);
    this.#u16(head, value.length, 2);
    return Buffer.concat([head, pad(value)]);
  }

  #u16(b: Buffer, v: number, at: number): void {
    if (this.#be) b.writeUInt16BE(v, at);
    else b.writeUInt16LE(v, at);
  }

  #u32(b: Buffer, v: number, at: number): void {
    if (this.#be) b.writeUInt32BE(v >>> 0, at);
    else b.writeUInt32LE(v >>> 0, at);
  }
}

function pad(b: Buffer): Buffer {
  const rest = b.length % 4;
  return rest === 0 ? b : Buffer.concat([b, Buffer.alloc(4 - rest)]);
}
