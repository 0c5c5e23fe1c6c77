/**
 * The snapshot the page renders: chart series, top flows and top talkers (the top N by bytes
 * together with the top N by packets, so the page can sort on either and show the true top N),
 * filter choices, the aggregate's own counters and the agent's health.
 *
 * Filters are applied here, on the server, to every flow in the window before the top N is taken:
 * filtering only the N rows the page holds would hide exactly what a filter is for, the flows of
 * one host or port that are not among the biggest overall. A scan of the window (bounded by the
 * TopWindow capacity) per connected filter per push costs milliseconds; the page gets N rows.
 */

import { RTT_KIND_NAMES } from '../codec/health-figures.ts';
import { V2 } from '../codec/v2-layout.ts';
import { type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import { formatIp, isIpv4Mapped } from '../model/ip.ts';
import { directionName, EtherType, transportProtocolName, transportProtocolNumber } from '../model/names.ts';
import { flowServiceName } from '../model/services.ts';
import {
  type AggregateStats,
  type EntryInfo,
  FLOW_KEY_DIRECTION_AT,
  type FlowAggregate,
  type Timeline,
} from './aggregate.ts';
import { type DnsSnapshot, dnsSnapshot } from './dns-window.ts';
import type { HealthSnapshot } from './health.ts';
import { OTHER_SERIES_NAME } from './throughput.ts';
import type { WindowEntry } from './top-window.ts';

/** What the page asked to see; empty fields match everything. */
export interface WebFilter {
  /** Exact interface name. */
  readonly interfaceName: string;
  /** IANA protocol number, or undefined for all. */
  readonly proto: number | undefined;
  /** Substring of either address or either port (lower case). */
  readonly text: string;
}

/** The filter that matches everything. */
export const NO_FILTER: WebFilter = Object.freeze({ interfaceName: '', proto: undefined, text: '' });

/** Longest filter text accepted (an IPv6 address with room to spare). */
const MAX_FILTER_CHARS = 64;

/**
 * Reads `interface`, `proto` (name or number) and `q` from a request's query. Returns a message
 * saying what is wrong instead when a value is unusable.
 */
export function parseWebFilter(params: URLSearchParams): WebFilter | string {
  const interfaceName = params.get('interface') ?? '';
  const protoText = params.get('proto') ?? '';
  const text = (params.get('q') ?? '').trim().toLowerCase();
  if (interfaceName.length > MAX_FILTER_CHARS || text.length > MAX_FILTER_CHARS) {
    return `filter values are limited to ${MAX_FILTER_CHARS} characters`;
  }
  let proto: number | undefined;
  if (protoText !== '') {
    proto = transportProtocolNumber(protoText);
    if (proto === undefined)
      return `unknown protocol ${JSON.stringify(protoText)}: use a name such as TCP or a number 0-255`;
  }
  return { interfaceName, proto, text };
}

/** One row of the top flows. */
export interface FlowRow {
  interface: string;
  direction: string;
  proto: string;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** ICMP type name (`echo-request`) or the IANA service of its port (`https`); '' when unknown. */
  service: string;
  /** Reverse DNS names of `src` and `dst` (--resolve), when they have one. */
  srcName?: string;
  dstName?: string;
  bytes: number;
  packets: number;
  /** Flow records (evictions) summed into the row. */
  records: number;
  /** Interfaces the flow crossed with their direction (`veth1 in,br0 in,eth0 out`), '' when not known. */
  crossed: string;
  /** The tunnel the flow arrived in (`VXLAN 42 192.0.2.1>192.0.2.2`), '' when none. */
  tunnel: string;
  /** The flow's RTT in ns (the latest record's that measured one); absent when never measured. */
  rttNs?: number;
  /** What `rttNs` is: `smoothed` (the socket's smoothed RTT) or `handshake`. */
  rttKind?: string;
  /** Packets and bytes of the flow the kernel dropped. */
  drops: number;
  dropBytes: number;
  /** The kernel's reason of the latest drop (`NETFILTER_DROP`), '' without drops. */
  dropReason: string;
  /** Retransmitted TCP segments. */
  retrans: number;
}

/** One host of the "who is dropping" list: a source address whose packets the kernel dropped. */
export interface DroppingHostRow {
  interface: string;
  address: string;
  /** Reverse DNS name of `address` (--resolve), when it has one. */
  name?: string;
  drops: number;
  dropBytes: number;
  /** The kernel's reason of the host's latest drop. */
  dropReason: string;
}

/** Who is dropping: the flows and hosts with the most packets the kernel dropped, most first. */
export interface DroppingLists {
  flows: FlowRow[];
  hosts: DroppingHostRow[];
}

/** One row of the top talkers: a source address on an interface. */
export interface TalkerRow {
  interface: string;
  address: string;
  /** Reverse DNS name of `address` (--resolve), when it has one. */
  name?: string;
  bytes: number;
  packets: number;
  /** Flow records from this source. */
  records: number;
}

/** One line of the chart. */
export interface ChartSeries {
  interface: string;
  direction: string;
  /** One value per second from `chartStartSecond`. */
  bytesPerSecond: number[];
}

/** Everything the page shows, as sent on the event stream. */
export interface WebSnapshot {
  timeline: Timeline;
  /** First second of the chart, Unix seconds; the chart has one value per second to `endSecond`. */
  chartStartSecond: number;
  /** Last second of the window, Unix seconds (0 while nothing was seen on the records timeline). */
  endSecond: number;
  chart: ChartSeries[];
  /** Length of the top tables' window. */
  topWindowSeconds: number;
  /** Rows per table the page shows. */
  topN: number;
  flows: FlowRow[];
  talkers: TalkerRow[];
  /** The flows and hosts with the most dropped packets (only those with drops), at most `dropTopN` each. */
  dropping: DroppingLists;
  /** Rows the dropping lists hold at most. */
  dropTopN: number;
  /** Flows and talkers in the window that match the filter (the tables hold the top of them). */
  matchingFlows: number;
  matchingTalkers: number;
  /** Interfaces that can be filtered on. */
  interfaces: string[];
  filter: { interface: string; proto: string; q: string };
  aggregate: AggregateStats;
  /** The DNS panel (DNS tracking): slowest and failing names; null when no flow carried DNS. */
  dns: DnsSnapshot | null;
  health: HealthSnapshot | null;
  /** True when the view keeps a flow store, so the page may ask for past windows (/history.json). */
  historyAvailable: boolean;
}

/** Address text of the 16 bytes at `offset` of a key string. */
function addressText(key: string, offset: number): string {
  const bytes = Buffer.from(key.slice(offset, offset + 16), 'latin1');
  return formatIp(bytes, 0, isIpv4Mapped(bytes, 0) ? EtherType.IPV4 : EtherType.IPV6);
}

/** Little-endian u16 stored in two latin1 characters. */
function u16At(key: string, at: number): number {
  return key.charCodeAt(at) | (key.charCodeAt(at + 1) << 8);
}

/** Flow key offsets, relative to the source address (see FLOW_KEY_* in aggregate.ts). */
const FK = {
  SRC: 0,
  DST: 16,
  SRC_PORT: 32,
  DST_PORT: 34,
  ICMP_TYPE: V2.ICMP_TYPE - V2.SRC_ADDR,
  ICMP_CODE: V2.ICMP_CODE - V2.SRC_ADDR,
  DIRECTION: FLOW_KEY_DIRECTION_AT,
  PROTO: FLOW_KEY_DIRECTION_AT + 1,
};
/** Talker key offsets: address, then protocol, then the decimal interface index. */
const TK = { ADDRESS: 0, PROTO: 16 } as const;

/** Lazily computed address texts, kept on the entry so filters do not format them every push. */
interface LabelledInfo extends EntryInfo {
  src?: string;
  dst?: string;
}

function srcText(entry: WindowEntry<EntryInfo>): string {
  const info = entry.info as LabelledInfo;
  info.src ??= addressText(entry.key, FK.SRC);
  return info.src;
}

function dstText(entry: WindowEntry<EntryInfo>): string {
  const info = entry.info as LabelledInfo;
  info.dst ??= addressText(entry.key, FK.DST);
  return info.dst;
}

function flowMatches(entry: WindowEntry<EntryInfo>, filter: WebFilter): boolean {
  if (filter.interfaceName !== '' && entry.info?.interfaceName !== filter.interfaceName) return false;
  if (filter.proto !== undefined && entry.key.charCodeAt(FK.PROTO) !== filter.proto) return false;
  const q = filter.text;
  if (q === '') return true;
  return (
    srcText(entry).includes(q) ||
    dstText(entry).includes(q) ||
    String(u16At(entry.key, FK.SRC_PORT)).includes(q) ||
    String(u16At(entry.key, FK.DST_PORT)).includes(q)
  );
}

function talkerMatches(entry: WindowEntry<EntryInfo>, filter: WebFilter): boolean {
  if (filter.interfaceName !== '' && entry.info?.interfaceName !== filter.interfaceName) return false;
  if (filter.proto !== undefined && entry.key.charCodeAt(TK.PROTO) !== filter.proto) return false;
  return filter.text === '' || srcText(entry).includes(filter.text);
}

/**
 * The `n` items with the largest `score`, largest first: one pass keeping a sorted array of `n`,
 * so a window of 100 000 entries costs a comparison each, not a sort.
 */
export function largest<T>(items: Iterable<T>, n: number, score: (item: T) => number): T[] {
  const top: T[] = [];
  const scores: number[] = [];
  for (const item of items) {
    const s = score(item);
    if (top.length === n && s <= scores[n - 1]) continue;
    let lo = 0;
    let hi = top.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (scores[mid] >= s) lo = mid + 1;
      else hi = mid;
    }
    top.splice(lo, 0, item);
    scores.splice(lo, 0, s);
    if (top.length > n) {
      top.pop();
      scores.pop();
    }
  }
  return top;
}

/** Rows of each "who is dropping" list. */
export const DROP_TOP_N = 10;

/**
 * The top `n` by bytes followed by those of the top `n` by each other score not already in it,
 * so the page can sort on any of them and show the true top `n`.
 */
function topByEach<T extends { bytes: number; packets: number }>(
  items: T[],
  n: number,
  ...others: ((item: T) => number)[]
): T[] {
  const top = largest(items, n, (e) => e.bytes);
  const seen = new Set(top);
  for (const score of [(e: T) => e.packets, ...others]) {
    for (const e of largest(items, n, score)) {
      if (seen.has(e)) continue;
      seen.add(e);
      top.push(e);
    }
  }
  return top;
}

const dropsOf = (e: { dropPackets: number }) => e.dropPackets;
const rttOf = (e: WindowEntry<EntryInfo>) => e.info?.rttNs ?? -1;

function flowRow(entry: WindowEntry<EntryInfo>, dropReasons: DropReasonSource): FlowRow {
  const key = entry.key;
  const info = entry.info;
  const health: Pick<FlowRow, 'rttNs' | 'rttKind'> =
    info?.rttNs === undefined ? {} : { rttNs: info.rttNs, rttKind: RTT_KIND_NAMES[info.rttKind ?? 0] };
  return {
    interface: entry.info?.interfaceName ?? '',
    direction: directionName(key.charCodeAt(FK.DIRECTION)),
    proto: transportProtocolName(key.charCodeAt(FK.PROTO)),
    src: srcText(entry),
    srcPort: u16At(key, FK.SRC_PORT),
    dst: dstText(entry),
    dstPort: u16At(key, FK.DST_PORT),
    service: flowServiceName({
      proto: key.charCodeAt(FK.PROTO),
      srcPort: u16At(key, FK.SRC_PORT),
      dstPort: u16At(key, FK.DST_PORT),
      icmpType: key.charCodeAt(FK.ICMP_TYPE),
      icmpCode: key.charCodeAt(FK.ICMP_CODE),
    }),
    bytes: entry.bytes,
    packets: entry.packets,
    records: entry.records,
    crossed: entry.info?.crossed ?? '',
    tunnel: entry.info?.tunnel ?? '',
    ...health,
    drops: entry.dropPackets,
    dropBytes: entry.dropBytes,
    dropReason: dropReasonOf(entry.dropPackets, info, dropReasons),
    retrans: entry.retransPackets,
  };
}

/** The name of `info`'s latest drop reason when there were drops, else ''. */
function dropReasonOf(drops: number, info: EntryInfo | undefined, dropReasons: DropReasonSource): string {
  return drops > 0 && info?.dropCause !== undefined ? dropReasons().nameOf(info.dropCause) : '';
}

/**
 * The hosts (source address on an interface, over protocols) of matching talkers with drops,
 * with the reason of each host's latest drop.
 */
function droppingHosts(
  aggregate: FlowAggregate,
  filter: WebFilter,
  dropReasons: DropReasonSource,
): DroppingHostRow[] {
  const byHost = new Map<string, { row: DroppingHostRow; latestNs: number }>();
  for (const entry of aggregate.talkers.entries()) {
    if (entry.dropPackets <= 0 || !talkerMatches(entry, filter)) continue;
    const host = entry.key.slice(0, TK.PROTO) + entry.key.slice(TK.PROTO + 1);
    let held = byHost.get(host);
    if (!held) {
      held = {
        row: {
          interface: entry.info?.interfaceName ?? '',
          address: srcText(entry),
          drops: 0,
          dropBytes: 0,
          dropReason: '',
        },
        latestNs: Number.NEGATIVE_INFINITY,
      };
      byHost.set(host, held);
    }
    held.row.drops += entry.dropPackets;
    held.row.dropBytes += entry.dropBytes;
    const atNs = entry.info?.dropAtNs ?? Number.NEGATIVE_INFINITY;
    if (atNs >= held.latestNs) {
      held.latestNs = atNs;
      held.row.dropReason = dropReasonOf(entry.dropPackets, entry.info, dropReasons);
    }
  }
  return [...byHost.values()].map((h) => h.row);
}

/** Talkers of the matching entries, summed over protocols per (address, interface). */
function talkerRows(aggregate: FlowAggregate, filter: WebFilter): TalkerRow[] {
  const byHost = new Map<string, TalkerRow>();
  for (const entry of aggregate.talkers.entries()) {
    if (!talkerMatches(entry, filter)) continue;
    const host = entry.key.slice(0, TK.PROTO) + entry.key.slice(TK.PROTO + 1);
    let row = byHost.get(host);
    if (!row) {
      row = {
        interface: entry.info?.interfaceName ?? '',
        address: srcText(entry),
        bytes: 0,
        packets: 0,
        records: 0,
      };
      byHost.set(host, row);
    }
    row.bytes += entry.bytes;
    row.packets += entry.packets;
    row.records += entry.records;
  }
  return [...byHost.values()];
}

/** Address → name (reverse DNS with --resolve); the address itself when it has none. */
export type AddressNames = (address: string) => string;

/** `row` with the names `nameOf` knows for its addresses. */
function named<T extends FlowRow | TalkerRow | DroppingHostRow>(row: T, nameOf: AddressNames | undefined): T {
  if (!nameOf) return row;
  if ('address' in row) {
    const name = nameOf(row.address);
    return name === row.address ? row : { ...row, name };
  }
  const srcName = nameOf(row.src);
  const dstName = nameOf(row.dst);
  return {
    ...row,
    ...(srcName === row.src ? {} : { srcName }),
    ...(dstName === row.dst ? {} : { dstName }),
  };
}

/**
 * Builds the snapshot of `aggregate` through `filter`, with `topN` rows per table and order.
 * `dropReasons` names the kernel's drop reasons; it is asked only when a row has drops.
 */
export function buildSnapshot(
  aggregate: FlowAggregate,
  filter: WebFilter,
  topN: number,
  health: HealthSnapshot | undefined,
  historyAvailable = false,
  nameOf?: AddressNames,
  dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS,
): WebSnapshot {
  const throughput = aggregate.throughput;
  const endSecond = aggregate.endSecond;
  // The chart starts at the window's start, or later when the data does: never empty minutes
  // before the agent started or the capture's first packet.
  const windowStart = endSecond - throughput.windowSeconds + 1;
  const chartStartSecond = Math.min(endSecond, Math.max(windowStart, aggregate.firstSecond));
  const chart: ChartSeries[] = [];
  const interfaces = new Set<string>();
  for (const series of throughput.series()) {
    if (series.interfaceName !== OTHER_SERIES_NAME) interfaces.add(series.interfaceName);
    if (endSecond === 0) continue;
    if (filter.interfaceName !== '' && series.interfaceName !== filter.interfaceName) continue;
    chart.push({
      interface: series.interfaceName,
      direction: series.direction,
      bytesPerSecond: throughput.bytesPerSecond(series).slice(chartStartSecond - windowStart),
    });
  }
  const matching: WindowEntry<EntryInfo>[] = [];
  for (const entry of aggregate.flows.entries()) if (flowMatches(entry, filter)) matching.push(entry);
  const talkers = talkerRows(aggregate, filter);
  return {
    timeline: aggregate.timeline,
    chartStartSecond,
    endSecond,
    chart,
    topWindowSeconds: aggregate.flows.windowSeconds,
    topN,
    flows: topByEach(matching, topN, dropsOf, rttOf).map((entry) =>
      named(flowRow(entry, dropReasons), nameOf),
    ),
    talkers: topByEach(talkers, topN).map((row) => named(row, nameOf)),
    dropping: {
      flows: largest(
        matching.filter((e) => e.dropPackets > 0),
        DROP_TOP_N,
        dropsOf,
      ).map((entry) => named(flowRow(entry, dropReasons), nameOf)),
      hosts: largest(droppingHosts(aggregate, filter, dropReasons), DROP_TOP_N, (h) => h.drops).map((row) =>
        named(row, nameOf),
      ),
    },
    dropTopN: DROP_TOP_N,
    matchingFlows: matching.length,
    matchingTalkers: talkers.length,
    interfaces: [...interfaces].sort(),
    filter: {
      interface: filter.interfaceName,
      proto: filter.proto === undefined ? '' : transportProtocolName(filter.proto),
      q: filter.text,
    },
    aggregate: aggregate.stats,
    dns: dnsSnapshot(aggregate.dns, topN),
    health: health ?? null,
    historyAvailable,
  };
}
