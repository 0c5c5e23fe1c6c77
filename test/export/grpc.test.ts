/**
 * The grpc exporter against flowtap's collector over loopback: every field delivered, batches
 * split, recovery when the collector restarts on the same port (and the at-least-once duplicate
 * the docs promise for a message in flight when it dies). TLS is in grpc-tls.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { GrpcExporter, type GrpcExporterOptions } from '../../src/export/grpc.ts';
import {
  type CollectorOptions,
  type RunningCollector,
  startCollector,
} from '../../src/export/grpc-collector.ts';
import type { Flow } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { makeFlow } from '../helpers/flows.ts';

type TestContext = { after: (fn: () => unknown) => void };

const NAMES = new InterfaceRegistry();
NAMES.set(4, 'eth0');
NAMES.set(5, 'wlp0s20f3');

/** Flow `i`: distinct source port, alternating family, direction and interface. */
function flowNumber(i: number): Flow {
  const ipv6 = i % 2 === 1;
  return makeFlow({
    etype: ipv6 ? 0x86dd : 0x0800,
    direction: (i >> 1) % 2,
    srcMac: '11:22:33:44:55:66',
    dstMac: `aa:bb:cc:dd:ee:${(i & 0xff).toString(16).padStart(2, '0')}`,
    srcAddr: ipv6 ? `2001:db8::${i + 1}` : `10.0.${i >> 8}.${i & 0xff}`,
    dstAddr: ipv6 ? 'fe80::1' : '10.0.0.1',
    srcPort: 10_000 + i,
    dstPort: 443,
    proto: ipv6 ? 17 : 6,
    bytes: 2 ** 40 + i,
    packets: 3 + i,
    ifIndex: 4 + (i % 2),
    timeFlowStartNs: 1_700_000_000_123_456_789n + BigInt(i),
    timeFlowEndNs: 1_700_000_005_987_654_321n + BigInt(i),
  });
}

function batchOf(first: number, count: number) {
  return recordBatchOf(
    Array.from({ length: count }, (_, k) => flowNumber(first + k)),
    NAMES,
  );
}

/** What the collector gives back for flow `i`: pbflow carries the interface by name only. */
function receivedForm(i: number): Flow {
  const flow = flowNumber(i);
  return { ...flow, ifIndex: 0, interface: NAMES.nameOf(flow.ifIndex) };
}

/** A collector recording what it receives, and a way to wait for a number of flows. */
async function collect(t: TestContext, options: Partial<CollectorOptions> = {}) {
  const messages: Flow[][] = [];
  const waiters: { flows: number; resolve: () => void }[] = [];
  const received = () => messages.reduce((n, m) => n + m.length, 0);
  const collector = await startCollector({
    port: 0,
    onRecords: (flows) => {
      messages.push(flows);
      for (const w of waiters) if (received() >= w.flows) w.resolve();
    },
    ...options,
  });
  t.after(() => collector.close(0));
  return {
    collector,
    messages,
    /** Resolves once at least `flows` flows have arrived. */
    until: (flows: number) =>
      new Promise<void>((resolve) => {
        if (received() >= flows) resolve();
        else waiters.push({ flows, resolve });
      }),
  };
}

function exporterTo(t: TestContext, collector: RunningCollector, options: Partial<GrpcExporterOptions> = {}) {
  const exporter = new GrpcExporter({
    host: '127.0.0.1',
    port: collector.port,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    ...options,
  });
  t.after(() => exporter.stop(0));
  return exporter;
}

/** Source ports identify flows; returns how often each flow number arrived. */
function arrivals(messages: Flow[][]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const m of messages)
    for (const f of m) counts.set(f.srcPort - 10_000, (counts.get(f.srcPort - 10_000) ?? 0) + 1);
  return counts;
}

test('every flow arrives at the collector with every field pbflow carries', async (t) => {
  const { collector, messages, until } = await collect(t);
  const exporter = exporterTo(t, collector);
  exporter.export(batchOf(0, 8));
  await until(8);
  assert.deepEqual(
    messages.flat(),
    Array.from({ length: 8 }, (_, i) => receivedForm(i)),
  );
  await exporter.stop();
  assert.equal(exporter.stats.flowsSent, 8);
});

test('a batch larger than the message bound is split into messages in order', async (t) => {
  const { collector, messages, until } = await collect(t);
  const exporter = exporterTo(t, collector, { maxMessageFlows: 3 });
  exporter.export(batchOf(0, 10));
  await until(10);
  assert.deepEqual(
    messages.map((m) => m.length),
    [3, 3, 3, 1],
  );
  assert.deepEqual(
    messages.flat().map((f) => f.srcPort),
    Array.from({ length: 10 }, (_, i) => 10_000 + i),
  );
  await exporter.stop();
  assert.equal(exporter.messagesSent, 4);
});

test('after the collector restarts on the same port the exporter delivers what waited, once', async (t) => {
  const first = await collect(t);
  const port = first.collector.port;
  let sawDown: () => void;
  const down = new Promise<void>((resolve) => {
    sawDown = resolve;
  });
  const exporter = exporterTo(t, first.collector, { onTransportError: () => sawDown() });
  exporter.export(batchOf(0, 10));
  await first.until(10);
  await first.collector.close();

  exporter.export(batchOf(10, 10));
  exporter.export(batchOf(20, 10));
  await down;

  const second = await collect(t, { port });
  await second.until(20);
  const counts = arrivals([...first.messages, ...second.messages]);
  assert.equal(counts.size, 30);
  assert.ok(
    [...counts.values()].every((n) => n === 1),
    'no flow arrived twice',
  );
  assert.equal(exporter.stats.flowsFailed, 0);
});

test('a message in flight when the collector dies is delivered again after the restart (at-least-once)', async (t) => {
  let gotInFlight: () => void;
  const inFlight = new Promise<void>((resolve) => {
    gotInFlight = resolve;
  });
  // This collector receives the message but dies before replying.
  const dying = await collect(t, {
    onRecords: () => {
      gotInFlight();
      return new Promise<void>(() => {});
    },
  });
  const port = dying.collector.port;
  const exporter = exporterTo(t, dying.collector, { maxMessageFlows: 4 });
  exporter.export(batchOf(0, 6));
  await inFlight;
  await dying.collector.close(0);

  const restarted = await collect(t, { port });
  await restarted.until(6);
  assert.deepEqual(
    restarted.messages.map((m) => m.length),
    [4, 2],
    'the unacknowledged message came again, then the rest',
  );
  assert.deepEqual([...arrivals(restarted.messages).keys()], [0, 1, 2, 3, 4, 5]);
  assert.ok(exporter.retries.transport >= 1);
});

test('while the collector is down batches wait up to the queue bound and the rest are counted as dropped', async (t) => {
  const { collector } = await collect(t);
  const port = collector.port;
  await collector.close(0);
  const exporter = new GrpcExporter({ host: '127.0.0.1', port, maxQueuedBatches: 2, initialBackoffMs: 20 });
  t.after(() => exporter.stop(0));
  for (let i = 0; i < 4; i++) exporter.export(batchOf(i * 5, 5));
  assert.equal(exporter.stats.flowsDropped['queue-full'], 10);
  const restarted = await collect(t, { port });
  await restarted.until(10);
  assert.deepEqual([...arrivals(restarted.messages).keys()], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
