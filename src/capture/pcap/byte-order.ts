/**
 * Unsigned integers of capture headers in the file's byte order, composed from bytes inline: the
 * framers read four of them per packet, and `Buffer.readUInt32LE` validates its offset argument
 * on every call (measured: about a tenth of the framing time of a classic pcap). Callers have
 * checked that the bytes lie inside `data`.
 */

/** The u32 at `data[at]`, little-endian when `littleEndian`, else big-endian. */
export function readU32(data: Uint8Array, at: number, littleEndian: boolean): number {
  return littleEndian
    ? (data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)) >>> 0
    : ((data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]) >>> 0;
}

/** The u16 at `data[at]`, little-endian when `littleEndian`, else big-endian. */
export function readU16(data: Uint8Array, at: number, littleEndian: boolean): number {
  return littleEndian ? data[at] | (data[at + 1] << 8) : (data[at] << 8) | data[at + 1];
}
