/** Names of protocol numbers and counters, in the reference's text form plus flowtap's extensions. */

/** Flow direction as seen by the interface; values are IPFIX IE 61 flowDirection. */
export const Direction = { INGRESS: 0, EGRESS: 1 } as const;
/** A direction value: 0 ingress, 1 egress (other values print as `UNKNOWN`). */
export type Direction = number;

/** Ethernet types flowtap gives meaning to. */
export const EtherType = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd } as const;

/** IANA protocol numbers flowtap parses beyond the network layer. */
export const IpProto = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
  SCTP: 132,
} as const;

const PROTOCOL_NAMES = new Map<number, string>([
  [0, 'IP'],
  [1, 'ICMP'],
  [2, 'IGMP'],
  [4, 'IPIP'],
  [6, 'TCP'],
  [8, 'EGP'],
  [12, 'PUP'],
  [17, 'UDP'],
  [22, 'IDP'],
  [29, 'TP'],
  [33, 'DCCP'],
  [41, 'IPV6'],
  [46, 'RSVP'],
  [47, 'GRE'],
  [50, 'ESP'],
  [51, 'AH'],
  [58, 'ICMPv6'],
  [132, 'SCTP'],
  [136, 'UDPLITE'],
]);
const PROTOCOL_NUMBERS = new Map([...PROTOCOL_NAMES].map(([n, name]) => [name.toUpperCase(), n]));

/** `TCP`, `UDP`, ... for known IANA protocol numbers; the decimal number itself otherwise. */
export function transportProtocolName(proto: number): string {
  return PROTOCOL_NAMES.get(proto) ?? String(proto);
}

/** Inverse of {@link transportProtocolName} (case-insensitive, numbers accepted); undefined if unknown. */
export function transportProtocolNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) {
    const n = Number(name);
    return n <= 255 ? n : undefined;
  }
  return PROTOCOL_NUMBERS.get(name.toUpperCase());
}

/** `INGRESS`, `EGRESS`, or `UNKNOWN` for anything else. */
export function directionName(direction: number): 'INGRESS' | 'EGRESS' | 'UNKNOWN' {
  if (direction === Direction.INGRESS) return 'INGRESS';
  if (direction === Direction.EGRESS) return 'EGRESS';
  return 'UNKNOWN';
}

const KIBI = 1024;
const MEBI = KIBI * 1024;
const GIBI = MEBI * 1024;

/**
 * Byte count for people: the plain number below 1 KiB, then two decimals in KiB, MiB or GiB.
 * (The reference printed gibibytes with the unit `MiB`; flowtap prints `GiB`.)
 */
export function humanBytes(bytes: number): string {
  if (bytes < KIBI) return String(bytes);
  if (bytes < MEBI) return `${(bytes / KIBI).toFixed(2)} KiB`;
  if (bytes < GIBI) return `${(bytes / MEBI).toFixed(2)} MiB`;
  return `${(bytes / GIBI).toFixed(2)} GiB`;
}

/** Nanoseconds in each unit {@link humanDurationNs} prints, largest first. */
const DURATION_UNITS: readonly [number, string][] = [
  [1e9, 's'],
  [1e6, 'ms'],
  [1e3, 'µs'],
];

/**
 * A duration for people, in the largest unit it reaches with three significant digits: `310µs`,
 * `7.25ms`, `1.20s`; below a microsecond, whole nanoseconds (`850ns`).
 */
export function humanDurationNs(ns: bigint | number): string {
  const value = Number(ns);
  for (const [unitNs, unit] of DURATION_UNITS) {
    if (value >= unitNs) {
      const inUnit = value / unitNs;
      return `${inUnit.toFixed(inUnit < 10 ? 2 : inUnit < 100 ? 1 : 0)}${unit}`;
    }
  }
  return `${value}ns`;
}

/** TCP header flag bits, as `tcp_flags` holds them (bit 0 FIN ... bit 8 NS). */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

/** TCP flags bit set (bit 0 FIN ... bit 8 NS) as `SYN|ACK`; empty string for none. */
export function tcpFlagNames(flags: number): string {
  const names: string[] = [];
  for (let bit = 0; bit < TCP_FLAG_NAMES.length; bit++) {
    if (flags & (1 << bit)) names.push(TCP_FLAG_NAMES[bit]);
  }
  return names.join('|');
}

/**
 * Names of the `tunnel_type` values (`TunnelType` in src/codec/v2-layout.ts, which the model
 * layer sits below; a test holds the two equal), as JSON, the table and /metrics print them.
 */
const TUNNEL_TYPE_NAMES = new Map<number, string>([
  [1, 'VXLAN'],
  [2, 'Geneve'],
  [3, 'GRE'],
  [4, 'IPIP'],
]);

/** `VXLAN`, `Geneve`, `GRE`, `IPIP` for a tunnel type; '' for none (0); the number for others. */
export function tunnelTypeName(type: number): string {
  if (type === 0) return '';
  return TUNNEL_TYPE_NAMES.get(type) ?? String(type);
}

/**
 * A tunnel as people read it: `VXLAN 42 192.0.2.1>192.0.2.2` (type, VNI or key when not 0, outer
 * source and destination); '' for no tunnel (type 0).
 */
export function tunnelLabel(type: number, id: number, outerSrc: string, outerDst: string): string {
  if (type === 0) return '';
  const name = tunnelTypeName(type);
  return id === 0 ? `${name} ${outerSrc}>${outerDst}` : `${name} ${id} ${outerSrc}>${outerDst}`;
}
