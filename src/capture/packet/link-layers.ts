/**
 * Link-layer headers of capture files → the network packet inside, for every link type flowtap
 * reads (tcpdump.org LINKTYPE_* numbers): Ethernet, raw IP, Linux cooked SLL/SLL2, BSD loopback
 * (NULL, LOOP), PPP (bare and in HDLC-like framing), Cisco HDLC and IEEE 802.11 data frames, bare
 * or behind a radiotap or PPI header. The packet itself goes to frame-parser.ts, straight into a
 * v2 row; one {@link LinkLayerParser} is reused for every packet, so a frame costs no object.
 *
 * Bytes are what the kernel program would count on the device the frame was captured on
 * (docs/flow-key.md, "pcap"): the whole frame on Ethernet; on an 802.11 device, which hands the
 * kernel Ethernet frames, the frame as Ethernet (14-byte header instead of the 802.11 header and
 * LLC/SNAP, no FCS); on every other device (loopback, PPP, HDLC, tun) the network packet alone.
 * Capture metadata (radiotap, PPI) was never on the wire and is never counted.
 */
import { V2 } from '../../codec/v2-layout.ts';
import { Direction } from '../../model/names.ts';
import {
  outerVlanId,
  PARSE_INVALID,
  PARSE_OK,
  PARSE_TRUNCATED,
  parseEthernetFrame,
  parseFromEtherType,
  parseIpPacket,
  vlanIdAfterEtherType,
} from './frame-parser.ts';

/** Link types (tcpdump.org LINKTYPE_*) flowtap reads. */
export const LinkType = {
  /** BSD loopback: a 4-byte address family in the capturing host's byte order. */
  NULL: 0,
  ETHERNET: 1,
  /** PPP: optional 0xff 0x03 address and control bytes, then the PPP protocol. */
  PPP: 9,
  /** PPP in HDLC-like framing (RFC 1662), or Cisco HDLC framing. */
  PPP_HDLC: 50,
  RAW: 101,
  /** Cisco HDLC: address, control, then an Ethernet type. */
  C_HDLC: 104,
  /** IEEE 802.11 frames without a metadata header. */
  IEEE802_11: 105,
  /** OpenBSD loopback: the address family in network byte order. */
  LOOP: 108,
  LINUX_SLL: 113,
  /** IEEE 802.11 behind a radiotap header. */
  IEEE802_11_RADIOTAP: 127,
  /** Per-Packet Information header, then a frame of the link type it names. */
  PPI: 192,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** The frame carries no network packet (802.11 management/control/null data, PPP control, ...). */
export const PARSE_LINK_CONTROL = 3;
/** An 802.11 data frame whose payload is encrypted. */
export const PARSE_ENCRYPTED = 4;
/** The link type (or the one a PPI header names) is not read; see `unsupportedLinkType`. */
export const PARSE_UNSUPPORTED_LINK = 5;

/** Direction a capture recorded for a packet: unknown, or a `Direction` value. */
export const RECORDED_DIRECTION_UNKNOWN = -1;

const ETHERNET_HEADER_BYTES = 14;
const SLL_HEADER_BYTES = 16;
const SLL2_HEADER_BYTES = 20;
const PACKET_OUTGOING = 4;
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;
const ETH_P_IPV4 = 0x0800;
const ETH_P_IPV6 = 0x86dd;

const LOOPBACK_HEADER_BYTES = 4;
const AF_INET = 2;
/** AF_INET6 of NetBSD/OpenBSD, FreeBSD and macOS: a loopback capture carries its writer's value. */
const AF_INET6_BSD = 24;
const AF_INET6_FREEBSD = 28;
const AF_INET6_DARWIN = 30;

const PPP_ADDRESS = 0xff;
const PPP_CONTROL = 0x03;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;
const CISCO_HDLC_UNICAST = 0x0f;
const CISCO_HDLC_MULTICAST = 0x8f;
const CISCO_HDLC_HEADER_BYTES = 4;

const WLAN_HEADER_BYTES = 24;
const WLAN_ADDR4_BYTES = 6;
const WLAN_QOS_CONTROL_BYTES = 2;
const WLAN_HT_CONTROL_BYTES = 4;
const WLAN_TYPE_DATA = 2;
/** Data subtypes with this bit carry no payload (Null, QoS Null, CF-Ack, ...). */
const WLAN_SUBTYPE_NO_DATA = 0x4;
const WLAN_SUBTYPE_QOS = 0x8;
const WLAN_TO_DS = 0x01;
const WLAN_FROM_DS = 0x02;
const WLAN_PROTECTED = 0x40;
/** In a QoS data frame: an HT Control field follows the QoS Control field. */
const WLAN_ORDER = 0x80;
const WLAN_QOS_AMSDU = 0x80;
const LLC_SNAP_BYTES = 8;
const FCS_BYTES = 4;

const RADIOTAP_MIN_BYTES = 8;
const RADIOTAP_PRESENT_TSFT = 0x1;
const RADIOTAP_PRESENT_FLAGS = 0x2;
const RADIOTAP_PRESENT_EXT = 0x80000000;
const RADIOTAP_FLAG_FCS = 0x10;
const RADIOTAP_FLAG_DATA_PAD = 0x20;
const PPI_MIN_BYTES = 8;

/** True for the link types {@link LinkLayerParser} reads. */
export function isSupportedLinkType(linkType: number): boolean {
  switch (linkType) {
    case LinkType.NULL:
    case LinkType.ETHERNET:
    case LinkType.PPP:
    case LinkType.PPP_HDLC:
    case LinkType.RAW:
    case LinkType.C_HDLC:
    case LinkType.IEEE802_11:
    case LinkType.LOOP:
    case LinkType.LINUX_SLL:
    case LinkType.IEEE802_11_RADIOTAP:
    case LinkType.PPI:
    case LinkType.IPV4:
    case LinkType.IPV6:
    case LinkType.LINUX_SLL2:
      return true;
    default:
      return false;
  }
}

/**
 * Parses one captured frame of a given link type into a v2 row. After `parse` returns PARSE_OK,
 * `countedBytes` and `recordedDirection` describe that frame; the object is reused.
 */
export class LinkLayerParser {
  /** Bytes the frame counts for (see the module comment). */
  countedBytes = 0;
  /** Direction the link header recorded (SLL packet type), else RECORDED_DIRECTION_UNKNOWN. */
  recordedDirection = RECORDED_DIRECTION_UNKNOWN;
  /** Set to have `vlanId` found (the filter's `vlan` test); off, it costs nothing. */
  trackVlan = false;
  /** With `trackVlan`: the outer 802.1Q/802.1ad id after the last parse, -1 when untagged. */
  vlanId = -1;
  /** Open VXLAN, Geneve, GRE and IP-in-IP packets: the key is the inner packet's (ENABLE_TUNNELS). */
  tunnels = false;
  /** The link type that made the last parse return PARSE_UNSUPPORTED_LINK (a PPI's inner type). */
  unsupportedLinkType = 0;
  /** Where the network packet starts, and what the device would have counted in front of it. */
  #payloadAt = 0;
  #deviceHeaderBytes = 0;
  #trailerBytes = 0;
  /** The frame was captured whole, so a trailing FCS is in the captured bytes. */
  #whole = true;

  /**
   * Parses the `captured` bytes at `f[off]` of a frame `wireBytes` long into the zeroed row at
   * `row` of `out`; returns PARSE_OK or the reason the frame counts in no flow.
   */
  parse(
    linkType: number,
    f: Uint8Array,
    off: number,
    captured: number,
    wireBytes: number,
    out: Uint8Array,
    row: number,
  ): number {
    this.recordedDirection = RECORDED_DIRECTION_UNKNOWN;
    this.vlanId = -1;
    this.#trailerBytes = 0;
    this.#whole = captured >= wireBytes;
    if (linkType === LinkType.ETHERNET) {
      this.countedBytes = wireBytes;
      return this.#ethernet(f, off, off + captured, out, row);
    }
    const status = this.#parseLink(linkType, f, off, off + captured, out, row, true);
    if (status === PARSE_OK) {
      this.countedBytes = wireBytes - (this.#payloadAt - off) + this.#deviceHeaderBytes - this.#trailerBytes;
      if (this.countedBytes < 0) this.countedBytes = 0;
    }
    return status;
  }

  /** The Ethernet frame at `off`, noting its outer VLAN id when asked. */
  #ethernet(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    if (this.trackVlan) this.vlanId = outerVlanId(f, off, end);
    return parseEthernetFrame(f, off, end, out, row, this.tunnels);
  }

  /** What follows an Ethernet type field at `at`, noting the VLAN id it starts with when asked. */
  #fromEtherType(
    f: Uint8Array,
    at: number,
    end: number,
    etype: number,
    out: Uint8Array,
    row: number,
  ): number {
    if (this.trackVlan) this.vlanId = vlanIdAfterEtherType(f, at, end, etype);
    return parseFromEtherType(f, at, end, etype, out, row, this.tunnels);
  }

  #parseLink(
    linkType: number,
    f: Uint8Array,
    off: number,
    end: number,
    out: Uint8Array,
    row: number,
    outermost: boolean,
  ): number {
    this.#payloadAt = off;
    this.#deviceHeaderBytes = 0;
    switch (linkType) {
      case LinkType.ETHERNET:
        return this.#ethernet(f, off, end, out, row);
      case LinkType.RAW:
        return parseIpPacket(f, off, end, out, row, this.tunnels);
      case LinkType.IPV4:
        return this.#fromEtherType(f, off, end, ETH_P_IPV4, out, row);
      case LinkType.IPV6:
        return this.#fromEtherType(f, off, end, ETH_P_IPV6, out, row);
      case LinkType.LINUX_SLL:
      case LinkType.LINUX_SLL2:
        return this.#cooked(linkType === LinkType.LINUX_SLL2, f, off, end, out, row);
      case LinkType.NULL:
      case LinkType.LOOP:
        return this.#loopback(f, off, end, out, row);
      case LinkType.PPP:
        return this.#ppp(f, off, end, out, row);
      case LinkType.PPP_HDLC:
        if (end - off >= 1 && (f[off] === CISCO_HDLC_UNICAST || f[off] === CISCO_HDLC_MULTICAST)) {
          return this.#ciscoHdlc(f, off, end, out, row);
        }
        return this.#ppp(f, off, end, out, row);
      case LinkType.C_HDLC:
        return this.#ciscoHdlc(f, off, end, out, row);
      case LinkType.IEEE802_11:
        return this.#wlan(f, off, end, false, out, row);
      case LinkType.IEEE802_11_RADIOTAP:
        return this.#radiotap(f, off, end, out, row);
      case LinkType.PPI:
        if (outermost) return this.#ppi(f, off, end, out, row);
        break;
    }
    this.unsupportedLinkType = linkType;
    return PARSE_UNSUPPORTED_LINK;
  }

  #cooked(sll2: boolean, f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    const headerBytes = sll2 ? SLL2_HEADER_BYTES : SLL_HEADER_BYTES;
    if (end - off < headerBytes) return PARSE_TRUNCATED;
    const packetType = sll2 ? f[off + 10] : f[off + 1];
    const arphrd = sll2 ? (f[off + 8] << 8) | f[off + 9] : (f[off + 2] << 8) | f[off + 3];
    const addressBytes = sll2 ? f[off + 11] : f[off + 5];
    const protocol = sll2 ? (f[off] << 8) | f[off + 1] : (f[off + 14] << 8) | f[off + 15];
    if (addressBytes === 6) {
      // The cooked header carries the sender's link-layer address only; the destination stays zero.
      const from = off + (sll2 ? 12 : 6);
      for (let i = 0; i < 6; i++) out[row + V2.SRC_MAC + i] = f[from + i];
    }
    this.recordedDirection = packetType === PACKET_OUTGOING ? Direction.EGRESS : Direction.INGRESS;
    this.#payloadAt = off + headerBytes;
    // The kernel counts its own link header on the device: Ethernet's on Ethernet and loopback.
    this.#deviceHeaderBytes =
      arphrd === ARPHRD_ETHER || arphrd === ARPHRD_LOOPBACK ? ETHERNET_HEADER_BYTES : 0;
    return this.#fromEtherType(f, off + headerBytes, end, protocol, out, row);
  }

  #loopback(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    if (end - off < LOOPBACK_HEADER_BYTES) return PARSE_TRUNCATED;
    // NULL holds the family in the writer's byte order, LOOP in network order: a family is a
    // small number, so the order whose upper half is zero is the right one (as Wireshark reads it).
    let family = (f[off] | (f[off + 1] << 8) | (f[off + 2] << 16) | (f[off + 3] << 24)) >>> 0;
    if (family > 0xffff)
      family = ((f[off] << 24) | (f[off + 1] << 16) | (f[off + 2] << 8) | f[off + 3]) >>> 0;
    this.#payloadAt = off + LOOPBACK_HEADER_BYTES;
    if (family === AF_INET) return this.#fromEtherType(f, this.#payloadAt, end, ETH_P_IPV4, out, row);
    if (family === AF_INET6_BSD || family === AF_INET6_FREEBSD || family === AF_INET6_DARWIN) {
      return this.#fromEtherType(f, this.#payloadAt, end, ETH_P_IPV6, out, row);
    }
    return PARSE_LINK_CONTROL;
  }

  #ppp(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    let at = off;
    if (end - at >= 2 && f[at] === PPP_ADDRESS && f[at + 1] === PPP_CONTROL) at += 2;
    if (end - at < 1) return PARSE_TRUNCATED;
    let protocol: number;
    // An odd first byte is a compressed one-byte protocol field (RFC 1661, section 6.5).
    if ((f[at] & 1) === 1) {
      protocol = f[at];
      at += 1;
    } else {
      if (end - at < 2) return PARSE_TRUNCATED;
      protocol = (f[at] << 8) | f[at + 1];
      at += 2;
    }
    this.#payloadAt = at;
    if (protocol === PPP_IPV4) return this.#fromEtherType(f, at, end, ETH_P_IPV4, out, row);
    if (protocol === PPP_IPV6) return this.#fromEtherType(f, at, end, ETH_P_IPV6, out, row);
    return PARSE_LINK_CONTROL;
  }

  #ciscoHdlc(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    if (end - off < CISCO_HDLC_HEADER_BYTES) return PARSE_TRUNCATED;
    this.#payloadAt = off + CISCO_HDLC_HEADER_BYTES;
    return this.#fromEtherType(f, this.#payloadAt, end, (f[off + 2] << 8) | f[off + 3], out, row);
  }

  /** An 802.11 frame at `off`; `dataPad`: radiotap says the header is padded to 4 bytes. */
  #wlan(f: Uint8Array, off: number, end: number, dataPad: boolean, out: Uint8Array, row: number): number {
    if (end - off < 2) return PARSE_TRUNCATED;
    const control = f[off];
    const flags = f[off + 1];
    if ((control & 3) !== 0) return PARSE_INVALID; // protocol version 0 is the only one
    const subtype = control >>> 4;
    if (((control >>> 2) & 3) !== WLAN_TYPE_DATA || (subtype & WLAN_SUBTYPE_NO_DATA) !== 0) {
      return PARSE_LINK_CONTROL;
    }
    const toDs = (flags & WLAN_TO_DS) !== 0;
    const fromDs = (flags & WLAN_FROM_DS) !== 0;
    let headerBytes = WLAN_HEADER_BYTES + (toDs && fromDs ? WLAN_ADDR4_BYTES : 0);
    const qosAt = off + headerBytes;
    const qos = (subtype & WLAN_SUBTYPE_QOS) !== 0;
    if (qos) headerBytes += WLAN_QOS_CONTROL_BYTES + ((flags & WLAN_ORDER) !== 0 ? WLAN_HT_CONTROL_BYTES : 0);
    if (dataPad) headerBytes = (headerBytes + 3) & ~3;
    if (end - off < headerBytes) return PARSE_TRUNCATED;
    if ((flags & WLAN_PROTECTED) !== 0) return PARSE_ENCRYPTED;
    // An A-MSDU packs several packets behind subframe headers instead of one LLC/SNAP packet.
    if (qos && (f[qosAt] & WLAN_QOS_AMSDU) !== 0) return PARSE_LINK_CONTROL;
    const llc = off + headerBytes;
    if (end - llc < 3) return PARSE_TRUNCATED;
    if (f[llc] !== 0xaa || f[llc + 1] !== 0xaa || f[llc + 2] !== 0x03) return PARSE_LINK_CONTROL;
    if (end - llc < LLC_SNAP_BYTES) return PARSE_TRUNCATED;
    // Destination and source by the distribution-system bits (IEEE 802.11-2020, table 9-30).
    const da = off + (toDs ? 16 : 4);
    const sa = off + (fromDs ? (toDs ? 24 : 16) : 10);
    for (let i = 0; i < 6; i++) {
      out[row + V2.DST_MAC + i] = f[da + i];
      out[row + V2.SRC_MAC + i] = f[sa + i];
    }
    this.#payloadAt = llc + LLC_SNAP_BYTES;
    this.#deviceHeaderBytes = ETHERNET_HEADER_BYTES;
    return this.#fromEtherType(f, this.#payloadAt, end, (f[llc + 6] << 8) | f[llc + 7], out, row);
  }

  #radiotap(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    if (end - off < RADIOTAP_MIN_BYTES) return PARSE_TRUNCATED;
    const headerBytes = f[off + 2] | (f[off + 3] << 8);
    if (f[off] !== 0 || headerBytes < RADIOTAP_MIN_BYTES) return PARSE_INVALID;
    if (end - off < headerBytes) return PARSE_TRUNCATED;
    const headerEnd = off + headerBytes;
    const present = u32le(f, off + 4);
    // Extended presence words follow while bit 31 is set; the fields start after the last one.
    let fields = off + 4;
    while ((u32le(f, fields) & RADIOTAP_PRESENT_EXT) !== 0) {
      fields += 4;
      if (fields + 4 > headerEnd) return PARSE_INVALID;
    }
    fields += 4;
    let flags = 0;
    if ((present & RADIOTAP_PRESENT_FLAGS) !== 0) {
      // TSFT (8 bytes, 8-aligned from the header start) is the only field before the flags byte.
      if ((present & RADIOTAP_PRESENT_TSFT) !== 0) fields = off + ((fields - off + 7) & ~7) + 8;
      if (fields >= headerEnd) return PARSE_INVALID;
      flags = f[fields];
    }
    if ((flags & RADIOTAP_FLAG_FCS) !== 0) this.#trailerBytes = FCS_BYTES;
    // The FCS is no packet byte: a frame captured whole ends before it.
    const packetEnd = this.#whole ? Math.max(headerEnd, end - this.#trailerBytes) : end;
    return this.#wlan(f, headerEnd, packetEnd, (flags & RADIOTAP_FLAG_DATA_PAD) !== 0, out, row);
  }

  #ppi(f: Uint8Array, off: number, end: number, out: Uint8Array, row: number): number {
    if (end - off < PPI_MIN_BYTES) return PARSE_TRUNCATED;
    const headerBytes = f[off + 2] | (f[off + 3] << 8);
    if (f[off] !== 0 || headerBytes < PPI_MIN_BYTES) return PARSE_INVALID;
    if (end - off < headerBytes) return PARSE_TRUNCATED;
    return this.#parseLink(u32le(f, off + 4), f, off + headerBytes, end, out, row, false);
  }
}

function u32le(f: Uint8Array, at: number): number {
  return (f[at] | (f[at + 1] << 8) | (f[at + 2] << 16) | (f[at + 3] << 24)) >>> 0;
}
