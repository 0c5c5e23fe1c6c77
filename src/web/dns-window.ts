/**
 * The web view's DNS panel data: per question name, over the same sliding window as the top
 * tables, how many flows asked and answered it, how many failed (a response whose code is not
 * NoError), went unanswered or did not parse, and the largest and mean latency of its answers.
 * Read from the DNS section of each evicted row (DNS tracking); the panel shows the slowest and
 * the failing names.
 *
 * Bounded like TopWindow: a ring of segments, each a map of the names seen in it holding at most
 * `segmentCapacity` names (names past it in a segment are dropped and counted); a snapshot merges
 * the live segments.
 */
import { rowDnsName } from '../codec/record-batch.ts';
import { DnsFlag, V2 } from '../codec/v2-layout.ts';
import { DNS_QR_BIT, dnsRcode, dnsRcodeName } from '../model/dns-names.ts';
import { TWO_POW_32 } from '../model/u64.ts';

/** One name's counts in a segment, or over the window. */
export interface DnsNameCounts {
  /** Flow records that carried the name. */
  flows: number;
  queries: number;
  answers: number;
  unanswered: number;
  malformed: number;
  /** Records whose latest message is a response with a code other than NoError. */
  failures: number;
  /** Answer latencies measured (one per record with a latency), their sum and largest, in ns. */
  latencyCount: number;
  latencySumNs: number;
  latencyMaxNs: number;
  /** The response code name of the name's latest response record ('' when none yet). */
  rcode: string;
}

/** One row of the DNS panel. */
export interface DnsNameRow {
  /** The question name ('.' the root; '' a message with no readable name). */
  name: string;
  flows: number;
  queries: number;
  answers: number;
  unanswered: number;
  malformed: number;
  failures: number;
  /** The latest response's code name ('' when none). */
  rcode: string;
  /** Largest and mean answer latency in milliseconds; 0 when none was measured. */
  maxLatencyMs: number;
  meanLatencyMs: number;
}

/** What the panel shows: the slowest names and the failing ones. */
export interface DnsSnapshot {
  /** Names with a measured latency, slowest (largest latency) first. */
  slowest: DnsNameRow[];
  /** Names with failures, unanswered queries or malformed messages, most of them first. */
  failing: DnsNameRow[];
  /** Names in the window. */
  names: number;
  /** Names dropped because a segment was full. */
  droppedNames: number;
}

/** Names one segment holds by default. */
export const DEFAULT_DNS_SEGMENT_CAPACITY = 5_000;
const NO_ERROR = 0;

function emptyCounts(): DnsNameCounts {
  return {
    flows: 0,
    queries: 0,
    answers: 0,
    unanswered: 0,
    malformed: 0,
    failures: 0,
    latencyCount: 0,
    latencySumNs: 0,
    latencyMaxNs: 0,
    rcode: '',
  };
}

/** Sliding-window DNS counts per name; see the module comment. */
export class DnsNameWindow {
  readonly #segments: Map<string, DnsNameCounts>[];
  readonly #segmentIds: number[];
  #endSegment = -1;
  /** Names dropped because their segment was full. */
  droppedNames = 0;

  constructor(
    readonly segmentSeconds: number,
    readonly segmentCount: number,
    readonly segmentCapacity = DEFAULT_DNS_SEGMENT_CAPACITY,
  ) {
    this.#segments = Array.from({ length: segmentCount }, () => new Map());
    this.#segmentIds = new Array<number>(segmentCount).fill(-1);
  }

  /** Moves the window end to the segment of `second`, emptying the segments that fall out. */
  advanceTo(second: number): void {
    const segment = Math.floor(second / this.segmentSeconds);
    if (segment <= this.#endSegment) return;
    const from = Math.max(this.#endSegment + 1, segment - this.segmentCount + 1);
    for (let id = from; id <= segment; id++) {
      const slot = id % this.segmentCount;
      this.#segments[slot].clear();
      this.#segmentIds[slot] = id;
    }
    this.#endSegment = segment;
  }

  /** Counts the DNS section of the row at `o` of `b` (which has one) at `second`. */
  addRow(b: Buffer, o: number, second: number): void {
    const segment = Math.floor(second / this.segmentSeconds);
    if (segment <= this.#endSegment - this.segmentCount || segment > this.#endSegment) return;
    const flags = b[o + V2.DNS_RECORD_FLAGS];
    const name = (flags & DnsFlag.NAME) === 0 ? '' : rowDnsName(b, o) || '.';
    const counts = this.#segments[segment % this.segmentCount];
    let own = counts.get(name);
    if (own === undefined) {
      if (counts.size >= this.segmentCapacity) {
        this.droppedNames++;
        return;
      }
      own = emptyCounts();
      counts.set(name, own);
    }
    own.flows++;
    own.queries += b.readUInt32LE(o + V2.DNS_QUERIES);
    own.answers += b.readUInt32LE(o + V2.DNS_ANSWERS);
    own.unanswered += b.readUInt32LE(o + V2.DNS_UNANSWERED);
    own.malformed += b.readUInt32LE(o + V2.DNS_MALFORMED);
    const dnsFlags = b.readUInt16LE(o + V2.DNS_FLAGS);
    if ((flags & DnsFlag.HEADER) !== 0 && (dnsFlags & DNS_QR_BIT) !== 0) {
      own.rcode = dnsRcodeName(dnsFlags);
      if (dnsRcode(dnsFlags) !== NO_ERROR) own.failures++;
    }
    if ((flags & DnsFlag.LATENCY) !== 0) {
      const ns =
        b.readUInt32LE(o + V2.DNS_LATENCY_NS) + b.readUInt32LE(o + V2.DNS_LATENCY_NS + 4) * TWO_POW_32;
      own.latencyCount++;
      own.latencySumNs += ns;
      if (ns > own.latencyMaxNs) own.latencyMaxNs = ns;
    }
  }

  /** Every name in the window with its counts summed over the live segments (oldest to newest). */
  totals(): Map<string, DnsNameCounts> {
    const totals = new Map<string, DnsNameCounts>();
    for (let id = this.#endSegment - this.segmentCount + 1; id <= this.#endSegment; id++) {
      const slot = ((id % this.segmentCount) + this.segmentCount) % this.segmentCount;
      if (id < 0 || this.#segmentIds[slot] !== id) continue;
      for (const [name, own] of this.#segments[slot]) {
        let total = totals.get(name);
        if (total === undefined) {
          total = emptyCounts();
          totals.set(name, total);
        }
        total.flows += own.flows;
        total.queries += own.queries;
        total.answers += own.answers;
        total.unanswered += own.unanswered;
        total.malformed += own.malformed;
        total.failures += own.failures;
        total.latencyCount += own.latencyCount;
        total.latencySumNs += own.latencySumNs;
        if (own.latencyMaxNs > total.latencyMaxNs) total.latencyMaxNs = own.latencyMaxNs;
        if (own.rcode !== '') total.rcode = own.rcode;
      }
    }
    return totals;
  }
}

/** A name's row. */
function dnsRow(name: string, c: DnsNameCounts): DnsNameRow {
  return {
    name,
    flows: c.flows,
    queries: c.queries,
    answers: c.answers,
    unanswered: c.unanswered,
    malformed: c.malformed,
    failures: c.failures,
    rcode: c.rcode,
    maxLatencyMs: c.latencyMaxNs / 1e6,
    meanLatencyMs: c.latencyCount === 0 ? 0 : c.latencySumNs / c.latencyCount / 1e6,
  };
}

/**
 * The panel's rows: the `n` slowest names and the `n` failing most, from `window`; null when no
 * name is in the window (the page hides the panel).
 */
export function dnsSnapshot(window: DnsNameWindow, n: number): DnsSnapshot | null {
  const totals = window.totals();
  if (totals.size === 0) return null;
  const entries = [...totals];
  const troubles = (c: DnsNameCounts) => c.failures + c.unanswered + c.malformed;
  // At most segmentCount x segmentCapacity names: a sort per snapshot (about one a second) is cheap.
  const slowest = entries
    .filter(([, c]) => c.latencyCount > 0)
    .sort(([, a], [, b]) => b.latencyMaxNs - a.latencyMaxNs)
    .slice(0, n);
  const failing = entries
    .filter(([, c]) => troubles(c) > 0)
    .sort(([, a], [, b]) => troubles(b) - troubles(a))
    .slice(0, n);
  return {
    slowest: slowest.map(([name, c]) => dnsRow(name, c)),
    failing: failing.map(([name, c]) => dnsRow(name, c)),
    names: totals.size,
    droppedNames: window.droppedNames,
  };
}
