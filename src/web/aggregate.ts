/**
 * What the web view keeps of the evicted flows: per-second throughput per (interface, direction)
 * for the chart, and sliding-window totals per flow and per talker for the top tables (bytes,
 * packets, dropped packets and retransmitted segments, with the latest RTT and drop reason seen
 * for each, for the RTT and drops columns and the "who is dropping" list). Batches are
 * read in place, one pass per batch, with no object per record except for a key seen for the first
 * time in a window segment; everything is bounded (see ThroughputWindow and TopWindow), so
 * 100 000 flows a minute cost the same memory as 1 000 000 would.
 *
 * Time: on the `wall` timeline (live capture) the window ends now and slides with the clock; on
 * the `records` timeline (a capture file) it ends at the latest flow end seen, so a capture's
 * minutes show as they were recorded, however fast the file is read.
 */

import {
  rowDropBytes,
  rowDropCause,
  rowDropLatestNs,
  rowDropPackets,
  rowDropTcpState,
  rowRetransPackets,
  rowRttKind,
  rowRttNs,
} from '../codec/health-figures.ts';
import { crossedText, tunnelText } from '../codec/identity-text.ts';
import { type RecordBatch, rowHasDns } from '../codec/record-batch.ts';
import { RecordFlag, V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { TWO_POW_32 } from '../model/u64.ts';
import { DnsNameWindow } from './dns-window.ts';
import { ThroughputWindow } from './throughput.ts';
import { TopWindow } from './top-window.ts';

/** Which clock places the window: the wall clock, or the records' own times. */
export type Timeline = 'wall' | 'records';

/**
 * What the aggregate attaches to a flow or talker entry when it first sees its key, and the
 * latest health values it saw for it (sums of drops and retransmissions are the entry's own).
 */
export interface EntryInfo {
  /** Interface name as the batch resolved it (`if<index>` when unnamed). */
  readonly interfaceName: string;
  /** Flows: the interfaces crossed as `crossedText` prints them ('' when not known). */
  readonly crossed?: string;
  /** Flows: the tunnel as `tunnelText` prints it ('' when not encapsulated). */
  readonly tunnel?: string;
  /** Flows: the RTT of the latest record that had one, ns (src/codec/health-figures.ts). */
  rttNs?: number;
  /** Its `RttKind`. */
  rttKind?: number;
  /** The latest drop seen: the kernel's reason, the TCP state, its time (ns). */
  dropCause?: number;
  dropTcpState?: number;
  dropAtNs?: number;
}

/** Bounds and clock of a {@link FlowAggregate}. */
export interface FlowAggregateOptions {
  timeline: Timeline;
  /** Seconds of throughput the chart holds. */
  chartSeconds?: number;
  /** (interface, direction) series kept apart; the rest share `(other)`. */
  maxSeries?: number;
  /** Seconds one top-table segment covers. */
  topSegmentSeconds?: number;
  /** Segments of the top tables' window (window = segment seconds × segments). */
  topSegmentCount?: number;
  /** Distinct flows (and talkers) one segment holds before its smallest are pruned. */
  topSegmentCapacity?: number;
  /** Wall clock in Unix ms (tests pass a fake). */
  nowMs?: () => number;
}

/** Default chart length: the last five minutes. */
export const DEFAULT_CHART_SECONDS = 300;
/** Default top-table window: the last minute, in 10 s steps. */
export const DEFAULT_TOP_SEGMENT_SECONDS = 10;
/** Segments of the default top-table window. */
export const DEFAULT_TOP_SEGMENT_COUNT = 6;
/** Distinct keys per segment: 100 000 flows a minute fit without pruning. */
export const DEFAULT_TOP_SEGMENT_CAPACITY = 25_000;
/** Default bound on chart series (16 interfaces in both directions). */
export const DEFAULT_MAX_SERIES = 32;

/**
 * The bounds of a capture file's view (`read --web`): the whole capture up to an hour, in the chart
 * (3600 one-second buckets per series) and in the top tables (six 10-minute segments), so a
 * finished capture shows from its first packet, not only its last minute.
 */
export const CAPTURE_FILE_WINDOW: Readonly<Omit<FlowAggregateOptions, 'timeline'>> = Object.freeze({
  chartSeconds: 3600,
  topSegmentSeconds: 600,
  topSegmentCount: 6,
});

/** Counters of what the aggregate did with the records it was given. */
export interface AggregateStats {
  /** Records counted into the window. */
  records: number;
  /** Records whose flow ended before the window (late, or a capture going back in time). */
  outOfWindow: number;
  /** Records without an end time (a source that did not stamp them), left out. */
  withoutTime: number;
  /** Flow and talker keys forgotten because a segment was full (the smallest ones). */
  prunedKeys: number;
}

const NS_PER_SECOND = 1e9;

/** The u64 counter at `offset` as a number (exact below 2^53). */
function u64At(buf: Buffer, offset: number): number {
  return buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_POW_32;
}

/** Unix seconds of the u64 nanoseconds at `offset` (a double is exact enough for seconds). */
function secondsAt(buf: Buffer, offset: number): number {
  return Math.floor((buf.readUInt32LE(offset) + buf.readUInt32LE(offset + 4) * TWO_POW_32) / NS_PER_SECOND);
}

/** Flow key text: addresses, ports, interface index, ICMP type/code, VLAN ids (bytes 16..62), direction, protocol. */
const FLOW_KEY_START = V2.SRC_ADDR;
const FLOW_KEY_END = V2.KEY_PAD;
/** Where the direction and protocol characters sit in a flow key string. */
export const FLOW_KEY_DIRECTION_AT = FLOW_KEY_END - FLOW_KEY_START;

/** Keeps row `o`'s drop on `info` when it is the latest seen there. */
function noteDrop(info: EntryInfo, b: Buffer, o: number): void {
  const atNs = rowDropLatestNs(b, o);
  if (info.dropAtNs !== undefined && atNs < info.dropAtNs) return;
  info.dropAtNs = atNs;
  info.dropCause = rowDropCause(b, o);
  info.dropTcpState = rowDropTcpState(b, o);
}

/** Per-second throughput and sliding-window top flows and talkers. */
export class FlowAggregate {
  readonly timeline: Timeline;
  readonly throughput: ThroughputWindow;
  /** Flows by key (see FLOW_KEY_*). */
  readonly flows: TopWindow<EntryInfo>;
  /** Sources by key: address (16 bytes), protocol (one character), interface index (decimal). */
  readonly talkers: TopWindow<EntryInfo>;
  /** DNS question names of the flows that carried DNS, over the top tables' window. */
  readonly dns: DnsNameWindow;
  readonly #nowMs: () => number;
  readonly #stats = { records: 0, outOfWindow: 0, withoutTime: 0 };
  /** Bumped whenever what a snapshot would show changes. */
  #version = 0;
  /** Last second a record was counted at; tells whether the window still shows anything. */
  #lastDataSecond = Number.NEGATIVE_INFINITY;
  /** First second a counted record began at. */
  #firstDataSecond = Number.POSITIVE_INFINITY;
  /** Second the aggregate was made (the agent's start, on the wall timeline). */
  readonly #createdSecond: number;

  constructor(options: FlowAggregateOptions) {
    this.timeline = options.timeline;
    this.#nowMs = options.nowMs ?? Date.now;
    this.throughput = new ThroughputWindow(
      options.chartSeconds ?? DEFAULT_CHART_SECONDS,
      options.maxSeries ?? DEFAULT_MAX_SERIES,
    );
    const top = {
      segmentSeconds: options.topSegmentSeconds ?? DEFAULT_TOP_SEGMENT_SECONDS,
      segmentCount: options.topSegmentCount ?? DEFAULT_TOP_SEGMENT_COUNT,
      segmentCapacity: options.topSegmentCapacity ?? DEFAULT_TOP_SEGMENT_CAPACITY,
    };
    this.flows = new TopWindow(top);
    this.talkers = new TopWindow(top);
    this.dns = new DnsNameWindow(top.segmentSeconds, top.segmentCount);
    this.#createdSecond = Math.floor(this.#nowMs() / 1000);
  }

  /**
   * The first second worth charting: the view's start on the wall timeline (a chart of an agent
   * that started a minute ago starts a minute ago), the first record's on the records timeline.
   * Infinity before any record on the records timeline.
   */
  get firstSecond(): number {
    return this.timeline === 'wall' ? this.#createdSecond : this.#firstDataSecond;
  }

  /** Changes each time what a snapshot shows changes; compare to skip unchanged pushes. */
  get version(): number {
    return this.#version;
  }

  /** Last second of the window (Unix seconds; 0 before any record on the records timeline). */
  get endSecond(): number {
    return this.throughput.endSecond;
  }

  /** What happened to the records given so far. */
  get stats(): AggregateStats {
    return { ...this.#stats, prunedKeys: this.flows.prunedKeys + this.talkers.prunedKeys };
  }

  /**
   * On the wall timeline, slides the window to now (the chart scrolls and old flows leave the
   * tables even when nothing arrives). A no-op on the records timeline.
   */
  tick(): void {
    if (this.timeline === 'wall') this.#advanceTo(Math.floor(this.#nowMs() / 1000));
  }

  /** Counts every row of `batch`. Synchronous, one pass (two on the records timeline). */
  add(batch: RecordBatch): void {
    const b = batch.bytes;
    const count = batch.count;
    if (count === 0) return;
    let nowSecond: number;
    if (this.timeline === 'wall') {
      nowSecond = Math.floor(this.#nowMs() / 1000);
    } else {
      nowSecond = 0;
      for (let i = 0, o = V2.LAST_SEEN_NS; i < count; i++, o += V2_RECORD_BYTES) {
        const last = secondsAt(b, o);
        if (last > nowSecond) nowSecond = last;
      }
    }
    this.#advanceTo(nowSecond);
    const stats = this.#stats;
    let lastIfIndex = -1;
    let lastIfName = '';
    for (let i = 0; i < count; i++) {
      const o = i * V2_RECORD_BYTES;
      let last = secondsAt(b, o + V2.LAST_SEEN_NS);
      if (last === 0) {
        stats.withoutTime++;
        continue;
      }
      // A flow stamped after now (clock steps, skew between sources) belongs to the newest second.
      if (last > nowSecond) last = nowSecond;
      const first = secondsAt(b, o + V2.FIRST_SEEN_NS) || last;
      const ifIndex = b.readUInt32LE(o + V2.IF_INDEX);
      if (ifIndex !== lastIfIndex) {
        lastIfIndex = ifIndex;
        lastIfName = batch.interfaces.nameOf(ifIndex) || `if${ifIndex}`;
      }
      const direction = b[o + V2.DIRECTION];
      const proto = b[o + V2.TRANSPORT_PROTOCOL];
      let bytes = batch.bytesAt(i);
      let packets = batch.packetsAt(i);
      if (!this.throughput.add(ifIndex, direction, lastIfName, first, last, bytes, packets)) {
        stats.outOfWindow++;
        continue;
      }
      if (b[o + V2.RECORD_FLAGS] & RecordFlag.BIFLOW) {
        // A bidirectional record: the reverse traffic went the other way on the same interface,
        // and the flow's row in the tables counts both directions.
        const revBytes = u64At(b, o + V2.REV_BYTES);
        const revPackets = u64At(b, o + V2.REV_PACKETS);
        if (revPackets > 0) {
          const revLast = Math.min(secondsAt(b, o + V2.REV_LAST_SEEN_NS) || last, nowSecond);
          const revFirst = secondsAt(b, o + V2.REV_FIRST_SEEN_NS) || revLast;
          const revDirection = direction <= 1 ? 1 - direction : direction;
          this.throughput.add(ifIndex, revDirection, lastIfName, revFirst, revLast, revBytes, revPackets);
          bytes += revBytes;
          packets += revPackets;
        }
      }
      stats.records++;
      if (last > this.#lastDataSecond) this.#lastDataSecond = last;
      if (first < this.#firstDataSecond) this.#firstDataSecond = first;
      const drops = rowDropPackets(b, o);
      const dropBytes = drops === 0 ? 0 : rowDropBytes(b, o);
      const retrans = rowRetransPackets(b, o);
      const tail = String.fromCharCode(direction, proto);
      const flow = this.flows.add(
        b.toString('latin1', o + FLOW_KEY_START, o + FLOW_KEY_END) + tail,
        last,
        bytes,
        packets,
        drops,
        dropBytes,
        retrans,
      );
      if (flow) {
        flow.info ??= {
          interfaceName: lastIfName,
          crossed: crossedText(b, o, batch.interfaces),
          tunnel: tunnelText(b, o),
        };
        const rttNs = rowRttNs(b, o);
        if (rttNs >= 0) {
          flow.info.rttNs = rttNs;
          flow.info.rttKind = rowRttKind(b, o);
        }
        if (drops > 0) noteDrop(flow.info, b, o);
      }
      const talkerKey =
        b.toString('latin1', o + V2.SRC_ADDR, o + V2.SRC_ADDR + 16) + String.fromCharCode(proto) + ifIndex;
      const talker = this.talkers.add(talkerKey, last, bytes, packets, drops, dropBytes, retrans);
      if (talker) {
        talker.info ??= { interfaceName: lastIfName };
        if (drops > 0) noteDrop(talker.info, b, o);
      }
      if (rowHasDns(b, o)) this.dns.addRow(b, o, last);
    }
    this.#version++;
  }

  #advanceTo(second: number): void {
    if (second <= this.throughput.endSecond) return;
    this.throughput.advanceTo(second);
    this.flows.advanceTo(second);
    this.talkers.advanceTo(second);
    this.dns.advanceTo(second);
    // The view changes as data slides out; once the window is empty, moving it changes nothing.
    if (second - this.#lastDataSecond <= this.throughput.windowSeconds) this.#version++;
  }
}
