/**
 * Classic libpcap files: a 24-byte file header (magic in either byte order, microsecond or
 * nanosecond timestamps), then 16-byte record headers each followed by the captured bytes.
 * Records have no trailer, so a record length that cannot be right ends the read with a
 * `CaptureFormatError`; one that is merely inconsistent is a counted skip. The header's snap
 * length is not enforced: a longer record that lies whole in the file is read, as tshark does.
 */
import { CaptureFormatError } from '../../errors.ts';
import { RECORDED_DIRECTION_UNKNOWN } from '../packet/link-layers.ts';
import { readU32 } from './byte-order.ts';
import { type PacketSink, SkipReason } from './packet-sink.ts';

/** Size of the classic pcap file header. */
export const PCAP_FILE_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
/** Largest captured length libpcap writes (MAXIMUM_SNAPLEN); anything above is damage. */
export const MAX_CAPTURED_BYTES = 262_144;

/** Magic numbers as read little-endian from the first four bytes. */
export const PcapMagic = {
  MICROS_LE: 0xa1b2c3d4,
  MICROS_BE: 0xd4c3b2a1,
  NANOS_LE: 0xa1b23c4d,
  NANOS_BE: 0x4d3cb2a1,
} as const;

/** True when the first four bytes (read little-endian) are a classic pcap magic number. */
export function isClassicPcapMagic(magicLe: number): boolean {
  return (
    magicLe === PcapMagic.MICROS_LE ||
    magicLe === PcapMagic.MICROS_BE ||
    magicLe === PcapMagic.NANOS_LE ||
    magicLe === PcapMagic.NANOS_BE
  );
}

/** Cuts a classic pcap byte stream into packets for a {@link PacketSink}. */
export class ClassicPcapFramer {
  /** Bytes the next unit (file header, record header, record) needs from where consuming stopped. */
  needBytes = PCAP_FILE_HEADER_BYTES;
  #headerRead = false;
  #littleEndian = true;
  #nanosPerTick = 1000;

  constructor(private readonly sink: PacketSink) {}

  /**
   * Consumes the whole units in `data[pos, end)` (`baseOffset` is the stream offset of `data[0]`)
   * and returns where it stopped; `needBytes` then says how many bytes the next unit needs.
   */
  consume(data: Buffer, pos: number, end: number, baseOffset: number): number {
    let at = pos;
    if (!this.#headerRead) {
      if (end - at < PCAP_FILE_HEADER_BYTES) return at;
      this.#readFileHeader(data, at, baseOffset);
      at += PCAP_FILE_HEADER_BYTES;
    }
    const le = this.#littleEndian;
    const sink = this.sink;
    while (end - at >= RECORD_HEADER_BYTES) {
      const seconds = readU32(data, at, le);
      const fraction = readU32(data, at + 4, le);
      const captured = readU32(data, at + 8, le);
      const wire = readU32(data, at + 12, le);
      if (captured > MAX_CAPTURED_BYTES) {
        throw new CaptureFormatError(
          baseOffset + at + 8,
          'pcap',
          `record captured length ${captured} is above the ${MAX_CAPTURED_BYTES}-byte maximum`,
        );
      }
      if (end - at < RECORD_HEADER_BYTES + captured) {
        this.needBytes = RECORD_HEADER_BYTES + captured;
        return at;
      }
      // A record above the file's snap length but whole in the file is read, as tshark reads it.
      if (captured > wire) {
        sink.skip(SkipReason.BAD_LENGTH);
      } else {
        sink.packet(
          data,
          at + RECORD_HEADER_BYTES,
          captured,
          wire,
          0,
          seconds,
          fraction * this.#nanosPerTick,
          RECORDED_DIRECTION_UNKNOWN,
        );
      }
      at += RECORD_HEADER_BYTES + captured;
    }
    this.needBytes = RECORD_HEADER_BYTES;
    return at;
  }

  #readFileHeader(data: Buffer, at: number, baseOffset: number): void {
    const magic = data.readUInt32LE(at);
    this.#littleEndian = magic === PcapMagic.MICROS_LE || magic === PcapMagic.NANOS_LE;
    this.#nanosPerTick = magic === PcapMagic.NANOS_LE || magic === PcapMagic.NANOS_BE ? 1 : 1000;
    const le = this.#littleEndian;
    const major = le ? data.readUInt16LE(at + 4) : data.readUInt16BE(at + 4);
    if (major !== 2) {
      throw new CaptureFormatError(baseOffset + at + 4, 'pcap', `unsupported version ${major} (expected 2)`);
    }
    // The upper bits of the link-type field carry FCS information, not the link type.
    const linkType = (le ? data.readUInt32LE(at + 20) : data.readUInt32BE(at + 20)) & 0xffff;
    this.sink.addInterface(linkType, 'pcap0');
    this.#headerRead = true;
    this.sink.stats.format = 'pcap';
  }
}
