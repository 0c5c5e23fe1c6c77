/**
 * IPFIX (RFC 7011) templates flowtap exports. A template has fixed fields, so a record's template
 * follows its shape, four bits of it ({@link TemplateShape}): the address family, the direction
 * (the interface goes in ingressInterface, IE 10, for INGRESS flows and egressInterface, IE 14,
 * for EGRESS ones), the family of the agent's address (exporterIPv4Address 130 or
 * exporterIPv6Address 131) and whether the record is bidirectional (RFC 5103: the reverse
 * direction's counters as the same elements with enterprise number 29305, placed first). Template id = 256 +
 * shape, so the four unidirectional IPv4-agent templates keep the ids 256-259 they always had,
 * and every template is sent in every template refresh (32 of them: five messages at the UDP size).
 *
 * VLAN ids go in every record (0 when untagged): vlanId (58) and dot1qVlanId (243) for the outer
 * tag, dot1qCustomerVlanId (245) for the inner one. A VXLAN tunnel's VNI goes in layer2SegmentId
 * (351), whose top byte is IANA's encapsulation code (0x01 VXLAN); IANA has no code for
 * Geneve, GRE or IP-in-IP and no element for a tunnel's outer addresses, so those are in JSON,
 * pbflow and the store only, and layer2SegmentId is 0 for them. ICMP type and code go in
 * icmpTypeCodeIPv4 (32) or icmpTypeCodeIPv6 (139) by family, as nfdump and tshark read them.
 * Field order here is the order the encoder writes; the ICMP field follows the variable-length
 * interface name.
 *
 * A record whose flow has TCP health (issue 14) uses the template of its shape with the HEALTH
 * bit, which appends the health fields after the ICMP field: IANA's droppedOctetDeltaCount (132)
 * and droppedPacketDeltaCount (133), then flowtap's own elements under {@link FLOWTAP_PEN} for what
 * IANA has no element for (RTTs, handshake time, retransmissions, the latest drop's reason, TCP
 * flags and state); a value not measured is 0. Flows without health keep the shorter templates.
 *
 * A record whose flow carried DNS (issue 15) uses the template of its shape with the DNS bit,
 * which appends flowtap's DNS elements after the others (after the health fields when both):
 * the latest message's id and flags, the latest answered query's latency, netobserv's dns_errno,
 * the counts and the parts present, then the query name (variable length, last). IANA has no DNS
 * Information Elements.
 */

/** IANA's port for IPFIX over UDP and TCP: the collector's default. */
export const DEFAULT_IPFIX_PORT = 4739;
/** IPFIX protocol version in every message header. */
export const IPFIX_VERSION = 10;
/** Bytes of an IPFIX message header. */
export const MESSAGE_HEADER_BYTES = 16;
/** Bytes of a set header (set id, length). */
export const SET_HEADER_BYTES = 4;
/** Set id of a template set. */
export const TEMPLATE_SET_ID = 2;
/** Set id of an options template set. */
export const OPTIONS_TEMPLATE_SET_ID = 3;
/** Lowest set id of a data set (the id of its template); 4..255 are reserved. */
export const MIN_DATA_SET_ID = 256;
/** Field length that marks a variable-length Information Element. */
export const VARIABLE_LENGTH = 0xffff;
/** Interface names longer than this many UTF-8 bytes are cut (Linux allows 15). */
export const MAX_INTERFACE_NAME_BYTES = 64;
/** RFC 5103's Private Enterprise Number: an IANA element under it is the element's reverse. */
export const REVERSE_PEN = 29_305;
/**
 * Private Enterprise Number of flowtap's own Information Elements ({@link FLOWTAP_IE}). flowtap
 * has no PEN of its own from IANA yet; until it has, its elements go under 32473, the number RFC
 * 5612 sets aside for examples, which no enterprise owns, so they shadow no one's elements. A
 * collector reads them by configuring this PEN and the element list in the README.
 */
export const FLOWTAP_PEN = 32_473;
/** DNS query names longer than this many bytes are cut (a DNS section keeps 64, as UTF-8 up to 128). */
export const MAX_DNS_NAME_BYTES = 128;
/** The enterprise bit of a field specifier's element id. */
export const ENTERPRISE_BIT = 0x8000;
/** layer2SegmentId's encapsulation code of VXLAN (top byte; IANA "Layer 2 segment ID" registry). */
export const LAYER2_SEGMENT_VXLAN = 0x01;

/**
 * IANA Information Element ids used by flowtap's templates, and those `flowtap collect` also
 * reads from other exporters' templates (src/export/ipfix/field-plan.ts).
 */
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
  vlanId: 58,
  flowDirection: 61,
  destinationMacAddress: 80,
  /** ICMPv6 type × 256 + code of IPv6 flows (0 for other protocols). */
  icmpTypeCodeIPv6: 139,
  interfaceName: 82,
  exporterIPv4Address: 130,
  exporterIPv6Address: 131,
  flowStartMilliseconds: 152,
  flowEndMilliseconds: 153,
  dot1qVlanId: 243,
  dot1qCustomerVlanId: 245,
  ethernetType: 256,
  layer2SegmentId: 351,
  droppedOctetDeltaCount: 132,
  droppedPacketDeltaCount: 133,
  // Read by the collector only.
  flowEndSysUpTime: 21,
  flowStartSysUpTime: 22,
  ipVersion: 60,
  octetTotalCount: 85,
  packetTotalCount: 86,
  flowStartSeconds: 150,
  flowEndSeconds: 151,
  flowStartMicroseconds: 154,
  flowEndMicroseconds: 155,
  flowStartNanoseconds: 156,
  flowEndNanoseconds: 157,
  flowStartDeltaMicroseconds: 158,
  flowEndDeltaMicroseconds: 159,
  systemInitTimeMilliseconds: 160,
  icmpTypeIPv4: 176,
  icmpCodeIPv4: 177,
  icmpTypeIPv6: 178,
  icmpCodeIPv6: 179,
  ipDiffServCodePoint: 195,
} as const;

/** flowtap's Information Elements under {@link FLOWTAP_PEN} (README, "IPFIX elements"). */
export const FLOWTAP_IE = {
  /** unsigned64: the latest smoothed RTT (tcp_sock srtt) of the flow's socket, ns; 0 not measured. */
  tcpRttLastNanoseconds: 1,
  /** unsigned64: the smallest smoothed RTT sampled, ns. */
  tcpRttMinNanoseconds: 2,
  /** unsigned64: the largest smoothed RTT sampled, ns. */
  tcpRttMaxNanoseconds: 3,
  /** unsigned32: RTT samples taken. */
  tcpRttSampleCount: 4,
  /** unsigned64: SYN → SYN-ACK (client side) or SYN-ACK → ACK (server side), ns; 0 not measured. */
  tcpHandshakeRttNanoseconds: 5,
  /** unsigned64: retransmitted TCP segments of the flow. */
  tcpRetransmittedPacketDeltaCount: 6,
  /** unsigned64: bytes of those segments. */
  tcpRetransmittedOctetDeltaCount: 7,
  /** unsigned32: the kernel's reason for the latest drop (Linux `enum skb_drop_reason`). */
  dropLatestReason: 8,
  /** unsigned16: TCP flags of the latest dropped packet (as tcpControlBits). */
  dropLatestTcpControlBits: 9,
  /** unsigned8: TCP state of its socket (Linux TCP_ESTABLISHED = 1 ...), 0 unknown. */
  dropLatestTcpState: 10,
  /** unsigned16: id of the flow's latest DNS message (0 without one). */
  dnsId: 11,
  /** unsigned16: its flags word, the response code in the low 4 bits. */
  dnsFlags: 12,
  /** unsigned64: latency of the latest answered query (response time - query time), ns; 0 none. */
  dnsLatencyNanoseconds: 13,
  /** unsigned8: netobserv's dns_errno (2 a response without its query, 14, 22 malformed). */
  dnsErrno: 14,
  /** unsigned32: DNS queries of the flow. */
  dnsQueryCount: 15,
  /** unsigned32: DNS responses of the flow that matched a query. */
  dnsAnswerCount: 16,
  /** unsigned32: queries of the flow that got no response in time. */
  dnsUnansweredCount: 17,
  /** unsigned32: DNS messages of the flow that did not parse. */
  dnsMalformedCount: 18,
  /** unsigned8: which DNS parts are present: FLOWTAP_DNS_* (1 header, 2 name, 4 name cut, 8 latency). */
  dnsRecordFlags: 19,
  /** string: the latest message's first question name (dotted, lower-cased, at most 64 bytes kept). */
  dnsQueryName: 20,
} as const;

/** Bits of a record's shape; the template id is `TEMPLATE_ID_BASE + shape`. */
export const TemplateShape = {
  /** EGRESS flow: egressInterface instead of ingressInterface. */
  EGRESS: 1,
  /** IPv6 flow: IPv6 address elements. */
  IPV6: 2,
  /** The agent's address is IPv6: exporterIPv6Address instead of exporterIPv4Address. */
  AGENT_IPV6: 4,
  /** Bidirectional record: RFC 5103 reverse elements follow the forward ones. */
  BIFLOW: 8,
  /** The flow has TCP health: the health fields follow the others. */
  HEALTH: 16,
  /** The flow carried DNS: flowtap's DNS elements follow the others. */
  DNS: 32,
} as const;

/** Number of shapes, hence of templates. */
export const SHAPE_COUNT = 64;
/** Id of the template of shape 0. */
export const TEMPLATE_ID_BASE = 256;

/** Template ids of the unidirectional templates with an IPv4 agent address (unchanged since v1). */
export const TemplateId = {
  IPV4_INGRESS: 256,
  IPV4_EGRESS: 257,
  IPV6_INGRESS: 258,
  IPV6_EGRESS: 259,
} as const;

/** One field of a template: element id, length in bytes, and the enterprise number (0: IANA). */
export type FieldSpecifier = readonly [ie: number, lengthBytes: number, enterprise?: number];

function fields(shape: number): readonly FieldSpecifier[] {
  const ipv6 = (shape & TemplateShape.IPV6) !== 0;
  const egress = (shape & TemplateShape.EGRESS) !== 0;
  const agentIpv6 = (shape & TemplateShape.AGENT_IPV6) !== 0;
  const addrBytes = ipv6 ? 16 : 4;
  const out: FieldSpecifier[] = [];
  if (shape & TemplateShape.BIFLOW) {
    // First: nfdump 1.7 reads reverse octets and packets as its "out" counters but takes the
    // other reverse elements for the forward ones, so the forward ones must come after them.
    out.push(
      [IE.octetDeltaCount, 8, REVERSE_PEN],
      [IE.packetDeltaCount, 8, REVERSE_PEN],
      [IE.flowStartMilliseconds, 8, REVERSE_PEN],
      [IE.flowEndMilliseconds, 8, REVERSE_PEN],
      [IE.tcpControlBits, 2, REVERSE_PEN],
      [IE.ipClassOfService, 1, REVERSE_PEN],
    );
  }
  out.push(
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
    [agentIpv6 ? IE.exporterIPv6Address : IE.exporterIPv4Address, agentIpv6 ? 16 : 4],
    [IE.vlanId, 2],
    [IE.dot1qVlanId, 2],
    [IE.dot1qCustomerVlanId, 2],
    [IE.layer2SegmentId, 8],
    [IE.interfaceName, VARIABLE_LENGTH],
    // After the name, so the fixed offsets before it stay those of the earlier templates.
    [ipv6 ? IE.icmpTypeCodeIPv6 : IE.icmpTypeCodeIPv4, 2],
  );
  if (shape & TemplateShape.HEALTH) out.push(...HEALTH_FIELDS);
  if (shape & TemplateShape.DNS) out.push(...DNS_FIELDS);
  return out;
}

/** The health fields, in the order the encoder writes them (HEALTH_BYTES in all). */
const HEALTH_FIELDS: readonly FieldSpecifier[] = [
  [IE.droppedOctetDeltaCount, 8],
  [IE.droppedPacketDeltaCount, 8],
  [FLOWTAP_IE.tcpRttLastNanoseconds, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpRttMinNanoseconds, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpRttMaxNanoseconds, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpRttSampleCount, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpHandshakeRttNanoseconds, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpRetransmittedPacketDeltaCount, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.tcpRetransmittedOctetDeltaCount, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.dropLatestReason, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.dropLatestTcpControlBits, 2, FLOWTAP_PEN],
  [FLOWTAP_IE.dropLatestTcpState, 1, FLOWTAP_PEN],
];

/** Bytes of the health fields of a record. */
export const HEALTH_BYTES = HEALTH_FIELDS.reduce((sum, [, len]) => sum + len, 0);

/** The DNS fields, in the order the encoder writes them; the name last (variable length). */
const DNS_FIELDS: readonly FieldSpecifier[] = [
  [FLOWTAP_IE.dnsId, 2, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsFlags, 2, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsLatencyNanoseconds, 8, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsErrno, 1, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsQueryCount, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsAnswerCount, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsUnansweredCount, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsMalformedCount, 4, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsRecordFlags, 1, FLOWTAP_PEN],
  [FLOWTAP_IE.dnsQueryName, VARIABLE_LENGTH, FLOWTAP_PEN],
];

/** A template: its id and fields in record order. */
export interface IpfixTemplate {
  readonly id: number;
  readonly fields: readonly FieldSpecifier[];
  /** Bytes of a record's fixed-length fields: all but the variable-length ones (names). */
  readonly fixedBytes: number;
  /** Bytes of a record before the interface name's length prefix. */
  readonly nameOffset: number;
}

function template(shape: number): IpfixTemplate {
  const f = fields(shape);
  const fixedBytes = f.reduce((sum, [, len]) => sum + (len === VARIABLE_LENGTH ? 0 : len), 0);
  const nameAt = f.findIndex(([, len]) => len === VARIABLE_LENGTH);
  const nameOffset = f.slice(0, nameAt).reduce((sum, [, len]) => sum + len, 0);
  return Object.freeze({ id: TEMPLATE_ID_BASE + shape, fields: f, fixedBytes, nameOffset });
}

/** Every template, indexed by shape. */
export const TEMPLATES: readonly IpfixTemplate[] = Object.freeze(
  Array.from({ length: SHAPE_COUNT }, (_, shape) => template(shape)),
);

/**
 * Largest data record: the largest fixed part plus the longest interface name and DNS name, each
 * with a length prefix of up to 3 bytes.
 */
export const MAX_RECORD_BYTES =
  Math.max(...TEMPLATES.map((t) => t.fixedBytes)) + 3 + MAX_INTERFACE_NAME_BYTES + 3 + MAX_DNS_NAME_BYTES;

/** Bytes of one template record (header and field specifiers) in a template set. */
function templateRecordBytes(t: IpfixTemplate): number {
  return 4 + t.fields.reduce((sum, [, , pen]) => sum + (pen ? 8 : 4), 0);
}

/**
 * The templates as template sets (set header included) of at most `maxSetBytes` each, in
 * template-id order: one set per message, so each fits the message bound.
 */
export function encodeTemplateSets(maxSetBytes: number): Buffer[] {
  const sets: Buffer[] = [];
  let group: IpfixTemplate[] = [];
  let groupBytes = SET_HEADER_BYTES;
  const flush = () => {
    if (group.length === 0) return;
    const out = Buffer.alloc(groupBytes);
    out.writeUInt16BE(TEMPLATE_SET_ID, 0);
    out.writeUInt16BE(groupBytes, 2);
    let p = SET_HEADER_BYTES;
    for (const t of group) {
      out.writeUInt16BE(t.id, p);
      out.writeUInt16BE(t.fields.length, p + 2);
      p += 4;
      for (const [ie, len, pen] of t.fields) {
        out.writeUInt16BE(pen ? ie | ENTERPRISE_BIT : ie, p);
        out.writeUInt16BE(len, p + 2);
        p += 4;
        if (pen) {
          out.writeUInt32BE(pen, p);
          p += 4;
        }
      }
    }
    sets.push(out);
    group = [];
    groupBytes = SET_HEADER_BYTES;
  };
  for (const t of TEMPLATES) {
    const bytes = templateRecordBytes(t);
    if (groupBytes + bytes > maxSetBytes) flush();
    group.push(t);
    groupBytes += bytes;
  }
  flush();
  return sets;
}
