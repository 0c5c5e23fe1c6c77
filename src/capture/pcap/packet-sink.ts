/**
 * Where the pcap and pcapng framers hand each packet: strips the link-layer header of the
 * packet's interface, parses the rest (src/capture/packet/frame-parser.ts) straight into a v2 row
 * of a RecordBatchBuilder (packets = 1, first = last = the packet's time) and counts every packet
 * it cannot use by reason. One method call per packet, no object per packet.
 */
import { RecordBatchBuilder } from '../../codec/record-batch.ts';
import { V2 } from '../../codec/v2-layout.ts';
import { filterVerdict, NO_VLAN, VERDICT_REJECT } from '../../filter/evaluate.ts';
import type { FilterProgram } from '../../filter/program.ts';
import { InterfaceRegistry } from '../../model/interfaces.ts';
import { Direction } from '../../model/names.ts';
import {
  PARSE_OK,
  PARSE_TRUNCATED,
  parseEthernetFrame,
  parseFromEtherType,
  parseIpPacket,
  vlanIdAfterEtherType,
} from '../packet/frame-parser.ts';
import { type LocalHosts, NO_LOCAL_HOSTS } from './direction.ts';
import { writeUnixNs } from './unix-time.ts';

/** Link types (tcpdump.org LINKTYPE_*) flowtap reads. */
export const LinkType = {
  ETHERNET: 1,
  RAW: 101,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

/** Why a packet was read but counted in no flow. */
export const SkipReason = {
  /** Headers truncated or invalid in a frame captured whole (the kernel's parse error). */
  PARSE_ERROR: 0,
  /** Headers the key needs were cut off by the capture's snap length. */
  SNAPPED: 1,
  /** Captured length above the original length, the snap length or the enclosing block. */
  BAD_LENGTH: 2,
  /** The packet's interface has a link type flowtap does not read. */
  UNSUPPORTED_LINK_TYPE: 3,
  /** A pcapng packet names an interface no Interface Description Block declared. */
  UNKNOWN_INTERFACE: 4,
  /** The input ends in the middle of a packet record. */
  TRUNCATED_END: 5,
  /** The filter (expression or FLOW_FILTER_RULES) rejected the packet. */
  FILTERED: 6,
  /** The filter rule that accepted the packet samples 1 in N, and this was not the one. */
  SAMPLED_OUT: 7,
} as const;

/** Names of {@link SkipReason} values, as the summary prints them. */
export const SKIP_REASON_NAMES = [
  'parse-error',
  'snapped',
  'bad-length',
  'unsupported-link-type',
  'unknown-interface',
  'truncated-end',
  'filtered',
  'sampled-out',
] as const;

/** Direction a capture recorded for a packet: unknown, or a `Direction` value. */
export const RECORDED_DIRECTION_UNKNOWN = -1;

const SLL_HEADER_BYTES = 16;
const SLL2_HEADER_BYTES = 20;
const ETHERNET_HEADER_BYTES = 14;
const PACKET_OUTGOING = 4;
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;
/** Interfaces one capture may declare: enough for any real capture, a bound for a hostile one. */
export const MAX_CAPTURE_INTERFACES = 65_536;

/** Counts of one read, for the summary and metrics. */
export class CaptureStats {
  /** `pcap` or `pcapng` once the first bytes are seen. */
  format = '';
  /** Packet records read (counted or skipped). */
  packets = 0;
  /** Packets counted into a flow row. */
  counted = 0;
  /** Packets skipped, indexed by {@link SkipReason}. */
  readonly skipped = new Float64Array(SKIP_REASON_NAMES.length);
  /** Non-packet pcapng blocks (name resolution, statistics, unknown types) passed over. */
  otherBlocks = 0;
  /** Byte offset of the record cut short at the end of the input, -1 when none. */
  truncatedEndOffset = -1;
  /** Link types met that flowtap does not read. */
  readonly unsupportedLinkTypes = new Set<number>();

  /** Sum of all skips. */
  get skippedTotal(): number {
    let total = 0;
    for (const n of this.skipped) total += n;
    return total;
  }
}

/** Turns packets into rows; framers call {@link PacketSink.packet} once per packet record. */
export class PacketSink {
  /** Rows of the packets counted since the last batch was taken. */
  readonly builder: RecordBatchBuilder;
  /** Names of the interfaces declared so far, by flowtap interface index. */
  readonly interfaces = new InterfaceRegistry();
  /** Counters of this read. */
  readonly stats = new CaptureStats();
  readonly #linkTypes: number[] = [];
  readonly #local: LocalHosts;
  readonly #filter: FilterProgram | undefined;

  constructor(local: LocalHosts = NO_LOCAL_HOSTS, initialRows = 4096, filter?: FilterProgram) {
    this.#local = local;
    this.#filter = filter;
    this.builder = new RecordBatchBuilder(initialRows, this.interfaces);
  }

  /** Interfaces declared so far. */
  get interfaceCount(): number {
    return this.#linkTypes.length;
  }

  /** Declares the next interface (index = interfaces declared before it) and returns its index. */
  addInterface(linkType: number, name: string): number {
    const index = this.#linkTypes.length;
    this.#linkTypes.push(linkType);
    this.interfaces.set(index, name);
    if (!isSupportedLinkType(linkType)) this.stats.unsupportedLinkTypes.add(linkType);
    return index;
  }

  /** Counts one packet record that cannot be used. */
  skip(reason: number): void {
    this.stats.packets++;
    this.stats.skipped[reason]++;
  }

  /**
   * One packet: `captured` bytes at `data[off]` of a frame `wireBytes` long on interface
   * `ifIndex`, at Unix time `seconds` + `nanos`, with the direction the capture recorded.
   */
  packet(
    data: Uint8Array,
    off: number,
    captured: number,
    wireBytes: number,
    ifIndex: number,
    seconds: number,
    nanos: number,
    recordedDirection: number,
  ): void {
    const stats = this.stats;
    stats.packets++;
    const builder = this.builder;
    const row = builder.appendRow();
    const out = builder.bytes;
    const end = off + captured;
    let bytes = wireBytes;
    let direction = recordedDirection;
    let status: number;
    let vlanId = NO_VLAN;
    switch (this.#linkTypes[ifIndex]) {
      case LinkType.ETHERNET:
        status = parseEthernetFrame(data, off, end, out, row);
        if (this.#filter && end - off >= ETHERNET_HEADER_BYTES) {
          vlanId = vlanIdAfterEtherType(
            data,
            off + ETHERNET_HEADER_BYTES,
            end,
            (data[off + 12] << 8) | data[off + 13],
          );
        }
        break;
      case LinkType.RAW:
      case LinkType.IPV4:
      case LinkType.IPV6:
        status = parseIpPacket(data, off, end, out, row);
        break;
      case LinkType.LINUX_SLL:
      case LinkType.LINUX_SLL2: {
        const sll2 = this.#linkTypes[ifIndex] === LinkType.LINUX_SLL2;
        const headerBytes = sll2 ? SLL2_HEADER_BYTES : SLL_HEADER_BYTES;
        if (captured < headerBytes || wireBytes < headerBytes) {
          status = PARSE_TRUNCATED;
          break;
        }
        const packetType = sll2 ? data[off + 10] : data[off + 1];
        const arphrd = sll2 ? (data[off + 8] << 8) | data[off + 9] : (data[off + 2] << 8) | data[off + 3];
        const addressBytes = sll2 ? data[off + 11] : data[off + 5];
        const protocol = sll2 ? (data[off + 0] << 8) | data[off + 1] : (data[off + 14] << 8) | data[off + 15];
        if (addressBytes === 6) {
          // The cooked header carries the sender's link-layer address only; the destination stays zero.
          const from = off + (sll2 ? 12 : 6);
          for (let i = 0; i < 6; i++) out[row + V2.SRC_MAC + i] = data[from + i];
        }
        if (direction === RECORDED_DIRECTION_UNKNOWN) {
          direction = packetType === PACKET_OUTGOING ? Direction.EGRESS : Direction.INGRESS;
        }
        // Count what the kernel counts on the device: its own link header, not the cooked one.
        bytes =
          wireBytes -
          headerBytes +
          (arphrd === ARPHRD_ETHER || arphrd === ARPHRD_LOOPBACK ? ETHERNET_HEADER_BYTES : 0);
        status = parseFromEtherType(data, off + headerBytes, end, protocol, out, row);
        if (this.#filter) vlanId = vlanIdAfterEtherType(data, off + headerBytes, end, protocol);
        break;
      }
      default:
        builder.dropLastRow();
        stats.skipped[SkipReason.UNSUPPORTED_LINK_TYPE]++;
        return;
    }
    if (status !== PARSE_OK) {
      builder.dropLastRow();
      const snapped = status === PARSE_TRUNCATED && captured < wireBytes;
      stats.skipped[snapped ? SkipReason.SNAPPED : SkipReason.PARSE_ERROR]++;
      return;
    }
    if (!this.#local.isEmpty) {
      direction = this.#local.isLocalSource(out, row) ? Direction.EGRESS : Direction.INGRESS;
    } else if (direction === RECORDED_DIRECTION_UNKNOWN) {
      direction = Direction.INGRESS;
    }
    out[row + V2.DIRECTION] = direction;
    if (this.#filter) {
      // After the direction is known, as the kernel program knows its own before testing.
      const verdict = filterVerdict(this.#filter, out, row, vlanId);
      if (verdict === VERDICT_REJECT || (verdict > 1 && Math.floor(Math.random() * verdict) !== 0)) {
        builder.dropLastRow();
        stats.skipped[verdict === VERDICT_REJECT ? SkipReason.FILTERED : SkipReason.SAMPLED_OUT]++;
        return;
      }
    }
    out[row + V2.IF_INDEX] = ifIndex & 0xff;
    out[row + V2.IF_INDEX + 1] = (ifIndex >>> 8) & 0xff;
    out[row + V2.IF_INDEX + 2] = (ifIndex >>> 16) & 0xff;
    out[row + V2.IF_INDEX + 3] = ifIndex >>> 24;
    out[row + V2.BYTES] = bytes & 0xff;
    out[row + V2.BYTES + 1] = (bytes >>> 8) & 0xff;
    out[row + V2.BYTES + 2] = (bytes >>> 16) & 0xff;
    out[row + V2.BYTES + 3] = bytes >>> 24;
    out[row + V2.PACKETS] = 1;
    writeUnixNs(out, row + V2.FIRST_SEEN_NS, seconds, nanos);
    out.copyWithin(row + V2.LAST_SEEN_NS, row + V2.FIRST_SEEN_NS, row + V2.FIRST_SEEN_NS + 8);
    stats.counted++;
  }
}

/** True for the link types {@link PacketSink} parses. */
export function isSupportedLinkType(linkType: number): boolean {
  return (
    linkType === LinkType.ETHERNET ||
    linkType === LinkType.RAW ||
    linkType === LinkType.IPV4 ||
    linkType === LinkType.IPV6 ||
    linkType === LinkType.LINUX_SLL ||
    linkType === LinkType.LINUX_SLL2
  );
}
