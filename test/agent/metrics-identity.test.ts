/** /metrics figures of issue 13: the agent's address and what the evicted flows carried. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentMetrics, healthSnapshot } from '../../src/agent/metrics.ts';
import { Pipeline } from '../../src/agent/pipeline.ts';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';

async function* once(batch: RecordBatch): AsyncIterable<RecordBatch> {
  yield batch;
}

test('/metrics names the agent IP and counts tunneled, tagged, multi-interface and bidirectional flows', async () => {
  const pipeline = new Pipeline({
    buffersLength: 4,
    cacheMaxFlows: 100,
    cacheActiveTimeoutMs: 60_000,
    evictedRows: { agentIp: parseIp('192.0.2.5')!, bidirectional: true },
  });
  await pipeline.run(
    once(
      recordBatchOf([
        makeFlow({
          srcPort: 1,
          tunnel: { type: 2, id: 7, srcAddr: parseIp('10.9.0.1')!, dstAddr: parseIp('10.9.0.2')! },
        }),
        makeFlow({ srcPort: 2, vlanOuter: 10, vlanInner: 0 }),
        makeFlow({
          srcPort: 3,
          crossed: [
            { ifIndex: 1, direction: 0 },
            { ifIndex: 2, direction: 1 },
          ],
        }),
        makeFlow({ srcAddr: '10.0.0.2', dstAddr: '10.0.0.1', srcPort: 80, dstPort: 3, direction: 0 }),
      ]),
    ),
  );
  const metrics = new AgentMetrics(() =>
    healthSnapshot({
      startedAtMs: Date.now(),
      pipeline,
      captureStats: () => undefined,
      attachedInterfaces: () => [],
      interfaceCounters: { attaches: 0, detaches: 0, attachFailures: 0 },
      filter: 'none',
      unhandledRejections: new Map(),
    }),
  );
  const text = await metrics.render();
  assert.match(text, /^flowtap_agent_info\{agent_ip="192\.0\.2\.5"\} 1$/m);
  assert.match(text, /^flowtap_tunneled_flows_total\{tunnel="Geneve"\} 1$/m);
  assert.match(text, /^flowtap_vlan_tagged_flows_total 1$/m);
  assert.match(text, /^flowtap_multi_interface_flows_total 1$/m);
  assert.match(text, /^flowtap_bidirectional_records_total\{kind="paired"\} 1$/m);
  assert.match(text, /^flowtap_bidirectional_records_total\{kind="one-way"\} 2$/m);
});

test('/metrics counts DNS of the evicted flows: responses by code, a latency histogram, unanswered queries', async () => {
  const pipeline = new Pipeline({
    buffersLength: 4,
    cacheMaxFlows: 100,
    cacheActiveTimeoutMs: 60_000,
    evictedRows: { agentIp: parseIp('192.0.2.5')!, bidirectional: false, dnsTracking: true },
  });
  const response = (port: number, flags: number, latencyNs: bigint) =>
    makeFlow({
      srcPort: 53,
      dstPort: port,
      dns: {
        queries: 0,
        answers: 1,
        unanswered: 0,
        malformed: 0,
        latestNs: 1n,
        header: { id: 1, flags },
        latencyNs,
      },
    });
  await pipeline.run(
    once(
      recordBatchOf([
        response(1, 0x8180, 3_000_000n),
        response(2, 0x8183, 40_000_000n),
        response(3, 0x8183, 7_000_000_000n),
        makeFlow({
          srcPort: 4,
          dstPort: 53,
          dns: { queries: 2, answers: 0, unanswered: 1, malformed: 1, latestNs: 1n },
        }),
        makeFlow({ srcPort: 5 }),
      ]),
    ),
  );
  const metrics = new AgentMetrics(() =>
    healthSnapshot({
      startedAtMs: Date.now(),
      pipeline,
      captureStats: () => undefined,
      attachedInterfaces: () => [],
      interfaceCounters: { attaches: 0, detaches: 0, attachFailures: 0 },
      filter: 'none',
      unhandledRejections: new Map(),
    }),
  );
  const text = await metrics.render();
  assert.match(text, /^flowtap_dns_flows_total 4$/m);
  assert.match(text, /^flowtap_dns_queries_total 2$/m);
  assert.match(text, /^flowtap_dns_unanswered_total 1$/m);
  assert.match(text, /^flowtap_dns_malformed_total 1$/m);
  assert.match(text, /^flowtap_dns_responses_total\{rcode="NoError"\} 1$/m);
  assert.match(text, /^flowtap_dns_responses_total\{rcode="NXDomain"\} 2$/m);
  assert.match(text, /^# TYPE flowtap_dns_latency_seconds histogram$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_bucket\{le="0.0025"\} 0$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_bucket\{le="0.005"\} 1$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_bucket\{le="0.05"\} 2$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_bucket\{le="5"\} 2$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_bucket\{le="\+Inf"\} 3$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_count 3$/m);
  assert.match(text, /^flowtap_dns_latency_seconds_sum 7\.043$/m);
});
