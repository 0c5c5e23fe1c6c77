/**
 * Where the pcap and pcapng framers hand each packet: strips the link-layer header of the
 * packet's interface, parses the rest (src/capture/packet/frame-parser.ts) straight into a flow
 * event (key and metrics, src/codec/event-batch.ts: packets = 1, first = last = the packet's
 * time) of an EventBatchBuilder and counts every packet it cannot use by reason. The TCP analysis
 * and DNS tracking then see each counted packet and write what they measure into its section row
 * (src/codec/event-sections.ts), which only such packets get. One method call per packet, no
 * object per packet.
 */
import { EventBatchBuilder } from '../../codec/event-batch.ts';
import { RowWords } from '../../codec/row-words.ts';
import { V2, V2_KEY_WORDS, V2_METRICS_WORD } from '../../codec/v2-layout.ts';
import { filterVerdict, VERDICT_REJECT } from '../../filter/evaluate.ts';
import type { FilterProgram } from '../../filter/program.ts';
import { InterfaceRegistry } from '../../model/interfaces.ts';
import { Direction } from '../../model/names.ts';
import type { DnsTracker } from '../dns/dns-tracker.ts';
import { PARSE_OK, PARSE_TRUNCATED } from '../packet/frame-parser.ts';
import {
  isSupportedLinkType,
  LinkLayerParser,
  PARSE_ENCRYPTED,
  PARSE_LINK_CONTROL,
  PARSE_UNSUPPORTED_LINK,
  RECORDED_DIRECTION_UNKNOWN,
} from '../packet/link-layers.ts';
import { type LocalHosts, NO_LOCAL_HOSTS } from './direction.ts';
import { DedupVerdict, PacketDeduper } from './packet-dedup.ts';
import { emptyTcpHealthStats, TcpHealth, type TcpHealthOptions, type TcpHealthStats } from './tcp-health.ts';
import { toUnixNs, unixNs } from './unix-time.ts';

const W_IF_INDEX = V2.IF_INDEX / 4;
const W_BYTES = V2_KEY_WORDS + V2_METRICS_WORD.BYTES;
const W_PACKETS = V2_KEY_WORDS + V2_METRICS_WORD.PACKETS;
const W_FIRST_SEEN_NS = V2_KEY_WORDS + V2_METRICS_WORD.FIRST_SEEN_NS;
const W_LAST_SEEN_NS = V2_KEY_WORDS + V2_METRICS_WORD.LAST_SEEN_NS;
const W_CROSSED_IF_INDEX = V2_KEY_WORDS + V2_METRICS_WORD.CROSSED_IF_INDEX;
const W_CROSSED_DIRECTION = V2_KEY_WORDS + V2_METRICS_WORD.CROSSED_DIRECTION;
/** The word after crossed_direction[0..3] with crossed_count = 1 (its byte 2). */
const ONE_CROSSED = 1 << ((V2.CROSSED_COUNT - V2.CROSSED_DIRECTION - 4) * 8);

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
  /**
   * The frame carries no network packet: 802.11 management, control, null-data and A-MSDU
   * frames, non-SNAP LLC, PPP control protocols, loopback families other than IPv4/IPv6.
   */
  LINK_CONTROL: 6,
  /** An 802.11 data frame with an encrypted payload. */
  ENCRYPTED: 7,
  /** The filter (expression or FLOW_FILTER_RULES) rejected the packet. */
  FILTERED: 8,
  /** The filter rule that accepted the packet samples 1 in N, and this was not the one. */
  SAMPLED_OUT: 9,
} as const;

/** Names of {@link SkipReason} values, as the summary prints them. */
export const SKIP_REASON_NAMES = [
  'parse-error',
  'snapped',
  'bad-length',
  'unsupported-link-type',
  'unknown-interface',
  'truncated-end',
  'link-control',
  'encrypted',
  'filtered',
  'sampled-out',
] as const;

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
  /** Link types met that flowtap does not read, with the packets passed over for each. */
  readonly unsupportedLinkTypes = new Map<number, number>();
  /**
   * Copies of a packet met again on another interface of the capture (DEDUPER=firstCome): their
   * interface is listed on the flow, they are not counted again. Every packet read is counted,
   * skipped or one of these.
   */
  duplicates = 0;
  /** Rows of 0 packets that add an interface to a flow's list (one per flow and new interface). */
  listRows = 0;
  /** What the TCP health analysis measured (src/capture/pcap/tcp-health.ts). */
  readonly tcpHealth: TcpHealthStats = emptyTcpHealthStats();

  /** Sum of all skips. */
  get skippedTotal(): number {
    let total = 0;
    for (const n of this.skipped) total += n;
    return total;
  }
}

/** How packets become rows, besides the direction rules. */
export interface PacketSinkOptions {
  /** Compiled filter: packets it rejects are skipped as `filtered`. */
  filter?: FilterProgram;
  /** One flow for a packet seen on several of the capture's interfaces (default true). */
  dedup?: boolean;
  /** Key tunnelled packets by the packet inside (default false). */
  tunnels?: boolean;
  /** DNS tracking (ENABLE_DNS_TRACKING): sees every counted packet. */
  dns?: DnsTracker;
  /** What TCP health to measure (default: nothing). */
  tcpHealth?: TcpHealthOptions;
}

/** Turns packets into rows; framers call {@link PacketSink.packet} once per packet record. */
export class PacketSink {
  /** Events of the packets counted since the last batch was taken. */
  readonly builder: EventBatchBuilder;
  /** Names of the interfaces declared so far, by flowtap interface index. */
  readonly interfaces = new InterfaceRegistry();
  /** Counters of this read. */
  readonly stats = new CaptureStats();
  readonly #linkTypes: number[] = [];
  readonly #names: string[] = [];
  /** Interfaces declared by earlier inputs of the capture, and those the current input took over. */
  #earlierInputsInterfaces = 0;
  #takenOver: number[] = [];
  #declaredInInput = 0;
  readonly #local: LocalHosts;
  readonly #filter: FilterProgram | undefined;
  readonly #link = new LinkLayerParser();
  readonly #eventWords = new RowWords();
  readonly #deduper: PacketDeduper | undefined;
  readonly #dns: DnsTracker | undefined;
  readonly #tcpHealth: TcpHealth | undefined;

  constructor(local: LocalHosts = NO_LOCAL_HOSTS, initialRows = 4096, options: PacketSinkOptions = {}) {
    const filter = options.filter;
    this.#local = local;
    this.#filter = filter;
    this.#deduper = options.dedup === false ? undefined : new PacketDeduper();
    // The filter's `vlan` test reads the outer tag before a tunnel may replace the key's.
    this.#link.trackVlan = filter !== undefined;
    this.#link.tunnels = options.tunnels === true;
    this.#dns = options.dns;
    this.builder = new EventBatchBuilder(initialRows, this.interfaces);
    const health = options.tcpHealth;
    this.#tcpHealth =
      health && (health.rtt || health.retransmissions)
        ? new TcpHealth(health, this.stats.tcpHealth)
        : undefined;
  }

  /** Interfaces declared so far. */
  get interfaceCount(): number {
    return this.#linkTypes.length;
  }

  /** Interfaces the current input has declared. */
  get interfacesDeclaredInInput(): number {
    return this.#declaredInInput;
  }

  /**
   * Declares the current input's next interface and returns its index: a new one (index =
   * interfaces declared before it), or one of an earlier input with the same name and link type.
   */
  addInterface(linkType: number, name: string): number {
    this.#declaredInInput++;
    for (let i = 0; i < this.#earlierInputsInterfaces; i++) {
      if (this.#linkTypes[i] === linkType && this.#names[i] === name && !this.#takenOver.includes(i)) {
        this.#takenOver.push(i);
        return i;
      }
    }
    const index = this.#linkTypes.length;
    this.#linkTypes.push(linkType);
    this.#names.push(name);
    this.interfaces.set(index, name);
    if (!isSupportedLinkType(linkType) && !this.stats.unsupportedLinkTypes.has(linkType)) {
      this.stats.unsupportedLinkTypes.set(linkType, 0);
    }
    return index;
  }

  /** Starts the next input of the capture: its interfaces may be those of the inputs before. */
  beginInput(): void {
    this.#earlierInputsInterfaces = this.#linkTypes.length;
    this.#takenOver = [];
    this.#declaredInInput = 0;
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
    const link = this.#link;
    const status = link.parse(this.#linkTypes[ifIndex], data, off, captured, wireBytes, out, row);
    if (status !== PARSE_OK) {
      builder.dropLastRow();
      stats.skipped[skipReasonOf(status, captured < wireBytes)]++;
      if (status === PARSE_UNSUPPORTED_LINK) {
        const linkType = link.unsupportedLinkType;
        stats.unsupportedLinkTypes.set(linkType, (stats.unsupportedLinkTypes.get(linkType) ?? 0) + 1);
      }
      return;
    }
    const bytes = link.countedBytes;
    let direction =
      recordedDirection === RECORDED_DIRECTION_UNKNOWN ? link.recordedDirection : recordedDirection;
    if (!this.#local.isEmpty) {
      direction = this.#local.isLocalSource(out, row) ? Direction.EGRESS : Direction.INGRESS;
    } else if (direction === RECORDED_DIRECTION_UNKNOWN) {
      direction = Direction.INGRESS;
    }
    out[row + V2.DIRECTION] = direction;
    if (this.#filter) {
      // After the direction is known, as the kernel program knows its own before testing.
      const verdict = filterVerdict(this.#filter, out, row, link.vlanId);
      if (verdict === VERDICT_REJECT || (verdict > 1 && Math.floor(Math.random() * verdict) !== 0)) {
        builder.dropLastRow();
        stats.skipped[verdict === VERDICT_REJECT ? SkipReason.FILTERED : SkipReason.SAMPLED_OUT]++;
        return;
      }
    }
    // Word stores into the zeroed event (its buffer is 4-byte aligned, events 4-byte multiples).
    const words = this.#eventWords.of(out);
    const w = row >>> 2;
    words[w + W_IF_INDEX] = ifIndex;
    words[w + W_CROSSED_IF_INDEX] = ifIndex;
    words[w + W_CROSSED_DIRECTION] = direction; // crossed_direction[0]
    words[w + W_CROSSED_DIRECTION + 1] = ONE_CROSSED; // crossed_count
    toUnixNs(seconds, nanos);
    words[w + W_FIRST_SEEN_NS] = unixNs.lo;
    words[w + W_FIRST_SEEN_NS + 1] = unixNs.hi;
    words[w + W_LAST_SEEN_NS] = unixNs.lo;
    words[w + W_LAST_SEEN_NS + 1] = unixNs.hi;
    if (this.#deduper && this.#linkTypes.length > 1) {
      const verdict = this.#deduper.classify(out, row);
      if (verdict !== DedupVerdict.COUNT) {
        stats.duplicates++;
        if (verdict === DedupVerdict.DROP) builder.dropLastRow();
        else stats.listRows++;
        return;
      }
    }
    words[w + W_BYTES] = bytes; // a frame's length is a u32
    words[w + W_PACKETS] = 1;
    stats.counted++;
    this.#tcpHealth?.observe(data, off, captured, wireBytes, seconds, nanos, builder, row);
    this.#dns?.packet(data, off + captured, captured < wireBytes, builder, row, seconds, nanos);
  }

  /** The capture ended: DNS queries still waiting are counted unanswered, as events of their flows. */
  finishCapture(): void {
    this.#dns?.finish(this.builder);
  }
}

/** The skip reason of a parse status other than PARSE_OK; `cut`: the capture kept less than the wire had. */
function skipReasonOf(status: number, cut: boolean): number {
  switch (status) {
    case PARSE_TRUNCATED:
      return cut ? SkipReason.SNAPPED : SkipReason.PARSE_ERROR;
    case PARSE_LINK_CONTROL:
      return SkipReason.LINK_CONTROL;
    case PARSE_ENCRYPTED:
      return SkipReason.ENCRYPTED;
    case PARSE_UNSUPPORTED_LINK:
      return SkipReason.UNSUPPORTED_LINK_TYPE;
    default:
      return SkipReason.PARSE_ERROR;
  }
}
