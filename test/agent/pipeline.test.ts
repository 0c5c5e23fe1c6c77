import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXPORT_SLICE_FLOWS, Pipeline, type PipelineOptions } from '../../src/agent/pipeline.ts';
import { HealthBatch } from '../../src/codec/health-batch.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { BatchChannel } from '../account/channel.ts';
import { FakeClock } from '../account/fake-clock.ts';
import { makeFlow } from '../helpers/flows.ts';
import { batchOf, RecordingExporter } from './fakes.ts';

/** Evictions only when full or at the end: record time never reaches an hour. */
const OPTIONS: PipelineOptions = {
  buffersLength: 2,
  cacheMaxFlows: 10_000,
  cacheActiveTimeoutMs: 3_600_000,
  activeTimeoutBy: 'record-time',
};

async function* source(...batches: RecordBatch[]): AsyncIterable<RecordBatch> {
  for (const batch of batches) yield batch;
}

test('every evicted flow reaches every exporter, including one added later', async () => {
  const a = new RecordingExporter('a');
  const b = new RecordingExporter('b');
  const pipeline = new Pipeline(OPTIONS, [a]);
  pipeline.addExporter(b);
  await pipeline.run(source(batchOf(3, 1000), batchOf(2, 2000)));
  await pipeline.stopExporters();
  assert.equal(a.flows.length, 5);
  assert.deepEqual(b.flows.map((f) => f.srcPort).sort(), a.flows.map((f) => f.srcPort).sort());
});

test('records of the same flow are accumulated before export', async () => {
  const out = new RecordingExporter('out');
  const pipeline = new Pipeline(OPTIONS, [out]);
  await pipeline.run(source(batchOf(1, 1000, 2), batchOf(1, 1000, 3)));
  await pipeline.stopExporters();
  assert.deepEqual(
    out.flows.map((f) => [f.srcPort, f.packets, f.bytes]),
    [[1000, 5, 500]],
  );
});

test('packets, bytes and records received are counted', async () => {
  const pipeline = new Pipeline(OPTIONS, []);
  await pipeline.run(source(batchOf(3, 1000, 2), batchOf(1, 5000, 4)));
  assert.deepEqual(
    [pipeline.stats.rowsIn, pipeline.stats.packetsIn, pipeline.stats.bytesIn, pipeline.stats.batchesIn],
    [4, 10, 1000, 2],
  );
  assert.deepEqual(pipeline.stats.flowsEvicted, { full: 0, timeout: 0, end: 4 });
});

test('a full cache is evicted whole and counted by reason', async () => {
  const out = new RecordingExporter('out');
  const pipeline = new Pipeline({ ...OPTIONS, cacheMaxFlows: 4 }, [out]);
  await pipeline.run(source(batchOf(6)));
  await pipeline.stopExporters();
  assert.deepEqual(pipeline.stats.evictions, { full: 1, timeout: 0, end: 1 });
  assert.deepEqual(pipeline.stats.flowsEvicted, { full: 4, timeout: 0, end: 2 });
  assert.equal(out.flows.length, 6);
});

test('a stalled observer drops and counts batches beyond its bound without holding up the exporters', async () => {
  const stalled = new RecordingExporter('stalled', 1);
  const healthy = new RecordingExporter('healthy');
  stalled.hold();
  const pipeline = new Pipeline({ ...OPTIONS, cacheMaxFlows: 2 }, [healthy]);
  pipeline.addExporter(stalled);
  // 8 flows in a cache of 2: four evicted batches of 2 flows.
  await pipeline.run(source(batchOf(8)));
  assert.equal(healthy.flows.length, 8, 'the healthy exporter got everything');
  // The batch being sent fills the bound of 1; the other three are dropped and counted.
  assert.equal(stalled.stats.flowsDropped['queue-full'], 6);
  stalled.release();
  await pipeline.stopExporters();
  assert.equal(stalled.flows.length, 2);
  assert.equal(
    stalled.flows.length + stalled.stats.flowsDropped['queue-full'],
    8,
    'nothing is lost uncounted',
  );
});

/** Lets queued callbacks and timers run a few times over. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('a configured exporter with a full queue holds the pipeline back instead of dropping', async () => {
  const slow = new RecordingExporter('slow', 1);
  slow.hold();
  const pipeline = new Pipeline({ ...OPTIONS, cacheMaxFlows: 2 }, [slow]);
  const running = pipeline.run(source(batchOf(8)));
  await turns(10);
  slow.release();
  await running;
  await pipeline.stopExporters();
  assert.equal(slow.stats.flowsDropped['queue-full'], 0);
  assert.equal(slow.flows.length, 8);
});

test('after stopWaiting a full exporter drops and counts instead of holding the pipeline back', async () => {
  const dead = new RecordingExporter('dead', 1);
  dead.hold();
  const pipeline = new Pipeline({ ...OPTIONS, cacheMaxFlows: 2 }, [dead]);
  const running = pipeline.run(source(batchOf(8)));
  await turns(10);
  pipeline.stopWaiting();
  await running;
  assert.equal(dead.stats.flowsDropped['queue-full'], 6);
  dead.release();
  await pipeline.stopExporters();
});

test('a large eviction reaches exporters in slices of at most EXPORT_SLICE_FLOWS flows', async () => {
  const out = new RecordingExporter('out');
  const pipeline = new Pipeline(OPTIONS, [out]);
  await pipeline.run(source(batchOf(EXPORT_SLICE_FLOWS + 10)));
  await pipeline.stopExporters();
  assert.deepEqual(
    out.results.map((r) => r.flows),
    [EXPORT_SLICE_FLOWS, 10],
  );
  assert.equal(new Set(out.flows.map((f) => f.srcPort)).size, EXPORT_SLICE_FLOWS + 10);
});

test('a failing source still exports what it delivered, then reports its error', async () => {
  const out = new RecordingExporter('out');
  const pipeline = new Pipeline(OPTIONS, [out]);
  async function* failing(): AsyncIterable<RecordBatch> {
    yield batchOf(3);
    throw new Error('map drain failed');
  }
  await assert.rejects(pipeline.run(failing()), /map drain failed/);
  await pipeline.stopExporters();
  assert.equal(out.flows.length, 3);
});

function healthRows(srcPort: number, dropPackets: number): HealthBatch {
  const batch = recordBatchOf([
    makeFlow({
      srcPort,
      srcMac: '00:00:00:00:00:00',
      dstMac: '00:00:00:00:00:00',
      direction: 0,
      packets: 0,
      bytes: 0,
      health: { dropPackets, dropBytes: dropPackets * 60, retransPackets: 0, retransBytes: 0 },
    }),
  ]);
  return new HealthBatch(batch.bytes, batch.count, batch.interfaces);
}

test('health rows are joined into the evicted flow of their key and never accounted as flows', async () => {
  const out = new RecordingExporter('out');
  const pipeline = new Pipeline(OPTIONS, [out]);
  await pipeline.run(source(recordBatchOf([makeFlow({ srcPort: 1000, packets: 3 })]), healthRows(1000, 2)));
  await pipeline.stopExporters();
  assert.deepEqual(
    out.flows.map((f) => [f.srcPort, f.packets, f.health?.dropPackets]),
    [[1000, 3, 2]],
  );
  assert.equal(pipeline.stats.rowsIn, 1);
  assert.deepEqual(pipeline.healthJoinCounts, { joined: 1, ownRecords: 0, filtered: 0 });
});

test('health rows with no flow cached leave at the next tick, as records of their own', async () => {
  const out = new RecordingExporter('out');
  const clock = new FakeClock();
  const pipeline = new Pipeline({ ...OPTIONS, activeTimeoutBy: 'clock', clock }, [out]);
  const input = new BatchChannel();
  const running = pipeline.run(input);
  input.push(healthRows(2000, 1));
  await input.drained();
  clock.tick();
  while (out.flows.length === 0) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    out.flows.map((f) => [f.srcPort, f.packets, f.health?.dropPackets]),
    [[2000, 0, 1]],
  );
  input.end();
  await running;
  await pipeline.stopExporters();
  assert.equal(out.flows.length, 1, 'no empty eviction once nothing waits');
});
