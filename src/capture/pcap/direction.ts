/**
 * Which packets of a capture leave the monitored host (EGRESS) and which arrive (INGRESS). A file
 * has no interface to hang the kernel's ingress/egress hooks on, so the direction comes from the
 * user (`--local-net`, `--local-mac`: a packet whose source is local is EGRESS) or, without
 * those, from what the capture recorded (Linux cooked packet type, pcapng `epb_flags`), else
 * INGRESS.
 */
import { V2 } from '../../codec/v2-layout.ts';
import { ConfigError } from '../../errors.ts';
import { parseIp } from '../../model/ip.ts';
import { parseMac } from '../../model/mac.ts';

/** One local prefix as 16 address bytes (IPv4 mapped) and a prefix length over those bytes. */
interface Prefix {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** What makes a packet's source local; empty lists mean "use the capture's own direction". */
export class LocalHosts {
  readonly #prefixes: readonly Prefix[];
  readonly #macs: readonly Uint8Array[];

  constructor(prefixes: readonly Prefix[], macs: readonly Uint8Array[]) {
    this.#prefixes = prefixes;
    this.#macs = macs;
  }

  /** True when neither a network nor a MAC was given. */
  get isEmpty(): boolean {
    return this.#prefixes.length === 0 && this.#macs.length === 0;
  }

  /** True when the source address or source MAC of the v2 row at `row` of `out` is local. */
  isLocalSource(out: Uint8Array, row: number): boolean {
    for (const prefix of this.#prefixes) {
      if (matchesPrefix(out, row + V2.SRC_ADDR, prefix)) return true;
    }
    for (const mac of this.#macs) {
      let i = 0;
      while (i < 6 && out[row + V2.SRC_MAC + i] === mac[i]) i++;
      if (i === 6) return true;
    }
    return false;
  }
}

function matchesPrefix(out: Uint8Array, at: number, prefix: Prefix): boolean {
  const whole = prefix.bits >>> 3;
  for (let i = 0; i < whole; i++) if (out[at + i] !== prefix.bytes[i]) return false;
  const rest = prefix.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (out[at + whole] & mask) === (prefix.bytes[whole] & mask);
}

/** Local hosts from nothing: every packet keeps the capture's own direction. */
export const NO_LOCAL_HOSTS = new LocalHosts([], []);

/**
 * Parses `--local-net` (comma-separated CIDRs, `10.0.0.0/8,fd00::/8`; a bare address is a host)
 * and `--local-mac` (comma-separated MACs) into {@link LocalHosts}; throws `ConfigError`.
 */
export function parseLocalHosts(localNets: string | undefined, localMacs: string | undefined): LocalHosts {
  const prefixes: Prefix[] = [];
  for (const text of splitList(localNets)) {
    const slash = text.indexOf('/');
    const address = parseIp(slash < 0 ? text : text.slice(0, slash));
    const v4 = !text.slice(0, slash < 0 ? undefined : slash).includes(':');
    const maxBits = v4 ? 32 : 128;
    const bitsText = slash < 0 ? String(maxBits) : text.slice(slash + 1);
    const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : Number.NaN;
    if (address === undefined || !(bits <= maxBits)) {
      throw new ConfigError('--local-net', text, 'CIDR networks such as 10.0.0.0/8,fd00::/8');
    }
    // An IPv4 prefix is matched against the mapped form, behind its 96-bit ::ffff: head.
    prefixes.push({ bytes: address, bits: v4 ? bits + 96 : bits });
  }
  const macs: Uint8Array[] = [];
  for (const text of splitList(localMacs)) {
    const mac = parseMac(text);
    if (mac === undefined)
      throw new ConfigError('--local-mac', text, 'MAC addresses such as 02:00:00:00:00:01');
    macs.push(mac);
  }
  return new LocalHosts(prefixes, macs);
}

function splitList(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
