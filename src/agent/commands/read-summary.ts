/**
 * The line `flowtap read` ends with on stderr, also after a damaged capture: format, packets read,
 * counted, skipped by reason, flows, what the TCP analysis could not follow, and what a sink did
 * not deliver.
 */
import { DNS_MALFORMED_REASONS } from '../../capture/dns/dns-parser.ts';
import type { DnsStats } from '../../capture/dns/dns-tracker.ts';
import type { CaptureStats } from '../../capture/pcap/packet-sink.ts';
import { SKIP_REASON_NAMES } from '../../capture/pcap/packet-sink.ts';
import type { FlowSink } from '../../sink/flow-sink.ts';

/** Flows `sink` took but did not deliver: failed sends and drops of every reason. */
export function undeliveredFlows(sink: FlowSink): number {
  const s = sink.stats;
  return s.flowsFailed + s.flowsDropped['queue-full'] + s.flowsDropped.stopped;
}

/**
 * The summary line (with its newline) of a read that decoded `stats` into `flows` flows, with
 * DNS tracking's counts when it was on.
 */
export function readSummary(
  stats: CaptureStats,
  flows: number,
  sinks: readonly FlowSink[] = [],
  dns?: DnsStats,
): string {
  let line = `flowtap read: ${stats.format || 'capture'}, ${stats.packets} packets read, ${stats.counted} counted into ${flows} flows`;
  const skipped = stats.skippedTotal;
  if (skipped > 0) {
    const reasons: string[] = [];
    stats.skipped.forEach((n, reason) => {
      if (n > 0) reasons.push(`${n} ${SKIP_REASON_NAMES[reason]}`);
    });
    line += `, ${skipped} skipped (${reasons.join(', ')})`;
  }
  if (stats.unsupportedLinkTypes.size > 0)
    line += `; link types not read: ${[...stats.unsupportedLinkTypes].map(([type, n]) => `${type} (${n} packets)`).join(', ')}`;
  if (stats.truncatedEndOffset >= 0)
    line += `; the input ends inside a record at byte offset ${stats.truncatedEndOffset}`;
  if (stats.duplicates > 0)
    line += `; ${stats.duplicates} copies of packets on another interface listed, not counted again`;
  if (stats.otherBlocks > 0) line += `; ${stats.otherBlocks} non-packet blocks passed over`;
  const tcp = stats.tcpHealth;
  if (tcp.snapped > 0) line += `; ${tcp.snapped} TCP headers cut before their window (not analysed)`;
  if (tcp.tableResets > 0)
    line += `; more TCP connections at once than the flow cache holds: followed anew ${tcp.tableResets} times`;
  if (dns !== undefined) line += `; ${dnsSummary(dns)}`;
  for (const sink of sinks) {
    const lost = undeliveredFlows(sink);
    if (lost > 0) line += `; ${lost} flows not delivered by ${sink.name}`;
  }
  return `${line}\n`;
}

/** DNS tracking's part of the summary: messages, answers, the unanswered and the malformed by reason. */
export function dnsSummary(dns: DnsStats): string {
  let text =
    `DNS: ${dns.queries} queries, ${dns.answered} answered, ${dns.timedOut + dns.evicted} unanswered` +
    (dns.evicted > 0 ? ` (${dns.evicted} pushed out of the full pending map)` : '') +
    `, ${dns.unmatched} responses without their query`;
  const malformed = dns.malformedTotal;
  if (malformed > 0) {
    const reasons: string[] = [];
    dns.malformed.forEach((n, reason) => {
      if (n > 0) reasons.push(`${n} ${DNS_MALFORMED_REASONS[reason]}`);
    });
    text += `, ${malformed} malformed (${reasons.join(', ')})`;
  }
  if (dns.snapped > 0) text += `, ${dns.snapped} cut by the snap length`;
  return `${text}, at most ${dns.pendingPeak} queries waiting at once`;
}
