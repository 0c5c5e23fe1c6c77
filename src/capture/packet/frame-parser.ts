/**
 * Packet headers → flow key, with exactly the meaning of the kernel program (bpf/flows.bpf.c;
 * specified in docs/flow-key.md, checked against test/vectors/packets.ts). Parsers write the key
 * fields, TCP flags and DSCP straight into a zeroed v2 row (`RecordBatchBuilder.appendRow()`) and
 * return a status number, so a packet costs no object.
 *
 * With `tunnels` set, a VXLAN, Geneve, GRE (GRETAP) or IP-in-IP packet gives the key of the packet
 * inside and its tunnel fields (docs/flow-key.md, "Tunnels"), as the kernel program does with
 * ENABLE_TUNNELS.
 *
 * `end` is the end of the bytes available (a capture's captured length): a header that does not
 * fit before it is `PARSE_TRUNCATED`, which the kernel counts as a parse error; the caller tells a
 * frame that really is short from one the capture's snap length cut.
 */
import { TunnelType, V2 } from '../../codec/v2-layout.ts';

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
/** Transparent Ethernet bridging: an Ethernet frame follows (GRETAP, Geneve). */
const ETH_P_TEB = 0x6558;

const PROTO_HOPOPTS = 0;
const PROTO_ICMP = 1;
const PROTO_IPIP = 4;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_IPV6 = 41;
const PROTO_ROUTING = 43;
const PROTO_FRAGMENT = 44;
const PROTO_GRE = 47;
const PROTO_AH = 51;
const PROTO_ICMPV6 = 58;
const PROTO_DSTOPTS = 60;
const PROTO_SCTP = 132;

const VXLAN_PORT = 4789;
const GENEVE_PORT = 6081;
const VXLAN_FLAG_VNI = 0x08;
const GRE_FLAG_CSUM = 0x80;
const GRE_FLAG_ROUTING = 0x40;
const GRE_FLAG_KEY = 0x20;
const GRE_FLAG_SEQ = 0x10;
/** What a tunnel header is followed by when it is not an IP packet: an Ethernet frame. */
const INNER_ETHERNET = 0;

/**
 * Where parsing of the current network layer stands (one module-level record, reused by every
 * packet): the offset of its transport header, and whether it is a fragment.
 */
const layer = {
  /** Offset of the transport header once the IP header is parsed. */
  off: 0,
  /**
   * End of the IP packet by its header's length field (IPv4 total length, IPv6 payload length),
   * so Ethernet padding is not payload; -1 when the field is unusable (0: TSO, jumbograms).
   */
  ipEnd: -1,
  /** The IP packet is a fragment (first, middle or last). */
  fragment: false,
  /** A later fragment, or not IP: no transport header to read. */
  noTransport: false,
  /** After {@link findTunnel}: where the inner packet starts and what it is. */
  innerOff: 0,
  innerType: INNER_ETHERNET,
  tunnelId: 0,
};

/**
 * Where the transport header of the packet parsed last (with PARSE_OK) starts in its frame, or -1
 * when it has none (not IP, a later fragment). With tunnels opened, the inner packet's.
 */
export function lastTransportOffset(): number {
  return layer.noTransport ? -1 : layer.off;
}

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
  tunnels = false,
): number {
  if (end - off < ETHERNET_HEADER_BYTES) return PARSE_TRUNCATED;
  copyMacs(f, off, out, row);
  return parseFromEtherType(
    f,
    off + ETHERNET_HEADER_BYTES,
    end,
    (f[off + 12] << 8) | f[off + 13],
    out,
    row,
    tunnels,
  );
}

function copyMacs(f: Uint8Array, off: number, out: Uint8Array, row: number): void {
  const dst = row + V2.DST_MAC;
  const src = row + V2.SRC_MAC;
  for (let i = 0; i < 6; i++) {
    out[dst + i] = f[off + i];
    out[src + i] = f[off + 6 + i];
  }
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
 * VLAN tags (their ids join the key), then IPv4 or IPv6; any other type is a flow of that type
 * without addresses. With `tunnels`, a tunnel packet is opened (one level deep).
 */
export function parseFromEtherType(
  f: Uint8Array,
  off: number,
  end: number,
  etype: number,
  out: Uint8Array,
  row: number,
  tunnels = false,
): number {
  let status = parseVlansAndIp(f, off, end, etype, out, row);
  if (status !== PARSE_OK) return status;
  if (tunnels && !layer.noTransport) {
    const tunnel = findTunnel(f, end, out[row + V2.TRANSPORT_PROTOCOL]);
    if (tunnel < 0) return PARSE_TRUNCATED;
    if (tunnel !== TunnelType.NONE) {
      status = openTunnel(f, end, tunnel, out, row);
      if (status !== PARSE_OK) return status;
    }
  }
  if (layer.noTransport) return PARSE_OK;
  return parseTransport(f, layer.off, end, out[row + V2.TRANSPORT_PROTOCOL], out, row);
}

/**
 * Parses a bare IP packet (no link-layer header) by its version nibble, setting the Ethernet
 * type to the one the kernel would have seen on an Ethernet device.
 */
export function parseIpPacket(
  f: Uint8Array,
  off: number,
  end: number,
  out: Uint8Array,
  row: number,
  tunnels = false,
): number {
  if (end - off < 1) return PARSE_TRUNCATED;
  const version = f[off] >>> 4;
  const type = version === 4 ? ETH_P_IPV4 : version === 6 ? ETH_P_IPV6 : 0;
  if (type === 0) return PARSE_INVALID;
  return parseFromEtherType(f, off, end, type, out, row, tunnels);
}

/** VLAN tags (ids into the key: the first is the outer), then the network header of one layer. */
function parseVlansAndIp(
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
    const id = ((f[at] << 8) | f[at + 1]) & 0x0fff;
    const field = row + (i === 0 ? V2.VLAN_OUTER : V2.VLAN_INNER);
    out[field] = id & 0xff;
    out[field + 1] = id >>> 8;
    type = (f[at + 2] << 8) | f[at + 3];
    at += VLAN_TAG_BYTES;
  }
  out[row + V2.ETH_PROTOCOL] = type & 0xff;
  out[row + V2.ETH_PROTOCOL + 1] = type >>> 8;
  layer.fragment = false;
  layer.noTransport = false;
  if (type === ETH_P_IPV4) return parseIpv4(f, at, end, out, row);
  if (type === ETH_P_IPV6) return parseIpv6(f, at, end, out, row);
  layer.noTransport = true;
  return PARSE_OK;
}

/**
 * Whether the IP packet just parsed (transport header at `layer.off`, protocol `proto`) is a
 * tunnel flowtap opens: its TunnelType (the inner packet's place in `layer`), TunnelType.NONE,
 * or -1 when a header is cut short. The kernel program's find_tunnel.
 */
function findTunnel(f: Uint8Array, end: number, proto: number): number {
  if (layer.fragment) return TunnelType.NONE; // only the first fragment holds the inner headers
  const off = layer.off;
  layer.tunnelId = 0;
  switch (proto) {
    case PROTO_IPIP:
    case PROTO_IPV6:
      layer.innerOff = off;
      layer.innerType = proto === PROTO_IPIP ? ETH_P_IPV4 : ETH_P_IPV6;
      return TunnelType.IPIP;
    case PROTO_GRE: {
      if (end - off < 4) return -1;
      if ((f[off + 1] & 7) !== 0 || (f[off] & GRE_FLAG_ROUTING) !== 0) return TunnelType.NONE;
      const type = (f[off + 2] << 8) | f[off + 3];
      if (type !== ETH_P_TEB && type !== ETH_P_IPV4 && type !== ETH_P_IPV6) return TunnelType.NONE;
      layer.innerType = type === ETH_P_TEB ? INNER_ETHERNET : type;
      let header = 4;
      if (f[off] & GRE_FLAG_CSUM) header += 4;
      if (f[off] & GRE_FLAG_KEY) {
        if (end - off < header + 4) return -1;
        const k = off + header;
        layer.tunnelId = ((f[k] << 24) | (f[k + 1] << 16) | (f[k + 2] << 8) | f[k + 3]) >>> 0;
        header += 4;
      }
      if (f[off] & GRE_FLAG_SEQ) header += 4;
      layer.innerOff = off + header;
      return TunnelType.GRE;
    }
    case PROTO_UDP: {
      if (end - off < 8) return -1;
      const port = (f[off + 2] << 8) | f[off + 3];
      if (port !== VXLAN_PORT && port !== GENEVE_PORT) return TunnelType.NONE;
      // VXLAN: flags, reserved (3), VNI (3), reserved. Geneve: version and option length,
      // flags, protocol (2), VNI (3), reserved, options.
      const h = off + 8;
      if (end - h < 8) return -1;
      layer.tunnelId = (f[h + 4] << 16) | (f[h + 5] << 8) | f[h + 6];
      if (port === VXLAN_PORT) {
        if ((f[h] & VXLAN_FLAG_VNI) === 0) return TunnelType.NONE;
        layer.innerType = INNER_ETHERNET;
        layer.innerOff = h + 8;
        return TunnelType.VXLAN;
      }
      if (f[h] >>> 6 !== 0) return TunnelType.NONE;
      const type = (f[h + 2] << 8) | f[h + 3];
      if (type !== ETH_P_TEB && type !== ETH_P_IPV4 && type !== ETH_P_IPV6) return TunnelType.NONE;
      layer.innerType = type === ETH_P_TEB ? INNER_ETHERNET : type;
      layer.innerOff = h + 8 + (f[h] & 0x3f) * 4;
      return TunnelType.GENEVE;
    }
    default:
      return TunnelType.NONE;
  }
}

/**
 * Moves the outer addresses into the tunnel fields and parses the inner packet into the key:
 * its Ethernet header (MACs, VLAN ids) when it has one, then its IP header.
 */
function openTunnel(f: Uint8Array, end: number, tunnel: number, out: Uint8Array, row: number): number {
  out[row + V2.TUNNEL_TYPE] = tunnel;
  const id = layer.tunnelId;
  out[row + V2.TUNNEL_ID] = id & 0xff;
  out[row + V2.TUNNEL_ID + 1] = (id >>> 8) & 0xff;
  out[row + V2.TUNNEL_ID + 2] = (id >>> 16) & 0xff;
  out[row + V2.TUNNEL_ID + 3] = id >>> 24;
  out.copyWithin(row + V2.TUNNEL_SRC, row + V2.SRC_ADDR, row + V2.SRC_ADDR + 16);
  out.copyWithin(row + V2.TUNNEL_DST, row + V2.DST_ADDR, row + V2.DST_ADDR + 16);
  out.fill(0, row + V2.SRC_ADDR, row + V2.DST_ADDR + 16);
  out[row + V2.TRANSPORT_PROTOCOL] = 0;
  let at = layer.innerOff;
  let type = layer.innerType;
  if (type === INNER_ETHERNET) {
    if (end - at < ETHERNET_HEADER_BYTES) return PARSE_TRUNCATED;
    copyMacs(f, at, out, row);
    out.fill(0, row + V2.VLAN_OUTER, row + V2.VLAN_INNER + 2);
    type = (f[at + 12] << 8) | f[at + 13];
    at += ETHERNET_HEADER_BYTES;
  }
  return parseVlansAndIp(f, at, end, type, out, row);
}

/** Fills the IPv4 part of the key; the transport header's offset goes to `layer.off`. */
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
  out[row + V2.TRANSPORT_PROTOCOL] = f[off + 9];
  // More-fragments or an offset: a fragment. Only the first carries the transport header.
  layer.fragment = (((f[off + 6] & 0x3f) << 8) | f[off + 7]) !== 0;
  layer.noTransport = (((f[off + 6] & 0x1f) << 8) | f[off + 7]) !== 0;
  layer.off = off + ihl * 4;
  const totalLength = (f[off + 2] << 8) | f[off + 3];
  layer.ipEnd = totalLength >= ihl * 4 ? off + totalLength : -1;
  return PARSE_OK;
}

/** Fills the IPv6 part of the key, skipping extension headers, as {@link parseIpv4}. */
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
  const payloadLength = (f[off + 4] << 8) | f[off + 5];
  layer.ipEnd = payloadLength === 0 ? -1 : off + IPV6_HEADER_BYTES + payloadLength;
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
      layer.fragment = true;
      if ((((f[at + 2] << 8) | f[at + 3]) & 0xfff8) !== 0) {
        layer.noTransport = true;
        break;
      }
      at += 8;
    } else if (headerType === PROTO_AH) {
      at += (f[at + 1] + 2) * 4;
    } else {
      at += (f[at + 1] + 1) * 8;
    }
  }
  out[row + V2.TRANSPORT_PROTOCOL] = next;
  layer.off = at;
  return PARSE_OK;
}

/**
 * Where the TCP header of the packet parsed last (PARSE_OK, protocol TCP) starts in its frame, for
 * analyses beyond the key (src/capture/pcap/tcp-health.ts); -1 when it has none to read: a fragment
 * (the first one's payload is not the whole segment) or a packet without transport header.
 */
export function lastTcpHeaderOffset(): number {
  return layer.fragment || layer.noTransport ? -1 : layer.off;
}

/** End of the IP packet parsed last by its length field, -1 when unusable (see `layer.ipEnd`). */
export function lastIpPacketEnd(): number {
  return layer.ipEnd;
}

function parseTransport(
  f: Uint8Array,
  off: number,
  end: number,
  proto: number,
  out: Uint8Array,
  row: number,
): number {
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
