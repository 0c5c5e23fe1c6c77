/**
 * Names of ICMP (RFC 792 and successors) and ICMPv6 (RFC 4443, 4861, 3810) types and codes, as
 * people read them in the table and the web view: `echo-request`, `port-unreachable`. A code
 * with a name of its own (the destination-unreachable family) names the pair; other pairs are
 * named by their type, with `/code` added when the code is not 0. Unknown types print as
 * `type N/code`.
 */
import { IpProto } from './names.ts';

const ICMP4_TYPES = new Map<number, string>([
  [0, 'echo-reply'],
  [3, 'dest-unreachable'],
  [4, 'source-quench'],
  [5, 'redirect'],
  [8, 'echo-request'],
  [9, 'router-advertisement'],
  [10, 'router-solicitation'],
  [11, 'time-exceeded'],
  [12, 'parameter-problem'],
  [13, 'timestamp-request'],
  [14, 'timestamp-reply'],
]);
const ICMP4_UNREACHABLE_CODES = [
  'net-unreachable',
  'host-unreachable',
  'protocol-unreachable',
  'port-unreachable',
  'fragmentation-needed',
  'source-route-failed',
  'net-unknown',
  'host-unknown',
  'source-host-isolated',
  'net-prohibited',
  'host-prohibited',
  'net-tos-unreachable',
  'host-tos-unreachable',
  'admin-prohibited',
  'host-precedence-violation',
  'precedence-cutoff',
];
const ICMP4_DEST_UNREACHABLE = 3;

const ICMP6_TYPES = new Map<number, string>([
  [1, 'dest-unreachable'],
  [2, 'packet-too-big'],
  [3, 'time-exceeded'],
  [4, 'parameter-problem'],
  [128, 'echo-request'],
  [129, 'echo-reply'],
  [130, 'mld-query'],
  [131, 'mld-report'],
  [132, 'mld-done'],
  [133, 'router-solicitation'],
  [134, 'router-advertisement'],
  [135, 'neighbor-solicitation'],
  [136, 'neighbor-advertisement'],
  [137, 'redirect'],
  [143, 'mldv2-report'],
]);
const ICMP6_UNREACHABLE_CODES = [
  'no-route',
  'admin-prohibited',
  'beyond-scope',
  'address-unreachable',
  'port-unreachable',
  'source-policy-failed',
  'reject-route',
];
const ICMP6_DEST_UNREACHABLE = 1;

/** Whether `proto` is ICMP or ICMPv6: the protocols whose flows carry a type and code. */
export function isIcmpProtocol(proto: number): boolean {
  return proto === IpProto.ICMP || proto === IpProto.ICMPV6;
}

/** The name of an ICMP (`proto` 1) or ICMPv6 (58) type and code, e.g. `echo-request`, `port-unreachable`. */
export function icmpName(proto: number, type: number, code: number): string {
  const v6 = proto === IpProto.ICMPV6;
  const unreachable = v6 ? ICMP6_UNREACHABLE_CODES : ICMP4_UNREACHABLE_CODES;
  if (type === (v6 ? ICMP6_DEST_UNREACHABLE : ICMP4_DEST_UNREACHABLE) && code < unreachable.length) {
    return unreachable[code];
  }
  const name = (v6 ? ICMP6_TYPES : ICMP4_TYPES).get(type) ?? `type ${type}`;
  return code === 0 ? name : `${name}/${code}`;
}
