/**
 * The collector's counters, kept where they are counted (sources and sinks hold their own object
 * from here) and read only by the text forms: Prometheus' exposition format for `/metrics` and a
 * JSON health summary for `/health`.
 */

/** Counters of one source (grpc, kafka, ipfix+udp, ipfix+tcp). */
export class SourceMetrics {
  /** Flows decoded and handed to the sinks. */
  received = 0;
  /** Flows (or messages, when unreadable as a whole) dropped, by reason. */
  readonly dropped = new Map<string, number>();
  /** Kafka: messages behind the high watermark, by partition, as of the last batch read. */
  readonly lagByPartition = new Map<number, number>();
  /** Kafka: offset commits that failed (their flows come again after a rebalance). */
  commitFailures = 0;
  /** IPFIX: data records the exporters' sequence numbers say were sent but never arrived. */
  missingRecords = 0;

  constructor(readonly name: string) {}

  /** Counts `count` dropped for `reason`. */
  drop(reason: string, count = 1): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + count);
  }
}

/** Upper bounds (seconds) of the insert latency histogram's buckets. */
export const INSERT_LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Counters of one sink (json, store, clickhouse). */
export class SinkMetrics {
  /** Flows stored. */
  stored = 0;
  /** Flows given up on (the sink failed past its retries, or was stopped with them queued). */
  dropped = 0;
  /** Insert attempts that failed and were retried. */
  retries = 0;
  /** Flows waiting in the sink's queue. */
  queuedFlows = 0;
  /** Count of inserts per latency bucket (last = above every bound). */
  readonly latencyBuckets = new Array<number>(INSERT_LATENCY_BUCKETS_S.length + 1).fill(0);
  latencySumS = 0;
  latencyCount = 0;
  /** Time (Unix ms) of the last failed attempt, and of the last success. */
  lastFailureMs = 0;
  lastSuccessMs = 0;
  /** The last failure's message, for /health. */
  lastError = '';

  constructor(readonly name: string) {}

  /** Records one successful insert of `flows` that took `seconds`. */
  recordInsert(flows: number, seconds: number, nowMs = Date.now()): void {
    this.stored += flows;
    this.latencySumS += seconds;
    this.latencyCount++;
    let bucket = INSERT_LATENCY_BUCKETS_S.findIndex((bound) => seconds <= bound);
    if (bucket < 0) bucket = INSERT_LATENCY_BUCKETS_S.length;
    this.latencyBuckets[bucket]++;
    this.lastSuccessMs = nowMs;
  }

  /** Records a failed attempt. */
  failed(err: unknown, nowMs = Date.now()): void {
    this.lastFailureMs = nowMs;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  /** True unless the last attempt failed. */
  get healthy(): boolean {
    return this.lastFailureMs <= this.lastSuccessMs;
  }
}

/** Every source and sink of one collector. */
export class CollectMetrics {
  readonly sources: SourceMetrics[] = [];
  readonly sinks: SinkMetrics[] = [];

  /** A new source's counters. */
  source(name: string): SourceMetrics {
    const metrics = new SourceMetrics(name);
    this.sources.push(metrics);
    return metrics;
  }

  /** A new sink's counters. */
  sink(name: string): SinkMetrics {
    const metrics = new SinkMetrics(name);
    this.sinks.push(metrics);
    return metrics;
  }

  /** `/health`: ok while every sink's last attempt succeeded. */
  health(): { status: 'ok' | 'failing'; sinks: object[]; sources: object[] } {
    const sinks = this.sinks.map((s) => ({
      name: s.name,
      healthy: s.healthy,
      stored: s.stored,
      dropped: s.dropped,
      queuedFlows: s.queuedFlows,
      ...(s.healthy ? {} : { lastError: s.lastError }),
    }));
    const sources = this.sources.map((s) => ({
      name: s.name,
      received: s.received,
      dropped: Object.fromEntries(s.dropped),
      ...(s.lagByPartition.size > 0 ? { lagByPartition: Object.fromEntries(s.lagByPartition) } : {}),
      ...(s.missingRecords > 0 ? { missingRecords: s.missingRecords } : {}),
    }));
    return { status: this.sinks.every((s) => s.healthy) ? 'ok' : 'failing', sinks, sources };
  }

  /** `/metrics` in Prometheus' text format. */
  prometheusText(): string {
    const lines: string[] = [];
    const family = (name: string, help: string, type: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const label = (pairs: Record<string, string | number>) =>
      `{${Object.entries(pairs)
        .map(([k, v]) => `${k}="${String(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)
        .join(',')}}`;
    family(
      'flowtap_collect_flows_received_total',
      'Flows received, by source',
      'counter',
      this.sources.map((s) => [label({ source: s.name }), s.received]),
    );
    family(
      'flowtap_collect_source_dropped_total',
      'Flows or messages a source dropped, by source and reason',
      'counter',
      this.sources.flatMap((s) =>
        [...s.dropped].map(([reason, n]): [string, number] => [label({ source: s.name, reason }), n]),
      ),
    );
    family(
      'flowtap_collect_kafka_lag',
      'Messages behind the partition high watermark, as of the last batch read',
      'gauge',
      this.sources.flatMap((s) =>
        [...s.lagByPartition].map(([partition, lag]): [string, number] => [
          label({ source: s.name, partition }),
          lag,
        ]),
      ),
    );
    family(
      'flowtap_collect_kafka_commit_failures_total',
      'Offset commits that failed (their flows are read again after a rebalance)',
      'counter',
      this.sources.map((s) => [label({ source: s.name }), s.commitFailures]),
    );
    family(
      'flowtap_collect_ipfix_missing_records_total',
      "Data records IPFIX exporters' sequence numbers say were sent but never arrived",
      'counter',
      this.sources
        .filter((s) => s.name.startsWith('ipfix'))
        .map((s) => [label({ source: s.name }), s.missingRecords]),
    );
    family(
      'flowtap_collect_flows_stored_total',
      'Flows stored, by sink',
      'counter',
      this.sinks.map((s) => [label({ sink: s.name }), s.stored]),
    );
    family(
      'flowtap_collect_flows_dropped_total',
      'Flows a sink gave up on, by sink',
      'counter',
      this.sinks.map((s) => [label({ sink: s.name }), s.dropped]),
    );
    family(
      'flowtap_collect_insert_retries_total',
      'Failed inserts that were retried, by sink',
      'counter',
      this.sinks.map((s) => [label({ sink: s.name }), s.retries]),
    );
    family(
      'flowtap_collect_queued_flows',
      'Flows waiting in a sink queue',
      'gauge',
      this.sinks.map((s) => [label({ sink: s.name }), s.queuedFlows]),
    );
    const histogram: [string, number][] = [];
    for (const s of this.sinks) {
      let cumulative = 0;
      INSERT_LATENCY_BUCKETS_S.forEach((bound, i) => {
        cumulative += s.latencyBuckets[i];
        histogram.push([label({ sink: s.name, le: bound }), cumulative]);
      });
      cumulative += s.latencyBuckets[INSERT_LATENCY_BUCKETS_S.length];
      histogram.push([label({ sink: s.name, le: '+Inf' }), cumulative]);
    }
    lines.push(
      '# HELP flowtap_collect_insert_seconds Time from an insert request to its acknowledgement, by sink',
      '# TYPE flowtap_collect_insert_seconds histogram',
      ...histogram.map(([labels, v]) => `flowtap_collect_insert_seconds_bucket${labels} ${v}`),
      ...this.sinks.flatMap((s) => [
        `flowtap_collect_insert_seconds_sum${label({ sink: s.name })} ${s.latencySumS}`,
        `flowtap_collect_insert_seconds_count${label({ sink: s.name })} ${s.latencyCount}`,
      ]),
    );
    return `${lines.join('\n')}\n`;
  }
}
