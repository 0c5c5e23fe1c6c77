/**
 * IPFIX (RFC 7011) templates flowtap exports: one per address family and direction, since a
 * template has fixed fields and the interface goes in ingressInterface (IE 10) for INGRESS flows
 * and egressInterface (IE 14) for EGRESS flows. All Information Elements are IANA ones
 * (enterprise bit clear); field order here is the order the encoder writes. ICMP type and code go
 * in icmpTypeCodeIPv4 (IE 32) or icmpTypeCodeIPv6 (IE 139) by family, as nfdump and tshark read them.
 */

/** IPFIX protocol version in every message header. */
export const IPFIX_VERSION = 10;
/** Bytes of an IPFIX message header. */
export const MESSAGE_HEADER_BYTES = 16;
/** Bytes of a set header (set id, length). */
export const SET_HEADER_BYTES = 4;
/** Set id of a template set. */
export const TEMPLATE_SET_ID = 2;
/** Field length that marks a variable-length Information Element. */
export const VARIABLE_LENGTH = 0xffff;
/** Interface names longer than this many UTF-8 bytes are cut (Linux allows 15). */
export const MAX_INTERFACE_NAME_BYTES = 64;

/** IANA Information Element ids used by flowtap's templates. */
export const IE = {
  octetDeltaCount: 1,
  packetDeltaCount: 2,
  protocolIdentifier: 4,
  ipClassOfService: 5,
  tcpControlBits: 6,
  sourceTransportPort: 7,
  sourceIPv4Address: 8,
  /** ICMP type × 256 + code of IPv4 flows (0 for other protocols). */
  icmpTypeCodeIPv4: 32,
  ingressInterface: 10,
  destinationTransportPort: 11,
  destinationIPv4Address: 12,
  egressInterface: 14,
  sourceIPv6Address: 27,
  destinationIPv6Address: 28,
  sourceMacAddress: 56,
  flowDirection: 61,
  destinationMacAddress: 80,
  /** ICMPv6 type × 256 + code of IPv6 flows (0 for other protocols). */
  icmpTypeCodeIPv6: 139,
  interfaceName: 82,
  flowStartMilliseconds: 152,
  flowEndMilliseconds: 153,
  ethernetType: 256,
} as const;

/** Template ids (data set ids) of flowtap's four templates. */
export const TemplateId = {
  IPV4_INGRESS: 256,
  IPV4_EGRESS: 257,
  IPV6_INGRESS: 258,
  IPV6_EGRESS: 259,
} as const;

/** One field of a template: Information Element id and length in bytes. */
export type FieldSpecifier = readonly [ie: number, lengthBytes: number];

function fields(ipv6: boolean, egress: boolean): readonly FieldSpecifier[] {
  const addrBytes = ipv6 ? 16 : 4;
  return [
    [ipv6 ? IE.sourceIPv6Address : IE.sourceIPv4Address, addrBytes],
    [ipv6 ? IE.destinationIPv6Address : IE.destinationIPv4Address, addrBytes],
    [IE.sourceTransportPort, 2],
    [IE.destinationTransportPort, 2],
    [IE.protocolIdentifier, 1],
    [IE.octetDeltaCount, 8],
    [IE.packetDeltaCount, 8],
    [IE.flowStartMilliseconds, 8],
    [IE.flowEndMilliseconds, 8],
    [IE.flowDirection, 1],
    [IE.sourceMacAddress, 6],
    [IE.destinationMacAddress, 6],
    [IE.ethernetType, 2],
    [IE.tcpControlBits, 2],
    [IE.ipClassOfService, 1],
    [egress ? IE.egressInterface : IE.ingressInterface, 4],
    [IE.interfaceName, VARIABLE_LENGTH],
    // After the name, so the fixed offsets before it stay those of the first templates.
    [ipv6 ? IE.icmpTypeCodeIPv6 : IE.icmpTypeCodeIPv4, 2],
  ];
}

/** A template: its id and fields in record order. */
export interface IpfixTemplate {
  readonly id: number;
  readonly fields: readonly FieldSpecifier[];
  /** Bytes of a record's fixed-length fields: all but the variable-length interface name. */
  readonly fixedBytes: number;
  /** Bytes of a record before the interface name's length prefix. */
  readonly nameOffset: number;
}

function template(id: number, ipv6: boolean, egress: boolean): IpfixTemplate {
  const f = fields(ipv6, egress);
  const fixedBytes = f.reduce((sum, [, len]) => sum + (len === VARIABLE_LENGTH ? 0 : len), 0);
  const nameAt = f.findIndex(([, len]) => len === VARIABLE_LENGTH);
  const nameOffset = f.slice(0, nameAt).reduce((sum, [, len]) => sum + len, 0);
  return Object.freeze({ id, fields: f, fixedBytes, nameOffset });
}

/** The four templates, in template-id order. */
export const TEMPLATES: readonly IpfixTemplate[] = Object.freeze([
  template(TemplateId.IPV4_INGRESS, false, false),
  template(TemplateId.IPV4_EGRESS, false, true),
  template(TemplateId.IPV6_INGRESS, true, false),
  template(TemplateId.IPV6_EGRESS, true, true),
]);

/** Largest data record: IPv6 fixed part plus a 3-byte length prefix and the longest name. */
export const MAX_RECORD_BYTES = TEMPLATES[2].fixedBytes + 3 + MAX_INTERFACE_NAME_BYTES;

/** The template set holding all four templates (set header included). */
export function encodeTemplateSet(): Buffer {
  let length = SET_HEADER_BYTES;
  for (const t of TEMPLATES) length += 4 + 4 * t.fields.length;
  const out = Buffer.alloc(length);
  out.writeUInt16BE(TEMPLATE_SET_ID, 0);
  out.writeUInt16BE(length, 2);
  let p = SET_HEADER_BYTES;
  for (const t of TEMPLATES) {
    out.writeUInt16BE(t.id, p);
    out.writeUInt16BE(t.fields.length, p + 2);
    p += 4;
    for (const [ie, len] of t.fields) {
      out.writeUInt16BE(ie, p);
      out.writeUInt16BE(len, p + 2);
      p += 4;
    }
  }
  return out;
}
