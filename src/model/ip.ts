/**
 * IP addresses as flowtap stores them: always 16 bytes in network order, IPv4 as IPv4-mapped
 * IPv6 (::ffff:a.b.c.d), so one key shape holds both families.
 */
import { EtherType } from './names.ts';

/** Length in bytes of a stored address. */
export const IP_BYTES = 16;

/** True when the 16 bytes at `offset` are an IPv4-mapped address (::ffff:0:0/96). */
export function isIpv4Mapped(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** True when the 16 bytes at `offset` are all zero: an address never set (or `::`). */
export function isAllZero(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < IP_BYTES; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}

/** Dotted quad of the 4 bytes at `offset`. */
export function formatIpv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** RFC 5952 text of the 16 bytes at `offset`: lower case, longest zero run (≥ 2 groups) as `::`. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  if (isIpv4Mapped(bytes, offset)) return `::ffff:${formatIpv4(bytes, offset + 12)}`;
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = (bytes[offset + 2 * i] << 8) | bytes[offset + 2 * i + 1];
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.map((g) => g.toString(16)).join(':');
  const head = groups.slice(0, bestStart).map((g) => g.toString(16));
  const tail = groups.slice(bestStart + bestLen).map((g) => g.toString(16));
  return `${head.join(':')}::${tail.join(':')}`;
}

/**
 * Text of a stored address for a flow of Ethernet type `etype`: IPv4 flows (and any mapped or
 * unset address outside IPv6 flows) as a dotted quad, IPv6 flows in RFC 5952 form.
 */
export function formatIp(bytes: Uint8Array, offset: number, etype: number): string {
  if (etype !== EtherType.IPV6 && (isIpv4Mapped(bytes, offset) || isAllZero(bytes, offset))) {
    return formatIpv4(bytes, offset + 12);
  }
  return formatIpv6(bytes, offset);
}

/** Writes IPv4 `a.b.c.d` given as a 32-bit value (10.0.0.1 = 0x0A000001) as a mapped address. */
export function writeIpv4Mapped(value: number, out: Uint8Array, offset: number): void {
  out.fill(0, offset, offset + 10);
  out[offset + 10] = 0xff;
  out[offset + 11] = 0xff;
  out[offset + 12] = (value >>> 24) & 0xff;
  out[offset + 13] = (value >>> 16) & 0xff;
  out[offset + 14] = (value >>> 8) & 0xff;
  out[offset + 15] = value & 0xff;
}

function parseIpv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return false;
    const n = Number(parts[i]);
    if (n > 255) return false;
    out[offset + i] = n;
  }
  return true;
}

/** Parses IPv4 or IPv6 text into 16 stored bytes (IPv4 mapped); undefined when it is not an address. */
export function parseIp(text: string): Uint8Array | undefined {
  const out = new Uint8Array(IP_BYTES);
  if (!text.includes(':')) {
    if (!parseIpv4Into(text, out, 12)) return undefined;
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }
  let body = text;
  const zone = body.indexOf('%');
  if (zone >= 0) body = body.slice(0, zone);
  let tailV4: Uint8Array | undefined;
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    tailV4 = new Uint8Array(4);
    if (!parseIpv4Into(body.slice(lastColon + 1), tailV4, 0)) return undefined;
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const toGroups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = toGroups(halves[0]);
  const tail = halves.length === 2 ? toGroups(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return undefined;
    const g = Number.parseInt(groups[i], 16);
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}
