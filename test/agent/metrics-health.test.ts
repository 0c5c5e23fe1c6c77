/**
 * /metrics figures of issue 14: the RTT histogram of the evicted flows, their dropped packets by
 * the kernel's reason name, and their retransmitted segments, rendered as Prometheus reads them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthSums, MAX_DROP_CAUSES, RTT_BUCKET_BOUNDS_SECONDS } from '../../src/account/health-sums.ts';
import { AgentMetrics, healthSnapshot } from '../../src/agent/metrics.ts';
import { Pipeline } from '../../src/agent/pipeline.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { DropReasonNames } from '../../src/model/drop-reasons.ts';
import type { Flow, FlowHealth } from '../../src/model/flow.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';

const NO_HEALTH: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0 };
const REASONS = new DropReasonNames(
  new Map([
    [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
    [6, 'SKB_DROP_REASON_NETFILTER_DROP'],
  ]),
);

function drops(packets: number, cause: number): FlowHealth {
  return {
    ...NO_HEALTH,
    dropPackets: packets,
    dropBytes: packets * 100,
    latestDrop: { timeNs: 1n, cause, tcpFlags: 0, tcpState: 0 },
  };
}

function smoothed(lastNs: bigint): FlowHealth['rtt'] {
  return { minNs: lastNs, maxNs: lastNs, lastNs, samples: 1 };
}

async function* once(batch: RecordBatch): AsyncIterable<RecordBatch> {
  yield batch;
}

/** The /metrics text after `flows` went through a pipeline (bidirectional pairing on). */
async function metricsAfter(flows: Flow[], names = REASONS): Promise<string> {
  const pipeline = new Pipeline({
    buffersLength: 4,
    cacheMaxFlows: 100,
    cacheActiveTimeoutMs: 60_000,
    evictedRows: { agentIp: parseIp('192.0.2.5')!, bidirectional: true },
  });
  await pipeline.run(once(recordBatchOf(flows)));
  const metrics = new AgentMetrics(
    () =>
      healthSnapshot({
        startedAtMs: Date.now(),
        pipeline,
        captureStats: () => undefined,
        attachedInterfaces: () => [],
        interfaceCounters: { attaches: 0, detaches: 0, attachFailures: 0 },
        filter: 'none',
        unhandledRejections: new Map(),
      }),
    () => names,
  );
  return metrics.render();
}

/** The value of the sample line `line` (exact, labels included) in `text`. */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  assert.ok(found, `${line} in\n${text}`);
  return Number(found.slice(line.length + 1));
}

test('the RTT histogram has one observation per flow record, by kind, in cumulative buckets of seconds', async () => {
  const text = await metricsAfter([
    makeFlow({ srcPort: 1, health: { ...NO_HEALTH, rtt: smoothed(800_000n) } }),
    makeFlow({ srcPort: 2, health: { ...NO_HEALTH, rtt: smoothed(30_000_000n), handshakeRttNs: 1_000n } }),
    makeFlow({ srcPort: 3, health: { ...NO_HEALTH, handshakeRttNs: 200_000n } }),
    makeFlow({ srcPort: 4, health: { ...NO_HEALTH, rtt: smoothed(60_000_000_000n) } }),
    makeFlow({ srcPort: 5 }),
  ]);
  assert.match(text, /^# TYPE flowtap_flow_rtt_seconds histogram$/m);
  const smoothedBucket = (le: string) =>
    sample(text, `flowtap_flow_rtt_seconds_bucket{kind="smoothed",le="${le}"}`);
  assert.equal(smoothedBucket('0.0005'), 0);
  assert.equal(smoothedBucket('0.001'), 1);
  assert.equal(smoothedBucket('0.025'), 1);
  assert.equal(smoothedBucket('0.05'), 2);
  assert.equal(smoothedBucket('10'), 2, 'a minute is above every bound');
  assert.equal(smoothedBucket('+Inf'), 3);
  assert.equal(sample(text, 'flowtap_flow_rtt_seconds_count{kind="smoothed"}'), 3);
  assert.ok(Math.abs(sample(text, 'flowtap_flow_rtt_seconds_sum{kind="smoothed"}') - 60.0308) < 1e-9);
  assert.equal(sample(text, 'flowtap_flow_rtt_seconds_bucket{kind="handshake",le="0.00025"}'), 1);
  assert.equal(sample(text, 'flowtap_flow_rtt_seconds_count{kind="handshake"}'), 1);
  const bounds = [
    ...text.matchAll(/^flowtap_flow_rtt_seconds_bucket\{kind="handshake",le="([^"]+)"\}/gm),
  ].map((m) => m[1]);
  assert.deepEqual(bounds, [...RTT_BUCKET_BOUNDS_SECONDS.map(String), '+Inf']);
});

test('dropped packets and bytes are counted by the reason name, and retransmitted segments in total', async () => {
  const text = await metricsAfter([
    makeFlow({ srcPort: 1, health: drops(3, 6) }),
    makeFlow({ srcPort: 2, health: drops(4, 6) }),
    makeFlow({ srcPort: 3, health: { ...drops(5, 2), retransPackets: 2, retransBytes: 2000 } }),
    makeFlow({ srcPort: 4, health: { ...NO_HEALTH, retransPackets: 1, retransBytes: 10 } }),
  ]);
  assert.equal(sample(text, 'flowtap_dropped_packets_total{reason="NETFILTER_DROP"}'), 7);
  assert.equal(sample(text, 'flowtap_dropped_packets_total{reason="NOT_SPECIFIED"}'), 5);
  assert.equal(sample(text, 'flowtap_dropped_bytes_total{reason="NETFILTER_DROP"}'), 700);
  assert.equal(sample(text, 'flowtap_retransmitted_segments_total'), 3);
});

test('both directions of a conversation count once each when they are paired into one record', async () => {
  const text = await metricsAfter([
    makeFlow({ srcPort: 4000, dstPort: 80, health: { ...drops(2, 6), retransPackets: 1, retransBytes: 10 } }),
    makeFlow({
      srcAddr: '10.0.0.2',
      dstAddr: '10.0.0.1',
      srcPort: 80,
      dstPort: 4000,
      direction: 0,
      health: { ...drops(1, 6), retransPackets: 4, retransBytes: 40 },
    }),
  ]);
  assert.equal(sample(text, 'flowtap_bidirectional_records_total{kind="paired"}'), 1);
  assert.equal(sample(text, 'flowtap_dropped_packets_total{reason="NETFILTER_DROP"}'), 3);
  assert.equal(sample(text, 'flowtap_retransmitted_segments_total'), 5);
});

test('without the kernel table a reason is its number; without health nothing is rendered but zeros', async () => {
  const numeric = await metricsAfter([makeFlow({ health: drops(1, 77) })], new DropReasonNames(undefined));
  assert.equal(sample(numeric, 'flowtap_dropped_packets_total{reason="77"}'), 1);
  const quiet = await metricsAfter([makeFlow({})]);
  assert.doesNotMatch(quiet, /^flowtap_dropped_packets_total\{/m);
  assert.equal(sample(quiet, 'flowtap_retransmitted_segments_total'), 0);
  assert.equal(sample(quiet, 'flowtap_flow_rtt_seconds_count{kind="smoothed"}'), 0);
});

test('the reason label set is bounded: causes beyond the bound count as other', () => {
  const counts = new HealthSums();
  const batch = recordBatchOf(
    Array.from({ length: MAX_DROP_CAUSES + 5 }, (_, i) =>
      makeFlow({ srcPort: i, health: drops(1, 1000 + i) }),
    ),
  );
  for (let i = 0; i < batch.count; i++) counts.add(batch.bytes, i * V2_RECORD_BYTES);
  assert.equal(counts.drops.size, MAX_DROP_CAUSES + 1);
  assert.equal(counts.drops.get(-1)?.packets, 5);
});
