/** The queue every exporter shares: a send loop no failure ends, and a stop that runs once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordBatch } from '../../src/codec/record-batch.ts';
import { type BatchResult, QueuedExporter, type QueuedExporterOptions } from '../../src/export/exporter.ts';
import { FLOWTAP_ORIGIN, unhandledRejections } from '../../src/unhandled-rejections.ts';
import { batchOf } from '../agent/fakes.ts';

/** An exporter whose sends fail for the batches `failing` names, and which counts its closes. */
class FakeExporter extends QueuedExporter {
  readonly name = 'fake';
  readonly sent: number[] = [];
  closes = 0;
  constructor(
    options: QueuedExporterOptions,
    private readonly failing = new Set<number>(),
  ) {
    super(options);
  }
  protected async send(batch: RecordBatch): Promise<void> {
    const port = batch.flow(0).srcPort;
    if (this.failing.has(port)) throw new Error(`collector refused batch ${port}`);
    this.sent.push(port);
  }
  protected override async close(): Promise<void> {
    this.closes++;
  }
}

// Before the loop was made unable to die, the first batch left it wedged: whenReady never
// resolved and every later batch was dropped as queue-full; the timeout turns that into a failure.
test('a result listener that throws does not stop the exporter sending later batches', {
  timeout: 20_000,
}, async () => {
  unhandledRejections.useLogger({ error() {}, debug() {} });
  const before = unhandledRejections.counts.get(FLOWTAP_ORIGIN) ?? 0;
  const exporter = new FakeExporter({
    maxQueuedBatches: 1,
    onResult: () => {
      throw new Error('stderr is closed');
    },
  });
  for (const port of [100, 200, 300, 400]) {
    await exporter.whenReady();
    assert.ok(exporter.export(batchOf(1, port)), 'a later batch is queued, not dropped as queue-full');
  }
  await exporter.stop(60_000);
  assert.deepEqual(exporter.sent, [100, 200, 300, 400]);
  assert.equal(exporter.stats.batchesSent, 4);
  assert.equal(exporter.stats.batchesFailed, 0, 'a listener failure is not a failed delivery');
  assert.equal(exporter.stats.flowsDropped['queue-full'], 0);
  assert.equal(
    unhandledRejections.counts.get(FLOWTAP_ORIGIN),
    before + 4,
    'each listener failure is counted',
  );
});

test('a failing send counts its batch as failed with the reason, and the next batch is still sent', async () => {
  const results: BatchResult[] = [];
  const exporter = new FakeExporter({ onResult: (r) => results.push(r) }, new Set([100]));
  exporter.export(batchOf(2, 100));
  exporter.export(batchOf(3, 200));
  await exporter.stop(60_000);
  assert.deepEqual(exporter.sent, [200]);
  assert.equal(exporter.stats.flowsFailed, 2);
  assert.equal(exporter.stats.flowsSent, 3);
  assert.match(results[0].error?.message ?? '', /collector refused batch 100/);
  assert.equal(results[1].ok, true);
});

test('stop calls made while a stop runs share it, and the transport is closed once', async () => {
  const exporter = new FakeExporter({});
  exporter.export(batchOf(1));
  const first = exporter.stop(60_000);
  const second = exporter.stop(60_000);
  assert.equal(first, second);
  await Promise.all([first, second]);
  await exporter.stop();
  assert.equal(exporter.closes, 1);
});

test('batches given after stop began are dropped and counted as stopped', async () => {
  const exporter = new FakeExporter({});
  const stopping = exporter.stop(60_000);
  assert.equal(exporter.export(batchOf(2)), false);
  await stopping;
  assert.equal(exporter.stats.flowsDropped.stopped, 2);
});

test('whenDone resolves for each batch once it was sent, failed or dropped, not before', async () => {
  const exporter = new FakeExporter({ maxQueuedBatches: 2 }, new Set([2]));
  const batches = [1, 2, 3].map((port) => batchOf(1, port));
  for (const batch of batches) exporter.export(batch);
  assert.equal(exporter.stats.flowsDropped['queue-full'], 1, 'the third did not fit');
  const done: number[] = [];
  const waits = batches.map((batch, i) => exporter.whenDone(batch).then(() => done.push(i + 1)));
  // The dropped batch is done at once; the queued ones only as the queue sends (1) or fails (2)
  // them. Had they been done at once too, they would have resolved in the order asked: 1, 2, 3.
  await Promise.all(waits);
  assert.deepEqual(done, [3, 1, 2]);
  assert.deepEqual(exporter.sent, [1]);
  await exporter.stop();
});

test('whenIdle resolves once every batch given has been sent or failed', async () => {
  const exporter = new FakeExporter({}, new Set([2]));
  await exporter.whenIdle(); // nothing given yet
  for (const port of [1, 2, 3]) exporter.export(batchOf(1, port));
  assert.equal(exporter.stats.queuedBatches, 3);
  await exporter.whenIdle();
  assert.equal(exporter.stats.queuedBatches, 0);
  assert.deepEqual(exporter.sent, [1, 3]);
  assert.equal(exporter.stats.batchesFailed, 1);
  await exporter.stop();
});
