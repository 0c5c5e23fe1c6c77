/**
 * What the collector does with each field of an IPFIX template (RFC 7011 §3.4.1), decided once
 * when the template arrives: a template becomes a {@link TemplatePlan}, one small integer (the
 * field's kind) and a length per field, so decoding a data record is a loop over two typed
 * arrays with no lookup by element id.
 *
 * Elements flowtap's own templates carry (templates.ts) are read into the same v2 row fields
 * they were exported from; so are the common ones of other exporters (softflowd, nProbe, YAF,
 * pmacct): total counters, seconds/microseconds/nanoseconds and system-uptime times, DSCP,
 * ICMP type and code as separate elements, IP version. RFC 5103 reverse elements (enterprise
 * number 29305) fill the reverse section of the row, and flowtap's own health and DNS elements
 * (FLOWTAP_PEN, with IANA's dropped octets and packets) its health and DNS sections. Any other element, and a known element
 * with a length the row cannot hold, is skipped by its length (RFC 7011 §8: a collector ignores
 * what it does not understand).
 */
import { V2 } from '../../codec/v2-layout.ts';
import { FLOWTAP_IE, FLOWTAP_PEN, IE, REVERSE_PEN, VARIABLE_LENGTH } from './templates.ts';

/** How one field of a data record is read. */
export const FieldKind = {
  /** Not read: skipped by its length. */
  SKIP: 0,
  /** Unsigned big-endian integer (reduced-size encoding allowed) into a little-endian row field. */
  UINT: 1,
  /** Bytes copied as they are (MAC addresses). */
  BYTES: 2,
  /** IPv4 address, written IPv4-mapped; marks the record IPv4. */
  IPV4: 3,
  /** IPv6 address; marks the record IPv6. */
  IPV6: 4,
  /** exporterIPv4Address: the agent's address (0.0.0.0 leaves it unset). */
  AGENT_IPV4: 5,
  /** exporterIPv6Address. */
  AGENT_IPV6: 6,
  /** ipClassOfService: the DSCP is its upper six bits. */
  TOS: 7,
  /** ipDiffServCodePoint. */
  DSCP: 8,
  /** icmpTypeCodeIPv4/IPv6: type × 256 + code. */
  ICMP_TYPE_CODE: 9,
  /** ingressInterface. */
  INGRESS_INTERFACE: 10,
  /** egressInterface. */
  EGRESS_INTERFACE: 11,
  /** flowDirection (0 ingress, 1 egress). */
  DIRECTION: 12,
  /** ipVersion: the family when no address says it. */
  IP_VERSION: 13,
  /** interfaceName (variable length, UTF-8). */
  INTERFACE_NAME: 14,
  /** layer2SegmentId: a VXLAN VNI when its top byte is IANA's VXLAN code. */
  LAYER2_SEGMENT: 15,
  /** Unix seconds (u32). */
  TIME_SECONDS: 16,
  /** Unix milliseconds (u64). */
  TIME_MILLISECONDS: 17,
  /** NTP timestamp (dateTimeMicroseconds/Nanoseconds: seconds since 1900 and a 2^-32 fraction). */
  TIME_NTP: 18,
  /** Milliseconds since the exporter's systemInitTimeMilliseconds (u32). */
  TIME_SYS_UP: 19,
  /** Microseconds before the message's export time (u32). */
  TIME_DELTA_US: 20,
  /** systemInitTimeMilliseconds (u64 Unix milliseconds): the base of TIME_SYS_UP. */
  SYSTEM_INIT_MS: 21,
  /** flowtap's dnsQueryName: UTF-8 of the name's bytes, back to the bytes the row keeps. */
  DNS_NAME: 22,
} as const;

/** Which of a record's four times a time field sets (`TemplatePlan.targets` of a time kind). */
export const TimeSlot = { START: 0, END: 1, REV_START: 2, REV_END: 3 } as const;

/** A template compiled for decoding. */
export interface TemplatePlan {
  /** Template id (256..65535). */
  readonly id: number;
  /** Field kinds ({@link FieldKind}), in record order. */
  readonly kinds: Uint8Array;
  /** Field lengths; {@link VARIABLE_LENGTH} for a variable-length field. */
  readonly lengths: Uint16Array;
  /** Per field: the row offset written (UINT, BYTES, IPV4, IPV6, TOS, DSCP) or the time slot. */
  readonly targets: Int16Array;
  /** Per UINT field: bytes of the row field it fills (a reduced-size value is zero-extended). */
  readonly widths: Uint8Array;
  /** Bytes of the shortest record (a variable-length field takes at least its 1-byte length). */
  readonly minRecordBytes: number;
  /** True when the template has RFC 5103 reverse counters: its records are bidirectional. */
  readonly reverse: boolean;
  /** True when the template has flowtap's RTT or handshake elements: the row's health flags follow their values. */
  readonly health: boolean;
  /** True for an options template (its records describe the exporter, not flows). */
  readonly options: boolean;
}

/** A field specifier as read from a template record. */
export interface FieldSpec {
  readonly ie: number;
  readonly length: number;
  /** Enterprise number; 0 for IANA elements. */
  readonly enterprise: number;
}

/** Row fields an UINT element is read into, with the widest value each holds (bytes). */
const UINT_TARGETS: ReadonlyMap<number, readonly [offset: number, widthBytes: number]> = new Map([
  [IE.octetDeltaCount, [V2.BYTES, 8]],
  [IE.octetTotalCount, [V2.BYTES, 8]],
  [IE.packetDeltaCount, [V2.PACKETS, 8]],
  [IE.packetTotalCount, [V2.PACKETS, 8]],
  [IE.protocolIdentifier, [V2.TRANSPORT_PROTOCOL, 1]],
  [IE.tcpControlBits, [V2.TCP_FLAGS, 2]],
  [IE.sourceTransportPort, [V2.SRC_PORT, 2]],
  [IE.destinationTransportPort, [V2.DST_PORT, 2]],
  [IE.vlanId, [V2.VLAN_OUTER, 2]],
  [IE.dot1qVlanId, [V2.VLAN_OUTER, 2]],
  [IE.dot1qCustomerVlanId, [V2.VLAN_INNER, 2]],
  [IE.ethernetType, [V2.ETH_PROTOCOL, 2]],
  [IE.icmpTypeIPv4, [V2.ICMP_TYPE, 1]],
  [IE.icmpTypeIPv6, [V2.ICMP_TYPE, 1]],
  [IE.icmpCodeIPv4, [V2.ICMP_CODE, 1]],
  [IE.icmpCodeIPv6, [V2.ICMP_CODE, 1]],
  [IE.droppedOctetDeltaCount, [V2.DROP_BYTES, 8]],
  [IE.droppedPacketDeltaCount, [V2.DROP_PACKETS, 8]],
]);

/** flowtap's own elements (FLOWTAP_PEN) read as UINT: the health and DNS sections of the row. */
const FLOWTAP_UINT_TARGETS: ReadonlyMap<number, readonly [offset: number, widthBytes: number]> = new Map([
  [FLOWTAP_IE.tcpRttLastNanoseconds, [V2.RTT_LAST_NS, 8]],
  [FLOWTAP_IE.tcpRttMinNanoseconds, [V2.RTT_MIN_NS, 8]],
  [FLOWTAP_IE.tcpRttMaxNanoseconds, [V2.RTT_MAX_NS, 8]],
  [FLOWTAP_IE.tcpRttSampleCount, [V2.RTT_SAMPLES, 4]],
  [FLOWTAP_IE.tcpHandshakeRttNanoseconds, [V2.HANDSHAKE_RTT_NS, 8]],
  [FLOWTAP_IE.tcpRetransmittedPacketDeltaCount, [V2.RETRANS_PACKETS, 8]],
  [FLOWTAP_IE.tcpRetransmittedOctetDeltaCount, [V2.RETRANS_BYTES, 8]],
  [FLOWTAP_IE.dropLatestReason, [V2.DROP_LATEST_CAUSE, 4]],
  [FLOWTAP_IE.dropLatestTcpControlBits, [V2.DROP_LATEST_FLAGS, 2]],
  [FLOWTAP_IE.dropLatestTcpState, [V2.DROP_LATEST_STATE, 1]],
  [FLOWTAP_IE.dnsId, [V2.DNS_ID, 2]],
  [FLOWTAP_IE.dnsFlags, [V2.DNS_FLAGS, 2]],
  [FLOWTAP_IE.dnsLatencyNanoseconds, [V2.DNS_LATENCY_NS, 8]],
  [FLOWTAP_IE.dnsErrno, [V2.DNS_ERRNO, 1]],
  [FLOWTAP_IE.dnsQueryCount, [V2.DNS_QUERIES, 4]],
  [FLOWTAP_IE.dnsAnswerCount, [V2.DNS_ANSWERS, 4]],
  [FLOWTAP_IE.dnsUnansweredCount, [V2.DNS_UNANSWERED, 4]],
  [FLOWTAP_IE.dnsMalformedCount, [V2.DNS_MALFORMED, 4]],
  [FLOWTAP_IE.dnsRecordFlags, [V2.DNS_RECORD_FLAGS, 1]],
]);

/** flowtap's elements whose values decide the row's health flags. */
const HEALTH_FLAG_ELEMENTS: ReadonlySet<number> = new Set([
  FLOWTAP_IE.tcpRttLastNanoseconds,
  FLOWTAP_IE.tcpRttSampleCount,
  FLOWTAP_IE.tcpHandshakeRttNanoseconds,
]);

/** The same for reverse (PEN 29305) elements. */
const REVERSE_UINT_TARGETS: ReadonlyMap<number, readonly [offset: number, widthBytes: number]> = new Map([
  [IE.octetDeltaCount, [V2.REV_BYTES, 8]],
  [IE.octetTotalCount, [V2.REV_BYTES, 8]],
  [IE.packetDeltaCount, [V2.REV_PACKETS, 8]],
  [IE.packetTotalCount, [V2.REV_PACKETS, 8]],
  [IE.tcpControlBits, [V2.REV_TCP_FLAGS, 2]],
]);

/** Time elements: kind, slot (forward start/end) and the one length the kind reads. */
const TIME_ELEMENTS: ReadonlyMap<number, readonly [kind: number, slot: number, lengthBytes: number]> =
  new Map([
    [IE.flowStartSeconds, [FieldKind.TIME_SECONDS, TimeSlot.START, 4]],
    [IE.flowEndSeconds, [FieldKind.TIME_SECONDS, TimeSlot.END, 4]],
    [IE.flowStartMilliseconds, [FieldKind.TIME_MILLISECONDS, TimeSlot.START, 8]],
    [IE.flowEndMilliseconds, [FieldKind.TIME_MILLISECONDS, TimeSlot.END, 8]],
    [IE.flowStartMicroseconds, [FieldKind.TIME_NTP, TimeSlot.START, 8]],
    [IE.flowEndMicroseconds, [FieldKind.TIME_NTP, TimeSlot.END, 8]],
    [IE.flowStartNanoseconds, [FieldKind.TIME_NTP, TimeSlot.START, 8]],
    [IE.flowEndNanoseconds, [FieldKind.TIME_NTP, TimeSlot.END, 8]],
    [IE.flowStartSysUpTime, [FieldKind.TIME_SYS_UP, TimeSlot.START, 4]],
    [IE.flowEndSysUpTime, [FieldKind.TIME_SYS_UP, TimeSlot.END, 4]],
    [IE.flowStartDeltaMicroseconds, [FieldKind.TIME_DELTA_US, TimeSlot.START, 4]],
    [IE.flowEndDeltaMicroseconds, [FieldKind.TIME_DELTA_US, TimeSlot.END, 4]],
  ]);

/** Kind, target and (UINT) width of one field, or SKIP. */
function classify(spec: FieldSpec): readonly [kind: number, target: number, widthBytes?: number] {
  const { ie, length, enterprise } = spec;
  const skip = [FieldKind.SKIP, 0] as const;
  if (enterprise === REVERSE_PEN) {
    const uint = REVERSE_UINT_TARGETS.get(ie);
    if (uint) return length >= 1 && length <= uint[1] ? [FieldKind.UINT, uint[0], uint[1]] : skip;
    const time = TIME_ELEMENTS.get(ie);
    if (time) {
      const slot = time[1] === TimeSlot.START ? TimeSlot.REV_START : TimeSlot.REV_END;
      return length === time[2] ? [time[0], slot] : skip;
    }
    if (ie === IE.ipClassOfService && length === 1) return [FieldKind.TOS, V2.REV_DSCP];
    if (ie === IE.ipDiffServCodePoint && length === 1) return [FieldKind.DSCP, V2.REV_DSCP];
    return skip;
  }
  if (enterprise === FLOWTAP_PEN) {
    const uint = FLOWTAP_UINT_TARGETS.get(ie);
    if (uint) return length >= 1 && length <= uint[1] ? [FieldKind.UINT, uint[0], uint[1]] : skip;
    return ie === FLOWTAP_IE.dnsQueryName ? [FieldKind.DNS_NAME, V2.DNS_NAME] : skip;
  }
  if (enterprise !== 0) return skip;
  const uint = UINT_TARGETS.get(ie);
  if (uint) return length >= 1 && length <= uint[1] ? [FieldKind.UINT, uint[0], uint[1]] : skip;
  const time = TIME_ELEMENTS.get(ie);
  if (time) return length === time[2] ? [time[0], time[1]] : skip;
  switch (ie) {
    case IE.sourceIPv4Address:
      return length === 4 ? [FieldKind.IPV4, V2.SRC_ADDR] : skip;
    case IE.destinationIPv4Address:
      return length === 4 ? [FieldKind.IPV4, V2.DST_ADDR] : skip;
    case IE.sourceIPv6Address:
      return length === 16 ? [FieldKind.IPV6, V2.SRC_ADDR] : skip;
    case IE.destinationIPv6Address:
      return length === 16 ? [FieldKind.IPV6, V2.DST_ADDR] : skip;
    case IE.sourceMacAddress:
      return length === 6 ? [FieldKind.BYTES, V2.SRC_MAC] : skip;
    case IE.destinationMacAddress:
      return length === 6 ? [FieldKind.BYTES, V2.DST_MAC] : skip;
    case IE.exporterIPv4Address:
      return length === 4 ? [FieldKind.AGENT_IPV4, V2.AGENT_IP] : skip;
    case IE.exporterIPv6Address:
      return length === 16 ? [FieldKind.AGENT_IPV6, V2.AGENT_IP] : skip;
    case IE.ipClassOfService:
      return length === 1 ? [FieldKind.TOS, V2.DSCP] : skip;
    case IE.ipDiffServCodePoint:
      return length === 1 ? [FieldKind.DSCP, V2.DSCP] : skip;
    case IE.icmpTypeCodeIPv4:
    case IE.icmpTypeCodeIPv6:
      return length === 2 ? [FieldKind.ICMP_TYPE_CODE, V2.ICMP_TYPE] : skip;
    case IE.ingressInterface:
      return length >= 1 && length <= 4 ? [FieldKind.INGRESS_INTERFACE, 0] : skip;
    case IE.egressInterface:
      return length >= 1 && length <= 4 ? [FieldKind.EGRESS_INTERFACE, 0] : skip;
    case IE.flowDirection:
      return length === 1 ? [FieldKind.DIRECTION, V2.DIRECTION] : skip;
    case IE.ipVersion:
      return length === 1 ? [FieldKind.IP_VERSION, 0] : skip;
    case IE.interfaceName:
      // Variable-length as flowtap sends it, or fixed and NUL-padded as softflowd's options.
      return [FieldKind.INTERFACE_NAME, 0];
    case IE.layer2SegmentId:
      return length === 8 ? [FieldKind.LAYER2_SEGMENT, 0] : skip;
    case IE.systemInitTimeMilliseconds:
      return length === 8 ? [FieldKind.SYSTEM_INIT_MS, 0] : skip;
    default:
      return skip;
  }
}

/**
 * Compiles a template's fields. For an options template only systemInitTimeMilliseconds is
 * read (the base of system-uptime times); its other fields are skipped.
 */
export function compileTemplate(id: number, fields: readonly FieldSpec[], options: boolean): TemplatePlan {
  const n = fields.length;
  const kinds = new Uint8Array(n);
  const lengths = new Uint16Array(n);
  const targets = new Int16Array(n);
  const widths = new Uint8Array(n);
  let minRecordBytes = 0;
  let reverse = false;
  let health = false;
  for (let f = 0; f < n; f++) {
    const spec = fields[f];
    let [kind, target, width = 0] = classify(spec);
    if (options && kind !== FieldKind.SYSTEM_INIT_MS) kind = FieldKind.SKIP;
    const text = kind === FieldKind.INTERFACE_NAME || kind === FieldKind.DNS_NAME;
    if (spec.length === VARIABLE_LENGTH && !text) kind = FieldKind.SKIP;
    if (text && spec.length === 0) kind = FieldKind.SKIP;
    kinds[f] = kind;
    lengths[f] = spec.length;
    targets[f] = kind === FieldKind.SKIP ? 0 : target;
    widths[f] = kind === FieldKind.UINT ? width : 0;
    minRecordBytes += spec.length === VARIABLE_LENGTH ? 1 : spec.length;
    if (
      spec.enterprise === REVERSE_PEN &&
      kind === FieldKind.UINT &&
      (target === V2.REV_BYTES || target === V2.REV_PACKETS)
    ) {
      reverse = true;
    }
    if (spec.enterprise === FLOWTAP_PEN && kind === FieldKind.UINT && HEALTH_FLAG_ELEMENTS.has(spec.ie)) {
      health = true;
    }
  }
  return { id, kinds, lengths, targets, widths, minRecordBytes, reverse, health, options };
}
