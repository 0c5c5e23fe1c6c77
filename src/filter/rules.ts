/**
 * FLOW_FILTER_RULES: filter rules in the shape of netobserv-ebpf-agent's, for users coming from
 * it. A list (JSON or YAML) of rules, tried in order; the first rule whose every condition holds
 * decides (Accept, with its own 1-in-N `sample`, or Reject). A packet no rule matches is rejected
 * when some rule accepts, and accepted when every rule rejects (a deny list). The rules compile
 * into the same program as an expression (compile.ts). Beyond netobserv, `cidr` and `peer_cidr`
 * may list several networks (one LPM trie set in the kernel).
 */

import { FilterSyntaxError } from '../errors.ts';
import { parseIp } from '../model/ip.ts';
import { parseYamlText } from '../yaml-text.ts';
import type { CompiledRule } from './compile.ts';
import {
  allOf,
  anyOf,
  atom,
  type Formula,
  ipProtocol,
  MAX_RULE_SAMPLING,
  type Prefix,
  type Side,
} from './program.ts';

/** The setting's name, used in messages. */
export const FLOW_FILTER_RULES = 'FLOW_FILTER_RULES';

const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const PORT_PROTOCOLS = [6, 17, 132];

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 };
const TCP_FLAG_BITS: Record<string, number> = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  NS: 0x100,
};

/** Rule keys, normalised (lower case, no `_`), and what each takes. */
const RULE_KEYS: Record<string, string> = {
  action: 'Accept or Reject',
  cidr: 'a CIDR such as 10.0.0.0/8, or a list of CIDRs of one IP version (either address of the packet)',
  ipcidr: 'a CIDR such as 10.0.0.0/8, or a list of CIDRs of one IP version (either address of the packet)',
  peercidr: 'a CIDR or a list of them: the other address of the packet, with cidr',
  peerip: 'an address: the other address of the packet, with cidr',
  protocol: 'TCP, UDP, SCTP, ICMP, ICMPv6 or a protocol number',
  direction: 'Ingress or Egress',
  port: 'a port (either side)',
  sourceport: 'a source port',
  destinationport: 'a destination port',
  portrange: 'LOW-HIGH (either side)',
  sourceportrange: 'LOW-HIGH',
  destinationportrange: 'LOW-HIGH',
  ports: 'ports separated by commas (either side)',
  sourceports: 'ports separated by commas',
  destinationports: 'ports separated by commas',
  icmptype: 'an ICMP type (0-255)',
  icmpcode: 'an ICMP code (0-255)',
  tcpflags: 'TCP flags joined by -, such as SYN, SYN-ACK, FIN-ACK, RST-ACK',
  sample: 'a sampling rate: count 1 accepted packet in N',
  sampling: 'a sampling rate: count 1 accepted packet in N',
};

/** Rules compiled to formulas, and the verdict for packets no rule matches. */
export interface ParsedRules {
  /** The rules in order. */
  readonly rules: readonly CompiledRule[];
  /** Whether a packet no rule matches is accepted. */
  readonly unmatchedAccept: boolean;
}

/** Parses FLOW_FILTER_RULES given as text (JSON or YAML) or as an already parsed list. */
export function parseFilterRules(raw: unknown): ParsedRules {
  let list = raw;
  if (typeof raw === 'string') {
    try {
      list = parseYamlText(raw); // YAML is a superset of JSON: one parser reads both
    } catch (err) {
      fail(`not JSON or YAML (${(err as Error).message.split('\n')[0]})`);
    }
  }
  if (list === null || list === undefined) return { rules: [], unmatchedAccept: true };
  if (!Array.isArray(list))
    fail('expected a list of rules, e.g. [{"action": "Accept", "cidr": "10.0.0.0/8"}]');
  const rules = list.map((rule, i) => parseRule(rule, i + 1));
  return { rules, unmatchedAccept: rules.every((r) => !r.accept) };
}

function parseRule(raw: unknown, n: number): CompiledRule {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    fail(`rule ${n} is not a mapping of conditions`);
  const fields = new Map<string, unknown>();
  for (const [key, value] of Object.entries(raw)) {
    const normal = key.toLowerCase().replace(/[_-]/g, '');
    if (!(normal in RULE_KEYS)) {
      fail(
        `rule ${n}: unknown key '${key}'; known keys: action, cidr, peer_cidr, peer_ip, protocol, direction, port, source_port, destination_port, port_range, source_port_range, destination_port_range, ports, source_ports, destination_ports, icmp_type, icmp_code, tcp_flags, sample`,
      );
    }
    fields.set(normal, value);
  }
  const text = (key: string) => {
    const value = fields.get(key);
    return value === undefined || value === null ? undefined : String(value).trim();
  };
  const bad = (key: string, value: string | undefined): never =>
    fail(`rule ${n}: ${key}=${JSON.stringify(value)}: expected ${RULE_KEYS[key]}`);
  const parts: Formula[] = [];

  const action = (text('action') ?? 'accept').toLowerCase();
  if (action !== 'accept' && action !== 'reject') bad('action', text('action'));

  // Address tests go last: a rule usually fails on its protocol or port first, which costs less.
  const addressParts: Formula[] = [];
  const cidrRaw = fields.get('cidr') ?? fields.get('ipcidr');
  const peerRaw = fields.get('peercidr') ?? fields.get('peerip');
  if (peerRaw !== undefined && cidrRaw === undefined) fail(`rule ${n}: peer_cidr needs cidr`);
  if (cidrRaw !== undefined && cidrRaw !== null) {
    const cidr = parseCidrList(cidrRaw) ?? bad('cidr', String(cidrRaw));
    const peer =
      peerRaw === undefined || peerRaw === null
        ? undefined
        : (parseCidrList(peerRaw) ?? bad('peercidr', String(peerRaw)));
    if (peer && peer.v4 !== cidr.v4) fail(`rule ${n}: cidr and peer_cidr are of different IP versions`);
    const on = (side: Side, prefixes: Prefix[]) => atom({ test: 'addr', side, prefixes });
    addressParts.push(atom({ test: 'ethertype', value: cidr.v4 ? ETH_P_IPV4 : ETH_P_IPV6 }));
    addressParts.push(
      peer
        ? anyOf([
            allOf([on('src', cidr.prefixes), on('dst', peer.prefixes)]),
            allOf([on('dst', cidr.prefixes), on('src', peer.prefixes)]),
          ])
        : anyOf([on('src', cidr.prefixes), on('dst', cidr.prefixes)]),
    );
  }

  const protocolText = text('protocol');
  if (protocolText !== undefined) {
    const protocol =
      PROTOCOLS[protocolText.toLowerCase()] ?? integer(protocolText, 255) ?? bad('protocol', protocolText);
    parts.push(ipProtocol(protocol));
  }

  const directionText = text('direction');
  if (directionText !== undefined) {
    const d = directionText.toLowerCase();
    if (d !== 'ingress' && d !== 'egress') bad('direction', directionText);
    parts.push(atom({ test: 'direction', value: d === 'ingress' ? 0 : 1 }));
  }

  const portTests: Formula[] = [];
  for (const [prefix, sides] of [
    ['', ['src', 'dst']],
    ['source', ['src']],
    ['destination', ['dst']],
  ] as const) {
    const ranges: [number, number][] = [];
    const single = text(`${prefix}port`);
    if (single !== undefined) {
      const port = integer(single, 65535) ?? bad(`${prefix}port`, single);
      ranges.push([port, port]);
    }
    const range = text(`${prefix}portrange`);
    if (range !== undefined) {
      const m = /^(\d+)\s*-\s*(\d+)$/.exec(range);
      const lo = m ? integer(m[1], 65535) : undefined;
      const hi = m ? integer(m[2], 65535) : undefined;
      if (lo === undefined || hi === undefined || lo > hi) bad(`${prefix}portrange`, range);
      ranges.push([lo as number, hi as number]);
    }
    const list = fields.get(`${prefix}ports`);
    if (list !== undefined && list !== null) {
      const items = Array.isArray(list) ? list.map(String) : String(list).split(',');
      for (const item of items) {
        const port = integer(item.trim(), 65535) ?? bad(`${prefix}ports`, String(list));
        ranges.push([port, port]);
      }
    }
    if (ranges.length === 0) continue;
    portTests.push(
      anyOf(sides.flatMap((side) => ranges.map(([lo, hi]) => atom({ test: 'port', side, lo, hi })))),
    );
  }
  if (portTests.length > 0) {
    if (protocolText === undefined) {
      parts.push(anyOf(PORT_PROTOCOLS.map((value) => ipProtocol(value))));
    }
    parts.push(...portTests);
  }

  for (const key of ['icmptype', 'icmpcode'] as const) {
    const value = text(key);
    if (value === undefined) continue;
    const number = integer(value, 255) ?? bad(key, value);
    parts.push(atom({ test: key === 'icmptype' ? 'icmp-type' : 'icmp-code', value: number }));
  }

  const flagsText = text('tcpflags');
  if (flagsText !== undefined) {
    let mask = 0;
    for (const name of flagsText.toUpperCase().split('-')) {
      const bit = TCP_FLAG_BITS[name.trim()];
      if (bit === undefined) bad('tcpflags', flagsText);
      mask |= bit;
    }
    parts.push(atom({ test: 'tcp-flags', mask, value: mask }));
  }

  const sampleText = text('sample') ?? text('sampling');
  let sampling = 1;
  if (sampleText !== undefined) {
    const value = integer(sampleText, MAX_RULE_SAMPLING);
    if (value === undefined)
      fail(
        `rule ${n}: sample=${JSON.stringify(sampleText)}: expected 0 or 1 (every packet) to ${MAX_RULE_SAMPLING}`,
      );
    sampling = Math.max(1, value as number);
  }
  return { formula: allOf([...parts, ...addressParts]), accept: action === 'accept', sampling };
}

/** One CIDR, a comma-separated list or a YAML list of them, all of one IP version. */
function parseCidrList(raw: unknown): { v4: boolean; prefixes: Prefix[] } | undefined {
  const items = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
  const parsed = items.map((item) => parseCidr(item.trim()));
  if (parsed.length === 0 || parsed.some((p) => p === undefined)) return undefined;
  const v4 = (parsed[0] as { v4: boolean }).v4;
  if (parsed.some((p) => p?.v4 !== v4)) return undefined;
  return { v4, prefixes: parsed.map((p) => (p as { prefix: Prefix }).prefix) };
}

function parseCidr(text: string): { v4: boolean; prefix: Prefix } | undefined {
  const [addr, lenText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const bytes = parseIp(addr.trim());
  if (!bytes) return undefined;
  const v4 = !addr.includes(':');
  const len = lenText === undefined ? (v4 ? 32 : 128) : integer(lenText.trim(), v4 ? 32 : 128);
  if (len === undefined) return undefined;
  const bits = len + (v4 ? 96 : 0);
  // Host bits are cleared, as netobserv does with the address of a CIDR.
  for (let bit = bits; bit < 128; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { v4, prefix: { bytes, bits } };
}

function integer(text: string, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

function fail(reason: string): never {
  throw new FilterSyntaxError(FLOW_FILTER_RULES, -1, `${FLOW_FILTER_RULES}: ${reason}`);
}
