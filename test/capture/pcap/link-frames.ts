/**
 * The frames of every link type flowtap reads, built from the Ethernet frames of the shared
 * packet vectors (test/vectors/packets.ts): the IP packet is kept and the Ethernet header is
 * replaced by the link type's own (BSD loopback, PPP, Cisco HDLC, 802.11 with LLC/SNAP, behind
 * radiotap or PPI). Each case also says what flowtap counts for the frame.
 */
import { LinkType } from '../../../src/capture/packet/link-layers.ts';

/** One way of carrying an IP packet in a capture. */
export interface LinkCase {
  /** Short name for test titles and file names. */
  name: string;
  /** LINKTYPE_* of the capture. */
  linkType: number;
  /** The frame of this link type carrying the IP packet of `ethernet` (an Ethernet frame). */
  wrap(ethernet: Buffer): Buffer;
  /** True when flowtap counts the frame as Ethernet (802.11) and keeps its MACs; else MACs are zero. */
  ethernetLike: boolean;
  /** IP versions the link type carries (raw IPv4/IPv6 carry one each). */
  versions: readonly (4 | 6)[];
}

const ETH_P_IPV4 = 0x0800;
const BSSID = Buffer.from([0x02, 0, 0, 0, 0, 0xaa]);

function ipPacket(ethernet: Buffer): Buffer {
  return ethernet.subarray(14);
}

function isIpv6(ethernet: Buffer): boolean {
  return ethernet.readUInt16BE(12) !== ETH_P_IPV4;
}

/** A BSD loopback frame: the address family as a 32-bit word in either byte order. */
function loopback(ethernet: Buffer, bigEndian: boolean, inet6: number): Buffer {
  const header = Buffer.alloc(4);
  const family = isIpv6(ethernet) ? inet6 : 2;
  if (bigEndian) header.writeUInt32BE(family);
  else header.writeUInt32LE(family);
  return Buffer.concat([header, ipPacket(ethernet)]);
}

/** A PPP frame: `addressControl` adds 0xff 0x03; `compressed` writes the protocol in 1 byte. */
function ppp(ethernet: Buffer, addressControl: boolean, compressed = false): Buffer {
  const code = isIpv6(ethernet) ? 0x57 : 0x21;
  const protocol = compressed ? [code] : [0x00, code];
  return Buffer.concat([
    Buffer.from(addressControl ? [0xff, 0x03, ...protocol] : protocol),
    ipPacket(ethernet),
  ]);
}

function ciscoHdlc(ethernet: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x0f, 0x00]), ethernet.subarray(12, 14), ipPacket(ethernet)]);
}

/** Options of an 802.11 data frame. */
export interface WlanOptions {
  qos?: boolean;
  toDs?: boolean;
  fromDs?: boolean;
  /** Protected (encrypted) frame bit. */
  protectedFrame?: boolean;
}

/** An 802.11 data frame with LLC/SNAP carrying the packet of `ethernet`, between its MACs. */
export function wlanData(ethernet: Buffer, options: WlanOptions = {}): Buffer {
  const dst = ethernet.subarray(0, 6);
  const src = ethernet.subarray(6, 12);
  const toDs = options.toDs ?? false;
  const fromDs = options.fromDs ?? false;
  // Receiver, transmitter, then destination or source by the distribution-system bits.
  let addresses = [dst, src, BSSID];
  if (toDs && fromDs) addresses = [BSSID, BSSID, dst];
  else if (toDs) addresses = [BSSID, src, dst];
  else if (fromDs) addresses = [dst, BSSID, src];
  const parts: Buffer[] = [
    Buffer.from([
      options.qos ? 0x88 : 0x08,
      (toDs ? 1 : 0) | (fromDs ? 2 : 0) | (options.protectedFrame ? 0x40 : 0),
      0,
      0,
    ]),
    ...addresses,
  ];
  parts.push(Buffer.from([0x10, 0])); // sequence control
  if (toDs && fromDs) parts.push(src); // the fourth address: the source
  if (options.qos) parts.push(Buffer.from([0, 0]));
  parts.push(Buffer.from([0xaa, 0xaa, 0x03, 0, 0, 0]), ethernet.subarray(12, 14), ipPacket(ethernet));
  return Buffer.concat(parts);
}

/** An 802.11 beacon (a management frame): no network packet. */
export function wlanBeacon(): Buffer {
  return Buffer.concat([Buffer.from([0x80, 0, 0, 0]), Buffer.alloc(6, 0xff), BSSID, BSSID, Buffer.alloc(14)]);
}

const CRC32_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC32_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A radiotap header (TSFT, flags: FCS at end) before `wlan`, which gets its FCS appended. */
export function radiotap(wlan: Buffer): Buffer {
  const header = Buffer.alloc(17);
  header.writeUInt16LE(header.length, 2);
  header.writeUInt32LE(0x3, 4); // TSFT and flags present
  header.writeBigUInt64LE(123_456_789n, 8);
  header[16] = 0x10; // the frame ends with its FCS
  const fcs = Buffer.alloc(4);
  fcs.writeUInt32LE(crc32(wlan));
  return Buffer.concat([header, wlan, fcs]);
}

/** A PPI header naming `linkType` before `inner`. */
export function ppi(inner: Buffer, linkType: number = LinkType.IEEE802_11): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(8, 2);
  header.writeUInt32LE(linkType, 4);
  return Buffer.concat([header, inner]);
}

/** Every link type flowtap reads besides Ethernet and Linux cooked, one case per framing. */
export const LINK_CASES: readonly LinkCase[] = [
  {
    name: 'null-le',
    linkType: LinkType.NULL,
    wrap: (e) => loopback(e, false, 24),
    ethernetLike: false,
    versions: [4, 6],
  },
  {
    name: 'null-be',
    linkType: LinkType.NULL,
    wrap: (e) => loopback(e, true, 28),
    ethernetLike: false,
    versions: [4, 6],
  },
  {
    name: 'loop',
    linkType: LinkType.LOOP,
    wrap: (e) => loopback(e, true, 30),
    ethernetLike: false,
    versions: [4, 6],
  },
  { name: 'ppp', linkType: LinkType.PPP, wrap: (e) => ppp(e, true), ethernetLike: false, versions: [4, 6] },
  {
    name: 'ppp-compressed',
    linkType: LinkType.PPP,
    wrap: (e) => ppp(e, false, true),
    ethernetLike: false,
    versions: [4, 6],
  },
  {
    name: 'ppp-hdlc',
    linkType: LinkType.PPP_HDLC,
    wrap: (e) => ppp(e, true),
    ethernetLike: false,
    versions: [4, 6],
  },
  {
    name: 'cisco-hdlc',
    linkType: LinkType.C_HDLC,
    wrap: ciscoHdlc,
    ethernetLike: false,
    versions: [4, 6],
  },
  {
    name: 'wlan',
    linkType: LinkType.IEEE802_11,
    wrap: (e) => wlanData(e, { fromDs: true }),
    ethernetLike: true,
    versions: [4, 6],
  },
  {
    name: 'wlan-qos-wds',
    linkType: LinkType.IEEE802_11,
    wrap: (e) => wlanData(e, { qos: true, toDs: true, fromDs: true }),
    ethernetLike: true,
    versions: [4, 6],
  },
  {
    name: 'radiotap',
    linkType: LinkType.IEEE802_11_RADIOTAP,
    wrap: (e) => radiotap(wlanData(e, { qos: true, toDs: true })),
    ethernetLike: true,
    versions: [4, 6],
  },
  {
    name: 'ppi',
    linkType: LinkType.PPI,
    wrap: (e) => ppi(wlanData(e, { qos: true })),
    ethernetLike: true,
    versions: [4, 6],
  },
  { name: 'ipv4', linkType: LinkType.IPV4, wrap: ipPacket, ethernetLike: false, versions: [4] },
  { name: 'ipv6', linkType: LinkType.IPV6, wrap: ipPacket, ethernetLike: false, versions: [6] },
];
