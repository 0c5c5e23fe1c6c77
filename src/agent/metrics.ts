/**
 * The agent's figures: `healthSnapshot()` gathers them as plain numbers (for the web view and
 * logs), and a Prometheus registry of its own renders the same snapshot on `/metrics`. Counters
 * live where they are counted (pipeline, capture, exporters); this module only reads them, once
 * per scrape, so every metric of one scrape describes the same instant.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client';
import type { EvictionReason } from '../account/accounter.ts';
import { DNS_LATENCY_BUCKETS_S } from '../account/dns-counts.ts';
import type { IdentityCounts } from '../account/evicted-rows.ts';
import type { HealthJoinCounts } from '../account/health-join.ts';
import {
  type DropCounts,
  OTHER_DROP_CAUSE,
  RTT_BUCKET_BOUNDS_SECONDS,
  type RttObservations,
} from '../account/health-sums.ts';
import { DNS_MALFORMED_REASONS } from '../capture/dns/dns-parser.ts';
import type { EbpfCaptureStats } from '../capture/ebpf/capture.ts';
import type { HealthHookChoice } from '../ebpf/health-programs.ts';
import { ConfigError } from '../errors.ts';
import { isRetryingExporter, type RetryCounts } from '../export/reconnect-backoff.ts';
import { dnsRcodeName } from '../model/dns-names.ts';
import { type DropReasonSource, NUMERIC_DROP_REASONS } from '../model/drop-reasons.ts';
import { formatIp } from '../model/ip.ts';
import { tunnelTypeName } from '../model/names.ts';
import type { FlowSink, SinkStats } from '../sink/flow-sink.ts';
import { VERSION } from '../version.ts';
import type { HostPort } from './config.ts';
import type { InterfaceTotal } from './interface-totals.ts';
import type { Pipeline } from './pipeline.ts';

/** Interface attach bookkeeping the agent keeps. */
export interface InterfaceCounters {
  /** Successful attaches since start. */
  attaches: number;
  /** Detaches since start (interface down or gone). */
  detaches: number;
  /** Attaches that failed (interface vanished meanwhile, another program holds the hook, ...). */
  attachFailures: number;
}

/** Where a snapshot's figures come from. */
export interface HealthSources {
  /** When the agent started, Unix ms. */
  startedAtMs: number;
  pipeline: Pipeline;
  /** Capture counters; undefined when there is no live capture. */
  captureStats: () => EbpfCaptureStats | undefined;
  /** How each TCP health feature asked for is hooked; empty without a live capture or health. */
  healthHooks?: () => readonly HealthHookChoice[];
  /** DNS tracking in the kernel: on, refused by the kernel (the agent runs without it), or not asked for. */
  dnsTracking?: () => 'on' | 'refused' | 'off';
  /** Interfaces attached now. */
  attachedInterfaces: () => readonly string[];
  interfaceCounters: Readonly<InterfaceCounters>;
  /** The filter in use as people read it (`none` when every packet is counted). */
  filter: string;
  /** Errors no caller handled, by origin (src/unhandled-rejections.ts). */
  unhandledRejections: ReadonlyMap<string, number>;
}

/** Every figure of the agent at one instant, as plain data. */
export interface HealthSnapshot {
  uptimeSeconds: number;
  /** What needs attention, for people (`no interface attached yet`); empty when all is well. */
  warnings: string[];
  /** Names of the interfaces attached now. */
  attachedInterfaces: string[];
  interfaces: InterfaceCounters;
  /** Packets and bytes counted per interface and direction. */
  interfaceTotals: InterfaceTotal[];
  /** Packets and bytes in the records received from capture. */
  packetsSeen: number;
  bytesSeen: number;
  /** Records (partial flows) received from capture. */
  recordsSeen: number;
  /** Flows in the accounter's cache now. */
  cachedFlows: number;
  /** Evictions and flows evicted, by reason. */
  evictions: Record<EvictionReason, number>;
  flowsEvicted: Record<EvictionReason, number>;
  /** Packets lost because the ring buffer was full (kernel map full and user space behind). */
  ringBufferLost: number;
  /** Ring-buffer records dropped because they were not a whole flow record. */
  ringBufferMalformed: number;
  /** Drains the capture put off because the pipeline lagged (flows stayed in the kernel map). */
  deferredDrains: number;
  ringBufferFallbacks: number;
  parseErrors: number;
  mapUpdateFailures: number;
  drains: number;
  /** The filter in use (`none`, an expression, and/or the number of FLOW_FILTER_RULES rules). */
  filter: string;
  /** Packets the filter accepted and rejected (rejected ones are in no flow). */
  filterAccepted: number;
  filterRejected: number;
  /** TCP health features asked for, each with its kernel hook, or `none` when the kernel refused them all. */
  healthHooks: Array<{ feature: string; hook: string }>;
  /** Health events lost because the kernel health map was full. */
  healthMapFull: number;
  /** Drops of packets with no IP header to key them by: counted here, in no flow. */
  healthUnkeyed: number;
  /** What became of the health rows: joined into their flow, records of their own, filtered out. */
  healthRows: HealthJoinCounts;
  /** Errors no caller handled (stray promise rejections, failing listeners), by origin. */
  unhandledRejections: Record<string, number>;
  /** The address written into every flow as the agent's ('' when the pipeline writes none). */
  agentIp: string;
  /** Flows by what they carried as they left accounting (tunnels, VLANs, interfaces crossed, biflows). */
  identity: IdentityCounts;
  /** The TCP health of the flows that left accounting. */
  tcpHealth: TcpHealthFigures;
  /** What the evicted flows' DNS sections held (DNS tracking); absent when it is off. */
  dns?: DnsFigures;
  /** The kernel's DNS tracker (live capture with ENABLE_DNS_TRACKING); absent when not asked for. */
  dnsKernel?: DnsKernelFigures;
  /** Per exporter: its counters, and its retried attempts when it retries (grpc). */
  exporters: Array<
    { name: string; retries?: RetryCounts } & Omit<SinkStats, 'flowsDropped'> & SinkStats['flowsDropped']
  >;
}

/** DNS of the evicted flows as plain numbers (src/account/dns-counts.ts). */
export interface DnsFigures {
  flows: number;
  queries: number;
  answers: number;
  unanswered: number;
  malformed: number;
  /** Flows whose latest message is a response, by response code name. */
  responsesByRcode: Record<string, number>;
  /** Latency observations per bucket of DNS_LATENCY_BUCKETS_S, +Inf last (not cumulative). */
  latencyBuckets: number[];
  latencySumSeconds: number;
  latencyCount: number;
}

/** The kernel's DNS tracker, as plain numbers (src/capture/ebpf/capture.ts's stats). */
export interface DnsKernelFigures {
  /** 1 while the TC programs track DNS, 0 when the kernel refused the DNS parser. */
  enabled: number;
  /** Malformed DNS messages by reason (DNS_MALFORMED_REASONS names). */
  malformedByReason: Record<string, number>;
  /** Queries counted but never timed: the pending-query map was full. */
  pendingMapFull: number;
  /** Messages lost: their flow had no section and the DNS map was full. */
  mapFull: number;
  /** Queries waiting for their response at the latest drain. */
  pending: number;
}

/** The TCP health sums of the evicted flows, as plain data (src/account/health-sums.ts). */
export interface TcpHealthFigures {
  /** RTT observations by kind: the socket's smoothed RTT, or only a handshake time. */
  rtt: { smoothed: RttObservations; handshake: RttObservations };
  /** Dropped packets and bytes by the kernel's drop reason value ({@link OTHER_DROP_CAUSE}: beyond the bound). */
  dropsByCause: Array<{ cause: number } & DropCounts>;
  /** Every dropped packet, whatever its reason. */
  dropPackets: number;
  /** Retransmitted TCP segments and their bytes. */
  retransSegments: number;
  retransBytes: number;
}

function noObservations(): RttObservations {
  return {
    buckets: new Array<number>(RTT_BUCKET_BOUNDS_SECONDS.length + 1).fill(0),
    sumSeconds: 0,
    count: 0,
  };
}

const NO_IDENTITY_COUNTS: IdentityCounts = {
  tunneled: {},
  vlanTagged: 0,
  multiInterface: 0,
  biflowsPaired: 0,
  biflowsOneWay: 0,
};

/** Gathers every figure now. */
export function healthSnapshot(sources: HealthSources): HealthSnapshot {
  const p = sources.pipeline;
  const capture = sources.captureStats();
  return {
    uptimeSeconds: (Date.now() - sources.startedAtMs) / 1000,
    warnings: healthWarnings(sources),
    attachedInterfaces: [...sources.attachedInterfaces()],
    interfaces: { ...sources.interfaceCounters },
    interfaceTotals: p.interfaceTotals.totals(),
    packetsSeen: p.stats.packetsIn,
    bytesSeen: p.stats.bytesIn,
    recordsSeen: p.stats.rowsIn,
    cachedFlows: p.cachedFlows,
    evictions: { ...p.stats.evictions },
    flowsEvicted: { ...p.stats.flowsEvicted },
    ringBufferLost: capture?.ringBufferLost ?? 0,
    ringBufferMalformed: capture?.ringBufferMalformed ?? 0,
    deferredDrains: capture?.deferredDrains ?? 0,
    ringBufferFallbacks: capture?.ringBufferFallbacks ?? 0,
    parseErrors: capture?.parseErrors ?? 0,
    mapUpdateFailures: capture?.mapUpdateFailures ?? 0,
    drains: capture?.drains ?? 0,
    filter: sources.filter,
    filterAccepted: capture?.filterAccepted ?? 0,
    filterRejected: capture?.filterRejected ?? 0,
    healthHooks: (sources.healthHooks?.() ?? []).map((c) => ({
      feature: c.feature,
      hook: c.hook?.hook ?? 'none',
    })),
    healthMapFull: capture?.healthMapFull ?? 0,
    healthUnkeyed: capture?.healthUnkeyed ?? 0,
    healthRows: { ...p.healthJoinCounts },
    unhandledRejections: Object.fromEntries(sources.unhandledRejections),
    agentIp: p.agentIp ? formatIp(p.agentIp, 0, 0) : '',
    identity: structuredClone(p.identityCounts ?? NO_IDENTITY_COUNTS),
    tcpHealth: tcpHealthFigures(p),
    ...(p.dnsCounts === undefined ? {} : { dns: dnsFigures(p.dnsCounts) }),
    ...dnsKernelFigures(sources.dnsTracking?.() ?? 'off', capture),
    exporters: p.exporters.map(exporterFigures),
  };
}

function dnsKernelFigures(
  tracking: 'on' | 'refused' | 'off',
  capture: EbpfCaptureStats | undefined,
): { dnsKernel?: DnsKernelFigures } {
  if (tracking === 'off') return {};
  const malformedByReason: Record<string, number> = {};
  DNS_MALFORMED_REASONS.forEach((reason, i) => {
    if (i > 0) malformedByReason[reason] = capture?.dnsMalformed?.[i] ?? 0;
  });
  return {
    dnsKernel: {
      enabled: tracking === 'on' ? 1 : 0,
      malformedByReason,
      pendingMapFull: capture?.dnsPendingFull ?? 0,
      mapFull: capture?.dnsMapFull ?? 0,
      pending: capture?.dnsPending ?? 0,
    },
  };
}

function dnsFigures(counts: NonNullable<Pipeline['dnsCounts']>): DnsFigures {
  const responsesByRcode: Record<string, number> = {};
  counts.responsesByRcode.forEach((n, rcode) => {
    if (n > 0) responsesByRcode[dnsRcodeName(rcode)] = n;
  });
  return {
    flows: counts.flows,
    queries: counts.queries,
    answers: counts.answers,
    unanswered: counts.unanswered,
    malformed: counts.malformed,
    responsesByRcode,
    latencyBuckets: [...counts.latencyBuckets],
    latencySumSeconds: counts.latencySumSeconds,
    latencyCount: counts.latencyCount,
  };
}

function tcpHealthFigures(p: Pipeline): TcpHealthFigures {
  const h = p.healthSums;
  if (h === undefined) {
    return {
      rtt: { smoothed: noObservations(), handshake: noObservations() },
      dropsByCause: [],
      dropPackets: 0,
      retransSegments: 0,
      retransBytes: 0,
    };
  }
  const dropsByCause = [...h.drops].map(([cause, counts]) => ({ cause, ...counts }));
  return {
    rtt: { smoothed: structuredClone(h.smoothedRtt), handshake: structuredClone(h.handshakeRtt) },
    dropsByCause,
    dropPackets: dropsByCause.reduce((sum, d) => sum + d.packets, 0),
    retransSegments: h.retransSegments,
    retransBytes: h.retransBytes,
  };
}

/** The warning of an agent that never attached: nothing is counted until an interface appears. */
export const NO_INTERFACE_WARNING = 'no interface attached yet';

function healthWarnings(sources: HealthSources): string[] {
  return sources.interfaceCounters.attaches === 0 ? [NO_INTERFACE_WARNING] : [];
}

function exporterFigures(exporter: FlowSink): HealthSnapshot['exporters'][number] {
  const { flowsDropped, ...rest } = exporter.stats;
  const figures = { name: exporter.name, ...rest, ...flowsDropped };
  return isRetryingExporter(exporter) ? { ...figures, retries: { ...exporter.retries } } : figures;
}

/** The `_bucket` (cumulative), `_sum` and `_count` samples of the DNS latency histogram. */
type Labels = Record<string, string>;
type Sample = [Labels, number];

/** The Prometheus registry over {@link healthSnapshot}; `render()` takes one snapshot per scrape. */
export class AgentMetrics {
  /** flowtap's own registry: no process-global state shared with other code in the process. */
  readonly registry = new Registry();
  #current: HealthSnapshot | undefined;

  /**
   * `snapshot` gives the figures of one scrape; `dropReasons` names the kernel's drop reasons
   * (the `reason` label), asked only when a scrape has drops.
   */
  constructor(
    private readonly snapshot: () => HealthSnapshot,
    dropReasons: DropReasonSource = () => NUMERIC_DROP_REASONS,
  ) {
    // The process's own figures under their usual names (process_cpu_seconds_total,
    // process_resident_memory_bytes, nodejs_heap_size_used_bytes, ...), for the usual dashboards.
    collectDefaultMetrics({ register: this.registry });
    const counter = (
      name: string,
      help: string,
      labelNames: string[],
      read: (s: HealthSnapshot) => Sample[],
    ) => {
      const current = () => this.#current;
      new Counter({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const s = current();
          if (!s) return;
          this.reset();
          for (const [labels, value] of read(s)) this.inc(labels, value);
        },
      });
    };
    const gauge = (
      name: string,
      help: string,
      labelNames: string[],
      read: (s: HealthSnapshot) => Sample[],
    ) => {
      const current = () => this.#current;
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        collect() {
          const s = current();
          if (!s) return;
          this.reset();
          for (const [labels, value] of read(s)) this.set(labels, value);
        },
      });
    };
    const one = (value: number): Sample[] => [[{}, value]];
    const byReason = (values: Record<string, number>): Sample[] =>
      Object.entries(values).map(([reason, v]) => [{ reason }, v]);
    const byReasonOf = (exporter: string, values: object): Sample[] =>
      Object.entries(values).map(([reason, v]: [string, number]) => [{ exporter, reason }, v]);

    counter('flowtap_packets_total', 'Packets counted by capture', [], (s) => one(s.packetsSeen));
    counter(
      'flowtap_interface_packets_total',
      'Packets counted by capture, by interface and direction',
      ['interface', 'direction'],
      (s) =>
        s.interfaceTotals.map((t): Sample => [{ interface: t.interface, direction: t.direction }, t.packets]),
    );
    counter(
      'flowtap_interface_bytes_total',
      'Bytes counted by capture, by interface and direction',
      ['interface', 'direction'],
      (s) =>
        s.interfaceTotals.map((t): Sample => [{ interface: t.interface, direction: t.direction }, t.bytes]),
    );
    gauge('flowtap_interface_attached', 'Interfaces attached now (1 each)', ['interface'], (s) =>
      s.attachedInterfaces.map((name): Sample => [{ interface: name }, 1]),
    );
    counter('flowtap_bytes_total', 'Bytes counted by capture', [], (s) => one(s.bytesSeen));
    counter('flowtap_records_total', 'Flow records received from capture', [], (s) => one(s.recordsSeen));
    counter('flowtap_flows_evicted_total', 'Flows evicted by the accounter', ['reason'], (s) =>
      byReason(s.flowsEvicted),
    );
    counter('flowtap_evictions_total', 'Evictions of the flow cache', ['reason'], (s) =>
      byReason(s.evictions),
    );
    counter('flowtap_ring_buffer_lost_total', 'Packets lost to a full ring buffer', [], (s) =>
      one(s.ringBufferLost),
    );
    counter(
      'flowtap_ring_buffer_malformed_total',
      'Ring-buffer records dropped because they were not a whole flow record',
      [],
      (s) => one(s.ringBufferMalformed),
    );
    counter('flowtap_deferred_drains_total', 'Kernel map drains put off while the pipeline lagged', [], (s) =>
      one(s.deferredDrains),
    );
    counter('flowtap_ring_buffer_fallbacks_total', 'Packets sent through the ring buffer', [], (s) =>
      one(s.ringBufferFallbacks),
    );
    counter('flowtap_parse_errors_total', 'Packets with headers the datapath could not parse', [], (s) =>
      one(s.parseErrors),
    );
    counter('flowtap_map_update_failures_total', 'Kernel flow-map inserts that failed', [], (s) =>
      one(s.mapUpdateFailures),
    );
    counter(
      'flowtap_filter_packets_total',
      'Packets tested by the filter (FILTER, FLOW_FILTER_RULES), by verdict; rejected ones are in no flow',
      ['verdict'],
      (s) => [
        [{ verdict: 'accepted' }, s.filterAccepted],
        [{ verdict: 'rejected' }, s.filterRejected],
      ],
    );
    gauge(
      'flowtap_health_feature_enabled',
      'TCP health features asked for (ENABLE_RTT, ENABLE_TCP_RETRANS, ENABLE_PKT_DROPS): 1 hooked (hook names the kernel hook), 0 when the kernel refused every hook (hook="none")',
      ['feature', 'hook'],
      (s) =>
        s.healthHooks.map((h): Sample => [{ feature: h.feature, hook: h.hook }, h.hook === 'none' ? 0 : 1]),
    );
    const kernelDns = (read: (d: DnsKernelFigures) => Sample[]) => (s: HealthSnapshot) =>
      s.dnsKernel ? read(s.dnsKernel) : [];
    gauge(
      'flowtap_dns_tracking_enabled',
      'DNS tracking in the TC programs (ENABLE_DNS_TRACKING): 1 on; 0 off, or refused by the kernel (then flows are counted without DNS and a warning says why)',
      [],
      kernelDns((d) => [[{}, d.enabled]]),
    );
    counter(
      'flowtap_dns_kernel_malformed_total',
      'DNS messages the TC programs could not parse, by reason',
      ['reason'],
      kernelDns((d) => Object.entries(d.malformedByReason).map(([reason, n]): Sample => [{ reason }, n])),
    );
    counter(
      'flowtap_dns_pending_map_full_total',
      'DNS queries counted but never timed because the kernel pending-query map was full',
      [],
      kernelDns((d) => [[{}, d.pendingMapFull]]),
    );
    counter(
      'flowtap_dns_map_full_total',
      'DNS messages lost because their flow had no section and the kernel DNS map was full',
      [],
      kernelDns((d) => [[{}, d.mapFull]]),
    );
    gauge(
      'flowtap_dns_pending_queries',
      'DNS queries waiting for their response in the kernel at the latest drain',
      [],
      kernelDns((d) => [[{}, d.pending]]),
    );
    counter(
      'flowtap_health_map_full_total',
      'TCP health events (RTT samples, drops, retransmissions, handshakes) lost because the kernel health map was full',
      [],
      (s) => one(s.healthMapFull),
    );
    counter(
      'flowtap_health_unkeyed_drops_total',
      'Packet drops with no IP header to key a flow by (not IP, or headers outside the linear data): in no flow',
      [],
      (s) => one(s.healthUnkeyed),
    );
    counter(
      'flowtap_health_rows_total',
      'TCP health rows from the kernel, by what became of them: joined into their flow, a record of their own (no flow had the key), or filtered out',
      ['result'],
      (s) => [
        [{ result: 'joined' }, s.healthRows.joined],
        [{ result: 'own-record' }, s.healthRows.ownRecords],
        [{ result: 'filtered' }, s.healthRows.filtered],
      ],
    );
    counter(
      'flowtap_export_batches_total',
      'Batches exported, by exporter and result',
      ['exporter', 'result'],
      (s) =>
        s.exporters.flatMap((e): Sample[] => [
          [{ exporter: e.name, result: 'ok' }, e.batchesSent],
          [{ exporter: e.name, result: 'failed' }, e.batchesFailed],
        ]),
    );
    counter(
      'flowtap_export_flows_total',
      'Flows exported, by exporter and result',
      ['exporter', 'result'],
      (s) =>
        s.exporters.flatMap((e): Sample[] => [
          [{ exporter: e.name, result: 'ok' }, e.flowsSent],
          [{ exporter: e.name, result: 'failed' }, e.flowsFailed],
        ]),
    );
    counter(
      'flowtap_export_dropped_flows_total',
      'Flows an exporter dropped unsent',
      ['exporter', 'reason'],
      (s) =>
        s.exporters.flatMap((e): Sample[] => [
          [{ exporter: e.name, reason: 'queue-full' }, e['queue-full']],
          [{ exporter: e.name, reason: 'stopped' }, e.stopped],
        ]),
    );
    counter(
      'flowtap_unhandled_rejections_total',
      'Errors no caller handled (stray promise rejections, failing listeners), by the package raising them',
      ['origin'],
      (s) => Object.entries(s.unhandledRejections).map(([origin, v]): Sample => [{ origin }, v]),
    );
    counter(
      'flowtap_export_retries_total',
      'Send attempts that failed and were retried after a backoff, by exporter and reason (tls: handshake failed)',
      ['exporter', 'reason'],
      (s) => s.exporters.flatMap((e): Sample[] => (e.retries ? byReasonOf(e.name, e.retries) : [])),
    );
    counter('flowtap_interface_attach_failures_total', 'Interface attaches that failed', [], (s) =>
      one(s.interfaces.attachFailures),
    );
    gauge('flowtap_attached_interfaces', 'Interfaces attached now', [], (s) =>
      one(s.attachedInterfaces.length),
    );
    gauge('flowtap_cached_flows', 'Flows in the accounter cache', [], (s) => one(s.cachedFlows));
    gauge(
      'flowtap_agent_info',
      "The agent's address, written into every flow (AGENT_IP)",
      ['agent_ip'],
      (s) => (s.agentIp === '' ? [] : [[{ agent_ip: s.agentIp }, 1]]),
    );
    counter(
      'flowtap_tunneled_flows_total',
      'Flows that arrived in a tunnel, by tunnel type',
      ['tunnel'],
      (s) =>
        Object.entries(s.identity.tunneled).map(
          ([type, v]): Sample => [{ tunnel: tunnelTypeName(Number(type)) }, v],
        ),
    );
    counter('flowtap_vlan_tagged_flows_total', 'Flows with an 802.1Q/802.1ad VLAN id', [], (s) =>
      one(s.identity.vlanTagged),
    );
    counter(
      'flowtap_multi_interface_flows_total',
      'Flows seen on more than one interface of the host (counted once, every interface listed)',
      [],
      (s) => one(s.identity.multiInterface),
    );
    counter(
      'flowtap_bidirectional_records_total',
      'Bidirectional records (--bidirectional), by kind: both directions paired, or one-way traffic',
      ['kind'],
      (s) => [
        [{ kind: 'paired' }, s.identity.biflowsPaired],
        [{ kind: 'one-way' }, s.identity.biflowsOneWay],
      ],
    );
    gauge('flowtap_export_queued_batches', 'Batches waiting in an exporter queue', ['exporter'], (s) =>
      s.exporters.map((e): Sample => [{ exporter: e.name }, e.queuedBatches]),
    );
    new CountedHistogram(
      {
        name: 'flowtap_flow_rtt_seconds',
        help: 'Round-trip time of flows, one observation per flow record that measured one: the socket smoothed RTT (kind smoothed), else the handshake time (kind handshake)',
        labelNames: ['kind'],
        buckets: [...RTT_BUCKET_BOUNDS_SECONDS],
        registers: [this.registry],
      },
      () => {
        const rtt = this.#current?.tcpHealth.rtt;
        return rtt === undefined
          ? []
          : [
              [{ kind: 'smoothed' }, rtt.smoothed],
              [{ kind: 'handshake' }, rtt.handshake],
            ];
      },
    );
    const dropsByReasonName = (s: HealthSnapshot, field: keyof DropCounts): Sample[] => {
      if (s.tcpHealth.dropsByCause.length === 0) return [];
      // Several values may share a name (numbers without the kernel's table never do): summed.
      const names = dropReasons();
      const sums = new Map<string, number>();
      for (const d of s.tcpHealth.dropsByCause) {
        const reason = d.cause === OTHER_DROP_CAUSE ? 'other' : names.nameOf(d.cause);
        sums.set(reason, (sums.get(reason) ?? 0) + d[field]);
      }
      return [...sums].map(([reason, v]): Sample => [{ reason }, v]);
    };
    counter(
      'flowtap_dropped_packets_total',
      "Packets of the flows the kernel dropped, by the kernel's drop reason (a flow's drops count under its latest reason)",
      ['reason'],
      (s) => dropsByReasonName(s, 'packets'),
    );
    counter(
      'flowtap_dropped_bytes_total',
      "Bytes of the flows' packets the kernel dropped, by the kernel's drop reason",
      ['reason'],
      (s) => dropsByReasonName(s, 'bytes'),
    );
    counter('flowtap_retransmitted_segments_total', 'Retransmitted TCP segments of the flows', [], (s) =>
      one(s.tcpHealth.retransSegments),
    );
    this.#registerDnsMetrics(counter);
  }

  /** DNS tracking's figures (ENABLE_DNS_TRACKING): zero, and the histogram empty, while it is off. */
  #registerDnsMetrics(
    counter: (
      name: string,
      help: string,
      labelNames: string[],
      read: (s: HealthSnapshot) => Sample[],
    ) => void,
  ): void {
    const dns = (read: (d: DnsFigures) => Sample[]) => (s: HealthSnapshot) => (s.dns ? read(s.dns) : []);
    counter(
      'flowtap_dns_flows_total',
      'Flows that carried DNS',
      [],
      dns((d) => [[{}, d.flows]]),
    );
    counter(
      'flowtap_dns_queries_total',
      'DNS queries seen',
      [],
      dns((d) => [[{}, d.queries]]),
    );
    counter(
      'flowtap_dns_answers_total',
      'DNS responses that matched a query',
      [],
      dns((d) => [[{}, d.answers]]),
    );
    counter(
      'flowtap_dns_unanswered_total',
      'DNS queries that got no response in time',
      [],
      dns((d) => [[{}, d.unanswered]]),
    );
    counter(
      'flowtap_dns_malformed_total',
      'DNS messages that did not parse',
      [],
      dns((d) => [[{}, d.malformed]]),
    );
    counter(
      'flowtap_dns_responses_total',
      'Flows whose latest DNS message is a response, by its response code',
      ['rcode'],
      dns((d) => Object.entries(d.responsesByRcode).map(([rcode, n]): Sample => [{ rcode }, n])),
    );
    new CountedHistogram(
      {
        name: 'flowtap_dns_latency_seconds',
        help: 'DNS latency (response time - query time) of the latest answered query of each flow',
        labelNames: [],
        buckets: [...DNS_LATENCY_BUCKETS_S],
        registers: [this.registry],
      },
      () => {
        const d = this.#current?.dns;
        return d === undefined
          ? []
          : [[{}, { buckets: d.latencyBuckets, sumSeconds: d.latencySumSeconds, count: d.latencyCount }]];
      },
    );
  }

  /** The Prometheus text exposition of one fresh snapshot. */
  async render(): Promise<string> {
    this.#current = this.snapshot();
    return this.registry.metrics();
  }
}

/** One series of a {@link CountedHistogram}: its labels and its counted observations. */
type CountedSeries = [Labels, RttObservations];

/**
 * A histogram whose observations are counted elsewhere (src/account/health-sums.ts and
 * dns-counts.ts, as flows leave accounting) and read at each scrape: prom-client's Histogram renders
 * only what it observed itself, so this one renders the counted buckets over its own `buckets`
 * (cumulative, as Prometheus wants them).
 */
class CountedHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #read: () => CountedSeries[];

  constructor(config: HistogramConfiguration<string>, read: () => CountedSeries[]) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#bounds = config.buckets ?? [];
    this.#read = read;
  }

  /** What the registry renders (it prefers this to `get`): the counted buckets of every series. */
  async getForPromString(): Promise<CountedHistogramValues> {
    const name = this.#name;
    const values: CountedHistogramValues['values'] = [];
    for (const [labels, observed] of this.#read()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, i) => {
        cumulative += observed.buckets[i];
        values.push({ labels: { ...labels, le: bound }, value: cumulative, metricName: `${name}_bucket` });
      });
      values.push({ labels: { ...labels, le: '+Inf' }, value: observed.count, metricName: `${name}_bucket` });
      values.push({ labels, value: observed.sumSeconds, metricName: `${name}_sum` });
      values.push({ labels, value: observed.count, metricName: `${name}_count` });
    }
    return { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' };
  }

  override async get(): ReturnType<Histogram<string>['get']> {
    // The same object prom-client's own histogram gives; its typings name the type by an enum.
    return (await this.getForPromString()) as unknown as Awaited<ReturnType<Histogram<string>['get']>>;
  }
}

/** The rendered form of a {@link CountedHistogram}, as prom-client's registry reads it. */
interface CountedHistogramValues {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: { labels: Record<string, string | number>; value: number; metricName: string }[];
}

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  /** Where it listens (the port is the real one when 0 was asked). */
  readonly address: HostPort;
  close(): Promise<void>;
}

/** What `GET /` answers: where the metrics are, for a person who opens the address in a browser. */
const METRICS_INDEX =
  `<!doctype html><html><head><title>flowtap ${VERSION} metrics</title></head><body>` +
  `<h1>flowtap ${VERSION}</h1><p><a href="/metrics">/metrics</a>: Prometheus metrics of this agent.</p>` +
  '</body></html>\n';

/** Serves `metrics` on `GET /metrics` (and an index on `GET /`) at `address`; throws ConfigError when it cannot listen there. */
export async function startMetricsServer(metrics: AgentMetrics, address: HostPort): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(METRICS_INDEX);
      return;
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(
          '--metrics',
          `${address.host}:${address.port}`,
          `an address this host can listen on (${err.code ?? err.message})`,
        ),
      ),
    );
    server.listen(address.port, address.host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
