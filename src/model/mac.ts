/** MAC addresses: 6 bytes in wire order, printed `aa:bb:cc:dd:ee:ff`. */

/** Length in bytes of a MAC address. */
export const MAC_BYTES = 6;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case, colon separated text of the 6 bytes at `offset`. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  return `${HEX[bytes[offset]]}:${HEX[bytes[offset + 1]]}:${HEX[bytes[offset + 2]]}:${HEX[bytes[offset + 3]]}:${HEX[bytes[offset + 4]]}:${HEX[bytes[offset + 5]]}`;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated); undefined when it is not a MAC address. */
export function parseMac(text: string): Uint8Array | undefined {
  const parts = text.split(/[:-]/);
  if (parts.length !== MAC_BYTES || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  return Uint8Array.from(parts, (p) => Number.parseInt(p, 16));
}

/** The MAC at `offset` as a 48-bit number (11:22:33:44:55:66 is 0x112233445566), as pbflow carries it. */
export function macToNumber(bytes: Uint8Array, offset = 0): number {
  return (
    bytes[offset] * 2 ** 40 +
    bytes[offset + 1] * 2 ** 32 +
    ((bytes[offset + 2] << 24) >>> 0) +
    (bytes[offset + 3] << 16) +
    (bytes[offset + 4] << 8) +
    bytes[offset + 5]
  );
}
