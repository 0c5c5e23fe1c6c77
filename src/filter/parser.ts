/**
 * Parses the pcap-filter subset flowtap supports (docs/flow-key.md, "Filters") into a formula of
 * packet tests. Precedence is tcpdump's: `not` binds tightest, `and` and `or` are equal and
 * associate left to right; a bare value after `and`/`or` reuses the previous primitive's
 * qualifiers (`port 80 or 443`). Every refusal is a FilterSyntaxError with the position.
 */
import { FilterSyntaxError } from '../errors.ts';
import { parseIp } from '../model/ip.ts';
import { type FilterToken, tokenize } from './lexer.ts';
import { allOf, anyOf, atom, type Formula, ipProtocol, type Prefix, type Side } from './program.ts';

const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const PROTO_SCTP = 132;
const MAX_VLAN_ID = 4095;

/** Protocol qualifiers and the protocol numbers of the transport ones. */
const PROTOCOL_NAMES: Record<string, number> = {
  tcp: PROTO_TCP,
  udp: PROTO_UDP,
  sctp: PROTO_SCTP,
  icmp: PROTO_ICMP,
  icmp6: PROTO_ICMPV6,
};
const PROTO_QUALIFIERS = new Set(['ip', 'ip6', 'tcp', 'udp', 'sctp', 'icmp', 'icmp6']);
const TYPE_KEYWORDS = new Set(['host', 'net', 'port', 'portrange', 'proto']);
const RESERVED = new Set([
  ...PROTO_QUALIFIERS,
  ...TYPE_KEYWORDS,
  'src',
  'dst',
  'and',
  'or',
  'not',
  'vlan',
  'mask',
]);

/** What the parser accepts, quoted in errors about unknown words. */
export const SUPPORTED_PRIMITIVES =
  '[ip|ip6] [src|dst|src or dst|src and dst] host ADDR, [ip|ip6] [src|dst] net CIDR (or ADDR mask MASK), ' +
  '[tcp|udp|sctp] [src|dst] port N, [tcp|udp|sctp] [src|dst] portrange N-M, tcp, udp, sctp, icmp, icmp6, ' +
  'ip, ip6, [ip|ip6] proto N, vlan [ID], combined with and/&&, or/||, not/! and parentheses';

/** How a primitive's address or port side is chosen. */
type Direction = 'src' | 'dst' | 'src or dst' | 'src and dst';

/** The qualifiers of the last primitive, reused by a bare value that follows `and`/`or`. */
interface Qualifiers {
  proto: string | undefined;
  dir: Direction | undefined;
  type: string;
}

/** Parses `expression` into a formula; an empty expression matches every packet. */
export function parseFilterExpression(expression: string): Formula {
  return new ExpressionParser(expression).parse();
}

class ExpressionParser {
  readonly #tokens: FilterToken[];
  #at = 0;
  #last: Qualifiers | undefined;

  constructor(readonly expression: string) {
    this.#tokens = tokenize(expression);
  }

  parse(): Formula {
    if (this.#tokens.length === 0) return { kind: 'const', value: true };
    const formula = this.#expr();
    const extra = this.#peek();
    if (extra) {
      this.#fail(
        extra,
        extra.type === ')'
          ? "unbalanced ')': no '(' is open"
          : `expected and, or or the end, found '${extra.text}'`,
      );
    }
    return formula;
  }

  #expr(): Formula {
    let left = this.#unary();
    for (;;) {
      const t = this.#peek();
      if (!t) return left;
      const op =
        t.type === '&&' || isWord(t, 'and') ? 'and' : t.type === '||' || isWord(t, 'or') ? 'or' : undefined;
      if (!op) return left;
      this.#at++;
      if (!this.#peek()) this.#fail(t, `'${t.text}' needs a primitive after it`, this.expression.length);
      left = { kind: op, left, right: this.#unary() };
    }
  }

  #unary(): Formula {
    const t = this.#peek();
    if (!t) return this.#fail(undefined, 'expected a primitive, found the end of the expression');
    if (t.type === '!' || isWord(t, 'not')) {
      this.#at++;
      if (!this.#peek()) this.#fail(t, `'${t.text}' needs a primitive after it`, this.expression.length);
      return { kind: 'not', operand: this.#unary() };
    }
    if (t.type === '(') {
      this.#at++;
      const inner = this.#expr();
      const close = this.#peek();
      if (close?.type !== ')') {
        return this.#fail(close, `unbalanced '(' at position ${t.position + 1}: expected ')'`);
      }
      this.#at++;
      return inner;
    }
    if (t.type !== 'word') return this.#fail(t, `expected a primitive, found '${t.text}'`);
    return this.#primitive();
  }

  #primitive(): Formula {
    const first = this.#peek() as FilterToken;
    const lower = first.text.toLowerCase();
    if (lower === 'vlan') {
      this.#at++;
      const id = this.#optionalValue();
      if (id === undefined) return atom({ test: 'vlan', id: undefined });
      return atom({ test: 'vlan', id: this.#integer(id, 0, MAX_VLAN_ID, 'a VLAN id') });
    }
    if (!RESERVED.has(lower)) {
      if (this.#last && looksLikeValue(first.text)) {
        this.#at++;
        return this.#build(this.#last, first);
      }
      return this.#fail(first, `unknown keyword '${first.text}': supported are ${SUPPORTED_PRIMITIVES}`);
    }
    let proto: string | undefined;
    if (PROTO_QUALIFIERS.has(lower)) {
      proto = lower;
      this.#at++;
    }
    const dir = this.#direction();
    const typeToken = this.#peek();
    let type: string | undefined;
    if (typeToken?.type === 'word' && TYPE_KEYWORDS.has(typeToken.text.toLowerCase())) {
      type = typeToken.text.toLowerCase();
      this.#at++;
    }
    if (type === undefined && dir === undefined) {
      if (proto === undefined) return this.#fail(first, `'${first.text}' cannot start a primitive`);
      return protocolFormula(proto);
    }
    const value = this.#optionalValue();
    if (value === undefined) {
      const where = this.#peek();
      return this.#fail(where, `'${type ?? dir}' needs a value${where ? `, found '${where.text}'` : ''}`);
    }
    const qualifiers: Qualifiers = {
      proto,
      dir,
      type: type ?? (value.text.includes('/') ? 'net' : 'host'),
    };
    this.#last = qualifiers;
    return this.#build(qualifiers, value);
  }

  #direction(): Direction | undefined {
    const t = this.#peek();
    if (t?.type !== 'word') return undefined;
    const word = t.text.toLowerCase();
    if (word !== 'src' && word !== 'dst') return undefined;
    this.#at++;
    const joiner = this.#peek();
    const other = this.#tokens[this.#at + 1];
    const otherWord = other?.type === 'word' ? other.text.toLowerCase() : '';
    if (
      joiner &&
      (isWord(joiner, 'or') || isWord(joiner, 'and')) &&
      otherWord === (word === 'src' ? 'dst' : 'src')
    ) {
      this.#at += 2;
      return isWord(joiner, 'or') ? 'src or dst' : 'src and dst';
    }
    return word;
  }

  /** The next token when it is a value (not a keyword or operator). */
  #optionalValue(): FilterToken | undefined {
    const t = this.#peek();
    if (t?.type !== 'word' || RESERVED.has(t.text.toLowerCase())) return undefined;
    this.#at++;
    return t;
  }

  #build(q: Qualifiers, value: FilterToken): Formula {
    switch (q.type) {
      case 'host':
      case 'net':
        return this.#addressFormula(q, value);
      case 'port':
      case 'portrange':
        return this.#portFormula(q, value);
      default:
        return this.#protoFormula(q, value);
    }
  }

  #addressFormula(q: Qualifiers, value: FilterToken): Formula {
    if (q.proto !== undefined && q.proto !== 'ip' && q.proto !== 'ip6') {
      this.#fail(value, `'${q.proto}' cannot qualify '${q.type}': use 'ip' or 'ip6', or combine with 'and'`);
    }
    const prefix = q.type === 'host' ? this.#hostPrefix(value) : this.#netPrefix(value);
    const v4 = prefix.family === 4;
    if ((q.proto === 'ip' && !v4) || (q.proto === 'ip6' && v4)) {
      this.#fail(value, `'${value.text}' is not an ${q.proto === 'ip' ? 'IPv4' : 'IPv6'} address`);
    }
    const sides = sidesOf(q.dir);
    const tests = sides.map((side) => atom({ test: 'addr', side, prefixes: [prefix.prefix] }));
    return allOf([
      atom({ test: 'ethertype', value: v4 ? ETH_P_IPV4 : ETH_P_IPV6 }),
      q.dir === 'src and dst' ? allOf(tests) : anyOf(tests),
    ]);
  }

  #hostPrefix(value: FilterToken): { family: 4 | 6; prefix: Prefix } {
    const bytes = parseIp(value.text);
    if (!bytes) {
      return this.#fail(
        value,
        `'${value.text}' is not an IPv4 or IPv6 address (host names are not resolved: give an address)`,
      );
    }
    return { family: value.text.includes(':') ? 6 : 4, prefix: { bytes, bits: 128 } };
  }

  #netPrefix(value: FilterToken): { family: 4 | 6; prefix: Prefix } {
    let text = value.text;
    let bits: number | undefined;
    const slash = text.indexOf('/');
    if (slash >= 0) {
      bits = this.#integer(
        { ...value, text: text.slice(slash + 1) },
        0,
        text.includes(':') ? 128 : 32,
        'a prefix length',
      );
      text = text.slice(0, slash);
    } else if (isWord(this.#peek(), 'mask')) {
      this.#at++;
      const maskToken = this.#optionalValue();
      if (!maskToken) return this.#fail(this.#peek(), "'mask' needs a dotted IPv4 mask such as 255.255.0.0");
      bits = this.#maskBits(maskToken);
    }
    const v6 = text.includes(':');
    if (!v6 && bits === undefined) {
      // tcpdump's short forms: `net 10` is 10.0.0.0/8, `net 192.168` is 192.168.0.0/16.
      const parts = text.split('.');
      if (parts.length < 4 && parts.every((p) => /^\d{1,3}$/.test(p))) {
        bits = parts.length * 8;
        text = [...parts, '0', '0', '0'].slice(0, 4).join('.');
      }
    }
    const bytes = parseIp(text);
    if (!bytes)
      return this.#fail(
        value,
        `'${value.text}' is not a network: give CIDR such as 10.0.0.0/8 or 2001:db8::/32`,
      );
    const familyBits = v6 ? 128 : 32;
    const prefixBits = (bits ?? familyBits) + (v6 ? 0 : 96);
    for (let bit = prefixBits; bit < 128; bit++) {
      if (bytes[bit >> 3] & (0x80 >> (bit & 7))) {
        return this.#fail(
          value,
          `'${value.text}' has host bits set past /${prefixBits - (v6 ? 0 : 96)}: give the network address`,
        );
      }
    }
    return { family: v6 ? 6 : 4, prefix: { bytes, bits: prefixBits } };
  }

  #maskBits(mask: FilterToken): number {
    const bytes = parseIp(mask.text);
    if (!bytes || mask.text.includes(':'))
      return this.#fail(mask, `'${mask.text}' is not a dotted IPv4 mask`);
    const value = ((bytes[12] << 24) | (bytes[13] << 16) | (bytes[14] << 8) | bytes[15]) >>> 0;
    let bits = 0;
    while (bits < 32 && value & (0x80000000 >>> bits)) bits++;
    const contiguous = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (contiguous !== value) {
      return this.#fail(mask, `'${mask.text}' is not a contiguous mask such as 255.255.0.0`);
    }
    return bits;
  }

  #portFormula(q: Qualifiers, value: FilterToken): Formula {
    if (q.proto !== undefined && !['tcp', 'udp', 'sctp'].includes(q.proto)) {
      this.#fail(value, `'${q.proto}' cannot qualify '${q.type}': use tcp, udp or sctp`);
    }
    let lo: number;
    let hi: number;
    if (q.type === 'port') {
      lo = hi = this.#port(value, value.text);
    } else {
      const m = /^([^-]+)-([^-]+)$/.exec(value.text);
      if (!m)
        return this.#fail(value, `'${value.text}' is not a port range: give LOW-HIGH such as 1024-65535`);
      lo = this.#port(value, m[1]);
      hi = this.#port(value, m[2]);
      if (lo > hi) return this.#fail(value, `port range ${value.text} ends before it starts`);
    }
    const protocols = q.proto === undefined ? [PROTO_TCP, PROTO_UDP, PROTO_SCTP] : [PROTOCOL_NAMES[q.proto]];
    const sides = sidesOf(q.dir);
    const tests = sides.map((side) => atom({ test: 'port', side, lo, hi }));
    return allOf([
      anyOf(protocols.map((value) => ipProtocol(value))),
      q.dir === 'src and dst' ? allOf(tests) : anyOf(tests),
    ]);
  }

  #port(token: FilterToken, text: string): number {
    if (!/^\d+$/.test(text)) {
      return this.#fail(
        token,
        `'${text}' is not a port number (service names are not resolved: give 0-65535)`,
      );
    }
    return this.#integer({ ...token, text }, 0, 65535, 'a port');
  }

  #protoFormula(q: Qualifiers, value: FilterToken): Formula {
    if (q.dir !== undefined) this.#fail(value, `'${q.dir}' cannot qualify 'proto'`);
    if (q.proto !== undefined && q.proto !== 'ip' && q.proto !== 'ip6') {
      this.#fail(value, `'${q.proto}' cannot qualify 'proto': use 'ip proto N' or 'ip6 proto N'`);
    }
    const name = value.text.replace(/^\\/, '').toLowerCase();
    const protocol =
      PROTOCOL_NAMES[name] ??
      this.#integer({ ...value, text: name }, 0, 255, 'a protocol number or tcp, udp, sctp, icmp, icmp6');
    if (q.proto === undefined) return ipProtocol(protocol);
    return allOf([
      atom({ test: 'ethertype', value: q.proto === 'ip' ? ETH_P_IPV4 : ETH_P_IPV6 }),
      atom({ test: 'proto', value: protocol }),
    ]);
  }

  #integer(token: FilterToken, min: number, max: number, what: string): number {
    if (!/^\d+$/.test(token.text) || Number(token.text) < min || Number(token.text) > max) {
      return this.#fail(token, `'${token.text}' is not ${what} (${min}-${max})`);
    }
    return Number(token.text);
  }

  #peek(): FilterToken | undefined {
    return this.#tokens[this.#at];
  }

  #fail(token: FilterToken | undefined, reason: string, position?: number): never {
    throw new FilterSyntaxError(
      this.expression,
      position ?? token?.position ?? this.expression.length,
      reason,
    );
  }
}

/** `tcp`, `ip6`, `icmp`...: the protocol alone. */
function protocolFormula(proto: string): Formula {
  if (proto === 'ip') return atom({ test: 'ethertype', value: ETH_P_IPV4 });
  if (proto === 'ip6') return atom({ test: 'ethertype', value: ETH_P_IPV6 });
  const value = PROTOCOL_NAMES[proto];
  if (proto !== 'icmp' && proto !== 'icmp6') return ipProtocol(value);
  return allOf([
    atom({ test: 'proto', value }),
    atom({ test: 'ethertype', value: proto === 'icmp' ? ETH_P_IPV4 : ETH_P_IPV6 }),
  ]);
}

function sidesOf(dir: Direction | undefined): Side[] {
  if (dir === 'src') return ['src'];
  if (dir === 'dst') return ['dst'];
  return ['src', 'dst'];
}

function isWord(t: FilterToken | undefined, word: string): boolean {
  return t?.type === 'word' && t.text.toLowerCase() === word;
}

/** Whether a word can be a value reused with the previous qualifiers: a number, address or range. */
function looksLikeValue(text: string): boolean {
  return /^[0-9a-fA-F:./-]+$/.test(text) && /[0-9]/.test(text);
}
