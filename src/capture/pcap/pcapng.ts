/**
 * pcapng files: blocks framed by a leading and a trailing length. Section Header Blocks set the
 * byte order (several sections may differ); Interface Description Blocks declare interfaces with
 * their own link type, snap length, `if_name`, `if_tsresol` and `if_tsoffset`; Enhanced, Simple
 * and (obsolete) Packet Blocks carry packets; every other block is passed over and counted.
 * A length that breaks the framing ends the read with a `CaptureFormatError`; a packet block
 * that is inconsistent inside sound framing is a counted skip.
 *
 * Interface indexes are numbered across the whole file in declaration order, so interface 0 of
 * a second section does not merge with interface 0 of the first; in a one-section file they are
 * the pcapng interface ids.
 */
import { CaptureFormatError } from '../../errors.ts';
import { Direction } from '../../model/names.ts';
import { RECORDED_DIRECTION_UNKNOWN } from '../packet/link-layers.ts';
import { readU16, readU32 } from './byte-order.ts';
import { MAX_CAPTURED_BYTES } from './classic.ts';
import { MAX_CAPTURE_INTERFACES, type PacketSink, SkipReason } from './packet-sink.ts';
import { TickResolution } from './unix-time.ts';

/** Block type of a Section Header Block (the same in both byte orders). */
export const SHB_TYPE = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const IDB_TYPE = 1;
const OPB_TYPE = 2;
const SPB_TYPE = 3;
const EPB_TYPE = 6;
const MIN_BLOCK_BYTES = 12;
const MIN_SHB_BYTES = 28;
const MIN_IDB_BYTES = 20;
const MIN_EPB_BYTES = 32;
const MIN_SPB_BYTES = 16;
/** Largest block read (Wireshark's limit too): bounds the memory one block can take. */
export const MAX_BLOCK_BYTES = 16 * 1024 * 1024;

const OPT_END = 0;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
const OPT_EPB_FLAGS = 2;
const DEFAULT_TSRESOL = 6;

function padded(n: number): number {
  return (n + 3) & ~3;
}

/** Cuts a pcapng byte stream into packets for a {@link PacketSink}. */
export class PcapngFramer {
  /** Bytes the next block needs from where consuming stopped. */
  needBytes = MIN_BLOCK_BYTES;
  #le = true;
  /** Per interface of the current section: flowtap interface index, snap length, clock. */
  #ifIndex: number[] = [];
  #snapBytes: number[] = [];
  #resolution: TickResolution[] = [];
  #offsetSeconds: number[] = [];
  readonly #resolutions = new Map<number, TickResolution>();
  /** Time of the last timed packet: Simple Packet Blocks carry none and take this one. */
  #lastSeconds = 0;
  #lastNanos = 0;

  constructor(private readonly sink: PacketSink) {
    sink.stats.format = 'pcapng';
  }

  /**
   * Consumes the whole blocks in `data[pos, end)` (`baseOffset` is the stream offset of `data[0]`)
   * and returns where it stopped; `needBytes` then says how many bytes the next block needs.
   */
  consume(data: Buffer, pos: number, end: number, baseOffset: number): number {
    let at = pos;
    for (;;) {
      if (end - at < MIN_BLOCK_BYTES) {
        this.needBytes = MIN_BLOCK_BYTES;
        return at;
      }
      const typeLe = readU32(data, at, true);
      let le = this.#le;
      if (typeLe === SHB_TYPE) {
        const bom = data.readUInt32LE(at + 8);
        if (bom === BYTE_ORDER_MAGIC) le = true;
        else if (bom === BYTE_ORDER_MAGIC_SWAPPED) le = false;
        else throw this.#error(baseOffset + at + 8, `section header byte-order magic 0x${bom.toString(16)}`);
      }
      const length = readU32(data, at + 4, le);
      if (length < MIN_BLOCK_BYTES || length % 4 !== 0 || length > MAX_BLOCK_BYTES) {
        throw this.#error(
          baseOffset + at + 4,
          `block length ${length} (must be a multiple of 4 from ${MIN_BLOCK_BYTES} to ${MAX_BLOCK_BYTES})`,
        );
      }
      if (end - at < length) {
        this.needBytes = length;
        return at;
      }
      const trailer = readU32(data, at + length - 4, le);
      if (trailer !== length) {
        throw this.#error(
          baseOffset + at + length - 4,
          `trailing block length ${trailer} differs from ${length}`,
        );
      }
      const type = le ? typeLe : readU32(data, at, false);
      if (type === EPB_TYPE || type === OPB_TYPE) this.#packetBlock(data, at, length, type === EPB_TYPE);
      else if (type === SPB_TYPE) this.#simplePacketBlock(data, at, length);
      else if (type === IDB_TYPE) this.#interfaceBlock(data, at, length, baseOffset);
      else if (type === SHB_TYPE) this.#sectionBlock(data, at, length, le, baseOffset);
      else this.sink.stats.otherBlocks++;
      at += length;
    }
  }

  #u32(data: Buffer, at: number): number {
    return readU32(data, at, this.#le);
  }

  #u16(data: Buffer, at: number): number {
    return readU16(data, at, this.#le);
  }

  #error(offset: number, detail: string): CaptureFormatError {
    return new CaptureFormatError(offset, 'pcapng', detail);
  }

  #sectionBlock(data: Buffer, at: number, length: number, le: boolean, baseOffset: number): void {
    if (length < MIN_SHB_BYTES)
      throw this.#error(baseOffset + at + 4, `section header block of ${length} bytes`);
    this.#le = le;
    const major = this.#u16(data, at + 12);
    if (major !== 1) throw this.#error(baseOffset + at + 12, `unsupported pcapng major version ${major}`);
    // Interface ids are per section: a new section starts with none.
    this.#ifIndex = [];
    this.#snapBytes = [];
    this.#resolution = [];
    this.#offsetSeconds = [];
  }

  #interfaceBlock(data: Buffer, at: number, length: number, baseOffset: number): void {
    if (length < MIN_IDB_BYTES) throw this.#error(baseOffset + at + 4, `interface block of ${length} bytes`);
    if (this.sink.interfaceCount >= MAX_CAPTURE_INTERFACES) {
      throw this.#error(baseOffset + at, `more than ${MAX_CAPTURE_INTERFACES} interfaces declared`);
    }
    const linkType = this.#u16(data, at + 8);
    const snapBytes = this.#u32(data, at + 12);
    let name = '';
    let tsresol = DEFAULT_TSRESOL;
    let offsetSeconds = 0;
    const optionsEnd = at + length - 4;
    for (let o = at + 16; o + 4 <= optionsEnd; ) {
      const code = this.#u16(data, o);
      const valueBytes = this.#u16(data, o + 2);
      if (code === OPT_END) break;
      if (o + 4 + valueBytes > optionsEnd) {
        throw this.#error(
          baseOffset + o + 2,
          `interface option ${code} of ${valueBytes} bytes runs past its block`,
        );
      }
      if (code === OPT_IF_NAME) name = data.toString('utf8', o + 4, o + 4 + valueBytes).replace(/\0+$/, '');
      else if (code === OPT_IF_TSRESOL && valueBytes >= 1) tsresol = data[o + 4];
      else if (code === OPT_IF_TSOFFSET && valueBytes >= 8) {
        offsetSeconds = Number(this.#le ? data.readBigInt64LE(o + 4) : data.readBigInt64BE(o + 4));
      }
      o += 4 + padded(valueBytes);
    }
    let resolution = this.#resolutions.get(tsresol);
    if (resolution === undefined) {
      resolution = new TickResolution(tsresol);
      this.#resolutions.set(tsresol, resolution);
    }
    // Unnamed interfaces are numbered within their input, so rotated files name them alike.
    const index = this.sink.interfacesDeclaredInInput;
    this.#ifIndex.push(this.sink.addInterface(linkType, name === '' ? `if${index}` : name));
    this.#snapBytes.push(snapBytes);
    this.#resolution.push(resolution);
    this.#offsetSeconds.push(offsetSeconds);
  }

  /** Enhanced (`enhanced`) or obsolete Packet Block: same layout but a 16-bit interface id. */
  #packetBlock(data: Buffer, at: number, length: number, enhanced: boolean): void {
    const sink = this.sink;
    if (length < MIN_EPB_BYTES) {
      sink.skip(SkipReason.BAD_LENGTH);
      return;
    }
    const id = enhanced ? this.#u32(data, at + 8) : this.#u16(data, at + 8);
    if (id >= this.#ifIndex.length) {
      sink.skip(SkipReason.UNKNOWN_INTERFACE);
      return;
    }
    const captured = this.#u32(data, at + 20);
    const wire = this.#u32(data, at + 24);
    // Above the interface's snap length but inside its block: read, as tshark reads it.
    if (captured > length - MIN_EPB_BYTES || captured > wire || captured > MAX_CAPTURED_BYTES) {
      sink.skip(SkipReason.BAD_LENGTH);
      return;
    }
    const resolution = this.#resolution[id];
    resolution.convert(this.#u32(data, at + 12), this.#u32(data, at + 16));
    const seconds = resolution.seconds + this.#offsetSeconds[id];
    this.#lastSeconds = seconds;
    this.#lastNanos = resolution.nanos;
    const optionsAt = at + 28 + padded(captured);
    const direction =
      optionsAt + 4 <= at + length - 4
        ? this.#recordedDirection(data, optionsAt, at + length - 4)
        : RECORDED_DIRECTION_UNKNOWN;
    sink.packet(data, at + 28, captured, wire, this.#ifIndex[id], seconds, resolution.nanos, direction);
  }

  #simplePacketBlock(data: Buffer, at: number, length: number): void {
    const sink = this.sink;
    if (this.#ifIndex.length === 0) {
      sink.skip(SkipReason.UNKNOWN_INTERFACE);
      return;
    }
    const wire = this.#u32(data, at + 8);
    const snap = this.#snapBytes[0];
    let captured = Math.min(wire, length - MIN_SPB_BYTES);
    if (snap !== 0 && captured > snap) captured = snap;
    if (captured > MAX_CAPTURED_BYTES) {
      sink.skip(SkipReason.BAD_LENGTH);
      return;
    }
    sink.packet(
      data,
      at + 12,
      captured,
      wire,
      this.#ifIndex[0],
      this.#lastSeconds,
      this.#lastNanos,
      RECORDED_DIRECTION_UNKNOWN,
    );
  }

  /** The direction bits of `epb_flags`, when present and well formed. */
  #recordedDirection(data: Buffer, from: number, to: number): number {
    for (let o = from; o + 4 <= to; ) {
      const code = this.#u16(data, o);
      const valueBytes = this.#u16(data, o + 2);
      if (code === OPT_END || o + 4 + valueBytes > to) break;
      if (code === OPT_EPB_FLAGS && valueBytes === 4) {
        const bits = this.#u32(data, o + 4) & 3;
        if (bits === 1) return Direction.INGRESS;
        if (bits === 2) return Direction.EGRESS;
        return RECORDED_DIRECTION_UNKNOWN;
      }
      o += 4 + padded(valueBytes);
    }
    return RECORDED_DIRECTION_UNKNOWN;
  }
}
