/**
 * Packet headers → flow key, with exactly the meaning of the kernel program (bpf/flows.bpf.c;
 * specified in docs/flow-key.md, checked against test/vectors/packets.ts). Parsers write the key
 * fields, TCP flags and DSCP straight into a zeroed v2 row (`RecordBatchBuilder.appendRow()`) and
 * return a status number, so a packet costs no object.
 *
 * `end` is the end of the bytes available (a capture's captured length): a header that does not
 * fit before it is `PARSE_TRUNCATED`, which the kernel counts as a parse error; the caller tells a
 * frame that really is short from one the capture's snap length cut.
 */
import { V2 } from '../../codec/v2-layout.ts';

/** The headers were parsed; the row holds the key. */
export const PARSE_OK = 0;
/** A header the key needs does not fit in the bytes available. */
export const PARSE_TRUNCATED = 1;
/** A header holds a value that makes it unusable (IP version, IHL < 5, TCP data offset < 5). */
export const PARSE_INVALID = 2;

const ETHERNET_HEADER_BYTES = 14;
const VLAN_TAG_BYTES = 4;
/** Tags skipped before the inner type is taken as is (the kernel program's MAX_VLAN_TAGS). */
const MAX_VLAN_TAGS = 2;
/** Extension headers skipped before parsing stops (the kernel program's MAX_IPV6_EXT_HEADERS). */
const MAX_IPV6_EXT_HEADERS = 8;
const IPV4_HEADER_BYTES = 20;
const IPV6_HEADER_BYTES = 40;

const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

const PROTO_HOPOPTS = 0;
const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ROUTING = 43;
const PROTO_FRAGMENT = 44;
const PROTO_AH = 51;
const PROTO_ICMPV6 = 58;
const PROTO_DSTOPTS = 60;
const PROTO_SCTP = 132;

/**
 * Parses the Ethernet frame `f[off, end)` into the row at `row` of `out`: MACs, then as
 * {@link parseFromEtherType}.
 */
export function parseEthernetFrame(
  f: Uint8Array,
  off: number,
  end: number,
  out: Uint8Array,
  row: number,
): number {
  if (end - off < ETHERNET_HEADER_BYTES) return PARSE_TRUNCATED;
  const dst = row + V2.DST_MAC;
  const src = row + V2.SRC_MAC;
  for (let i = 0; i < 6; i++) {
    out[dst + i] = f[off + i];
    out[src + i] = f[off + 6 + i];
  }
  return parseFromEtherType(f, off + ETHERNET_HEADER_BYTES, end, (f[off + 12] << 8) | f[off + 13], out, row);
}

/**
 * The outer VLAN id of a frame whose Ethernet type field (`etype`, host order) is followed by
 * `f[off, end)`: the tag's id when `etype` is 802.1Q or 802.1ad, else -1 (untagged or cut short).
 */
export function vlanIdAfterEtherType(f: Uint8Array, off: number, end: number, etype: number): number {
  if ((etype !== ETH_P_8021Q && etype !== ETH_P_8021AD) || end - off < VLAN_TAG_BYTES) return -1;
  return ((f[off] << 8) | f[off + 1]) & 0x0fff;
}

/** The outer VLAN id of the Ethernet frame `f[off, end)`, or -1 when it carries no tag. */
export function outerVlanId(f: Uint8Array, off: number, end: number): number {
  if (end - off < ETHERNET_HEADER_BYTES) return -1;
  return vlanIdAfterEtherType(f, off + ETHERNET_HEADER_BYTES, end, (f[off + 12] << 8) | f[off + 13]);
}

/**
 * Parses what follows an Ethernet type field (`etype`, host order) starting at `off`: up to two
 * VLAN tags, then IPv4 or IPv6; any other type is a flow of that type without addresses.
 */
export function parseFromEtherType(
  f: Uint8Array,
  off: number,
  end: number,
  etype: number,
  out: Uint8Array,
  row: number,
): number {
  let type = etype;
  let at = off;
  for (let i = 0; i < MAX_VLAN_TAGS && (type === ETH_P_8021Q || type === ETH_P_8021AD); i++) {
    if (end - at < VLAN_TAG_BYTES) return PARSE_TRUNCATED;
    type = (f[at + 2] << 8) | f[at + 3];
    at += VLAN_TAG_BYTES;
  }
  out[row + V2.ETH_PROTOCOL] = type & 0xff;
  out[row + V2.ETH_PROTOCOL + 1] = type >>> 8;
  if (type === ETH_P_IPV4) return parseIpv4(f, at, end, out, row);
  if (type === ETH_P_IPV6) return parseIpv6(f, at, end, out, row);
  return PARSE_OK;
}

/**
 * Parses a bare IP packet (no link-layer header) by its version nibble, setting the Ethernet
 * type to the one the kernel would have seen on an Ethernet device.
 */
export function parseIpPacket(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
  if (end - off < 1) return PARSE_TRUNCATED;
  const version = f[off] >>> 4;
  const type = version === 4 ? ETH_P_IPV4 : version === 6 ? ETH_P_IPV6 : 0;
  if (type === 0) return PARSE_INVALID;
  out[row + V2.ETH_PROTOCOL] = type & 0xff;
  out[row + V2.ETH_PROTOCOL + 1] = type >>> 8;
  return type === ETH_P_IPV4 ? parseIpv4(f, off, end, out, row) : parseIpv6(f, off, end, out, row);
}

function parseIpv4(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
  if (end - off < IPV4_HEADER_BYTES) return PARSE_TRUNCATED;
  const ihl = f[off] & 0x0f;
  if (f[off] >>> 4 !== 4 || ihl < 5) return PARSE_INVALID;
  out[row + V2.DSCP] = f[off + 1] >>> 2;
  const src = row + V2.SRC_ADDR;
  const dst = row + V2.DST_ADDR;
  out[src + 10] = 0xff;
  out[src + 11] = 0xff;
  out[dst + 10] = 0xff;
  out[dst + 11] = 0xff;
  for (let i = 0; i < 4; i++) {
    out[src + 12 + i] = f[off + 12 + i];
    out[dst + 12 + i] = f[off + 16 + i];
  }
  const proto = f[off + 9];
  // Only the first fragment carries the transport header; later ones count without ports.
  if ((((f[off + 6] & 0x1f) << 8) | f[off + 7]) !== 0) {
    out[row + V2.TRANSPORT_PROTOCOL] = proto;
    return PARSE_OK;
  }
  return parseTransport(f, off + ihl * 4, end, proto, out, row);
}

function parseIpv6(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
  if (end - off < IPV6_HEADER_BYTES) return PARSE_TRUNCATED;
  if (f[off] >>> 4 !== 6) return PARSE_INVALID;
  out[row + V2.DSCP] = ((f[off] & 0x0f) << 2) | (f[off + 1] >>> 6);
  const src = row + V2.SRC_ADDR;
  const dst = row + V2.DST_ADDR;
  for (let i = 0; i < 16; i++) {
    out[src + i] = f[off + 8 + i];
    out[dst + i] = f[off + 24 + i];
  }
  let next = f[off + 6];
  let at = off + IPV6_HEADER_BYTES;
  for (let i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
    if (
      next !== PROTO_HOPOPTS &&
      next !== PROTO_ROUTING &&
      next !== PROTO_DSTOPTS &&
      next !== PROTO_FRAGMENT &&
      next !== PROTO_AH
    )
      break;
    // next header, length, and for a fragment header its offset: the kernel loads these 4 bytes.
    if (end - at < 4) return PARSE_TRUNCATED;
    const headerType = next;
    next = f[at];
    if (headerType === PROTO_FRAGMENT) {
      if ((((f[at + 2] << 8) | f[at + 3]) & 0xfff8) !== 0) {
        out[row + V2.TRANSPORT_PROTOCOL] = next;
        return PARSE_OK;
      }
      at += 8;
    } else if (headerType === PROTO_AH) {
      at += (f[at + 1] + 2) * 4;
    } else {
      at += (f[at + 1] + 1) * 8;
    }
  }
  return parseTransport(f, at, end, next, out, row);
}

function parseTransport(
  f: Uint8Array,
  off: number,
  end: number,
  proto: number,
  out: Uint8Array,
  row: number,
): number {
  out[row + V2.TRANSPORT_PROTOCOL] = proto;
  const available = end - off;
  switch (proto) {
    case PROTO_TCP: {
      // ports (4), seq (4), ack (4), data offset + NS (1), flags (1)
      if (available < 14) return PARSE_TRUNCATED;
      if (f[off + 12] >>> 4 < 5) return PARSE_INVALID;
      out[row + V2.TCP_FLAGS] = f[off + 13];
      out[row + V2.TCP_FLAGS + 1] = f[off + 12] & 1;
      break;
    }
    case PROTO_UDP:
      if (available < 8) return PARSE_TRUNCATED;
      break;
    case PROTO_SCTP:
      if (available < 12) return PARSE_TRUNCATED;
      break;
    case PROTO_ICMP:
    case PROTO_ICMPV6:
      if (available < 4) return PARSE_TRUNCATED;
      out[row + V2.ICMP_TYPE] = f[off];
      out[row + V2.ICMP_CODE] = f[off + 1];
      return PARSE_OK;
    default:
      return PARSE_OK;
  }
  // Ports are stored in host (little-endian) order, as the kernel's key holds them.
  out[row + V2.SRC_PORT] = f[off + 1];
  out[row + V2.SRC_PORT + 1] = f[off];
  out[row + V2.DST_PORT] = f[off + 3];
  out[row + V2.DST_PORT + 1] = f[off + 2];
  return PARSE_OK;
}
