/** The web view's aggregate and snapshot: buckets, sliding windows, filters, bounds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import type { Flow } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { FlowAggregate, type FlowAggregateOptions } from '../../src/web/aggregate.ts';
import { buildSnapshot, largest, NO_FILTER, parseWebFilter, type WebFilter } from '../../src/web/snapshot.ts';
import { OTHER_SERIES_NAME } from '../../src/web/throughput.ts';
import { type FlowSpec, makeFlow } from '../helpers/flows.ts';

/** 2023-11-14T22:13:20Z, a whole second. */
const T0 = 1_700_000_000;
const NS = 1_000_000_000n;

const NAMES = new InterfaceRegistry();
NAMES.set(1, 'wan0');
NAMES.set(2, 'wan1');

/** A flow on wan0 (ifIndex 1) from `fromSecond` to `toSecond` (default: one second). */
function flowAt(fromSecond: number, spec: FlowSpec = {}, toSecond = fromSecond): Flow {
  return makeFlow({
    ifIndex: 1,
    timeFlowStartNs: BigInt(fromSecond) * NS,
    timeFlowEndNs: BigInt(toSecond) * NS + 500_000_000n,
    ...spec,
  });
}

function aggregateOf(flows: Flow[], options: Partial<FlowAggregateOptions> = {}): FlowAggregate {
  const aggregate = new FlowAggregate({ timeline: 'records', ...options });
  aggregate.add(recordBatchOf(flows, NAMES));
  return aggregate;
}

function filterOf(query: string): WebFilter {
  const filter = parseWebFilter(new URLSearchParams(query));
  assert.ok(typeof filter !== 'string', String(filter));
  return filter;
}

test('throughput is bucketed per second per interface and direction on the records timeline, from the first record', () => {
  const aggregate = aggregateOf([
    flowAt(T0, { bytes: 1000, direction: 1 }),
    flowAt(T0 + 2, { bytes: 500, direction: 0, ifIndex: 2, srcAddr: '10.0.0.9' }),
  ]);
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 10, undefined);
  assert.equal(snapshot.endSecond, T0 + 2);
  assert.equal(snapshot.chartStartSecond, T0, 'no empty minutes before the first record');
  const byName = new Map(snapshot.chart.map((s) => [`${s.interface} ${s.direction}`, s.bytesPerSecond]));
  const wan0 = byName.get('wan0 EGRESS')!;
  assert.equal(wan0.length, 3);
  assert.equal(wan0[T0 - snapshot.chartStartSecond], 1000);
  assert.equal(
    wan0.reduce((a, b) => a + b, 0),
    1000,
  );
  assert.equal(byName.get('wan1 INGRESS')![2], 500);
  assert.deepEqual(snapshot.interfaces, ['wan0', 'wan1']);
});

test('a record spanning several seconds is spread evenly over them', () => {
  const aggregate = aggregateOf([flowAt(T0, { bytes: 4000 }, T0 + 3)]);
  const series = buildSnapshot(aggregate, NO_FILTER, 10, undefined).chart[0].bytesPerSecond;
  assert.deepEqual(series, [1000, 1000, 1000, 1000]);
});

test('records of the same flow add up and the tables rank by bytes and by packets', () => {
  const aggregate = aggregateOf([
    flowAt(T0, { srcPort: 1, bytes: 5000, packets: 2 }),
    flowAt(T0 + 1, { srcPort: 1, bytes: 5000, packets: 2 }),
    flowAt(T0, { srcPort: 2, bytes: 100, packets: 50 }),
    flowAt(T0, { srcPort: 3, bytes: 10, packets: 1 }),
  ]);
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 1, undefined);
  // top 1 by bytes (port 1) followed by top 1 by packets (port 2)
  assert.deepEqual(
    snapshot.flows.map((f) => [f.srcPort, f.bytes, f.packets, f.records]),
    [
      [1, 10_000, 4, 2],
      [2, 100, 50, 1],
    ],
  );
  assert.equal(snapshot.matchingFlows, 3);
  const row = snapshot.flows[0];
  assert.deepEqual(
    [row.interface, row.direction, row.proto, row.src, row.dst, row.dstPort],
    ['wan0', 'EGRESS', 'TCP', '10.0.0.1', '10.0.0.2', 80],
  );
});

test('flows leave the top tables once the window passes them while the chart keeps them', () => {
  const aggregate = aggregateOf([flowAt(T0, { srcPort: 1 })]);
  aggregate.add(recordBatchOf([flowAt(T0 + 65, { srcPort: 2 })], NAMES));
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 10, undefined);
  assert.deepEqual(
    snapshot.flows.map((f) => f.srcPort),
    [2],
  );
  assert.equal(snapshot.chart[0].bytesPerSecond[0], 100, 'the chart starts at the first record');
});

test('records older than the chart window are counted and left out', () => {
  const aggregate = aggregateOf([flowAt(T0 + 400)]);
  aggregate.add(recordBatchOf([flowAt(T0)], NAMES));
  assert.equal(aggregate.stats.outOfWindow, 1);
  assert.equal(aggregate.stats.records, 1);
});

test('records without an end time are counted and left out', () => {
  const aggregate = aggregateOf([makeFlow({ ifIndex: 1, timeFlowStartNs: 0n, timeFlowEndNs: 0n })]);
  assert.equal(aggregate.stats.withoutTime, 1);
  assert.equal(aggregate.flows.size, 0);
});

test('the wall timeline slides with the clock, so old flows leave without new ones arriving', () => {
  let nowMs = T0 * 1000;
  const aggregate = aggregateOf([flowAt(T0 - 1)], { timeline: 'wall', nowMs: () => nowMs });
  assert.equal(aggregate.endSecond, T0);
  assert.equal(buildSnapshot(aggregate, NO_FILTER, 10, undefined).flows.length, 1);
  const version = aggregate.version;
  nowMs += 90_000;
  aggregate.tick();
  assert.ok(aggregate.version > version, 'sliding a window that holds data is a change');
  assert.equal(aggregate.endSecond, T0 + 90);
  assert.equal(buildSnapshot(aggregate, NO_FILTER, 10, undefined).flows.length, 0);
});

test('a flow stamped after now on the wall timeline counts in the current second', () => {
  const aggregate = aggregateOf([flowAt(T0 + 30)], { timeline: 'wall', nowMs: () => T0 * 1000 });
  const series = buildSnapshot(aggregate, NO_FILTER, 10, undefined).chart[0].bytesPerSecond;
  assert.deepEqual(series, [100], 'one second since the view started');
});

test('on the wall timeline the chart starts when the view started, not minutes before', () => {
  let nowMs = T0 * 1000;
  const aggregate = aggregateOf([], { timeline: 'wall', nowMs: () => nowMs });
  nowMs += 20_000;
  aggregate.add(recordBatchOf([flowAt(T0 + 20)], NAMES));
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 10, undefined);
  assert.equal(snapshot.chartStartSecond, T0);
  assert.equal(snapshot.chart[0].bytesPerSecond.length, 21);
});

test('filters narrow flows by interface, protocol and address or port substring', () => {
  const aggregate = aggregateOf([
    flowAt(T0, { srcAddr: '10.0.0.1', dstPort: 443 }),
    flowAt(T0, { srcAddr: '10.0.0.1', dstPort: 53, proto: 17 }),
    flowAt(T0, { srcAddr: '192.168.7.7', dstPort: 22, ifIndex: 2 }),
    flowAt(T0, { srcAddr: '2001:db8::1', dstAddr: '2001:db8::2', etype: 0x86dd, dstPort: 8443 }),
  ]);
  const ports = (query: string) =>
    buildSnapshot(aggregate, filterOf(query), 10, undefined)
      .flows.map((f) => f.dstPort)
      .sort((a, b) => a - b);
  assert.deepEqual(ports('interface=wan1'), [22]);
  assert.deepEqual(ports('proto=udp'), [53]);
  assert.deepEqual(ports('proto=6&q=443'), [443, 8443]);
  assert.deepEqual(ports('q=192.168'), [22]);
  assert.deepEqual(ports('q=2001:DB8::'), [8443]);
});

test('the interface filter also narrows the chart', () => {
  const aggregate = aggregateOf([flowAt(T0), flowAt(T0, { ifIndex: 2 })]);
  const chart = buildSnapshot(aggregate, filterOf('interface=wan1'), 10, undefined).chart;
  assert.deepEqual(
    chart.map((s) => s.interface),
    ['wan1'],
  );
});

test('talkers sum a source over its flows and protocols on one interface', () => {
  const aggregate = aggregateOf([
    flowAt(T0, { srcAddr: '10.0.0.5', srcPort: 1, bytes: 100 }),
    flowAt(T0, { srcAddr: '10.0.0.5', proto: 17, bytes: 200 }),
    flowAt(T0, { srcAddr: '10.0.0.6', bytes: 50 }),
  ]);
  const all = buildSnapshot(aggregate, NO_FILTER, 10, undefined).talkers;
  assert.deepEqual(
    all.map((t) => [t.address, t.interface, t.bytes, t.records]),
    [
      ['10.0.0.5', 'wan0', 300, 2],
      ['10.0.0.6', 'wan0', 50, 1],
    ],
  );
  const udp = buildSnapshot(aggregate, filterOf('proto=UDP'), 10, undefined).talkers;
  assert.deepEqual(
    udp.map((t) => [t.address, t.bytes]),
    [['10.0.0.5', 200]],
  );
});

test('series beyond the bound share one (other) series', () => {
  const flows = [1, 2, 3].map((ifIndex) => flowAt(T0, { ifIndex }));
  const aggregate = aggregateOf(flows, { maxSeries: 2 });
  const chart = buildSnapshot(aggregate, NO_FILTER, 10, undefined).chart;
  assert.deepEqual(
    chart.map((s) => s.interface),
    ['wan0', 'wan1', OTHER_SERIES_NAME],
  );
});

test('a segment full of distinct flows keeps its largest and counts the ones it forgot', () => {
  const flows = Array.from({ length: 100 }, (_, i) => flowAt(T0, { srcPort: i + 1, bytes: i + 1 }));
  const aggregate = aggregateOf(flows, { topSegmentCapacity: 40 });
  assert.ok(aggregate.flows.size <= 40);
  assert.ok(aggregate.stats.prunedKeys > 0);
  const top = buildSnapshot(aggregate, NO_FILTER, 1, undefined).flows[0];
  assert.equal(top.srcPort, 100, 'the largest flow survives pruning');
});

test('100 000 flows across a minute keep the aggregate and the snapshot bounded', () => {
  const aggregate = new FlowAggregate({ timeline: 'records', topSegmentCapacity: 5_000 });
  const template = flowAt(T0);
  const batchFlows: Flow[] = [];
  for (let i = 0; i < 100_000; i++) {
    const second = T0 + Math.floor(i / 1667);
    batchFlows.push({
      ...template,
      ifIndex: 1 + (i % 4),
      direction: (i >> 2) % 2,
      srcAddr: makeFlow({ srcAddr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }).srcAddr,
      srcPort: i & 0xffff,
      bytes: 64 + (i % 1400),
      timeFlowStartNs: BigInt(second) * NS,
      timeFlowEndNs: BigInt(second) * NS,
    });
    if (batchFlows.length === 1000) aggregate.add(recordBatchOf(batchFlows.splice(0), NAMES));
  }
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 50, undefined);
  assert.equal(aggregate.stats.records, 100_000);
  assert.ok(aggregate.flows.size <= 6 * 5_000, `flows kept ${aggregate.flows.size}`);
  assert.ok(aggregate.talkers.size <= 6 * 5_000, `talkers kept ${aggregate.talkers.size}`);
  assert.ok(snapshot.flows.length <= 100 && snapshot.talkers.length <= 100);
  assert.equal(snapshot.chart.length, 8, '4 interfaces × 2 directions');
  for (const series of snapshot.chart) assert.equal(series.bytesPerSecond.length, 60, 'the minute of data');
  assert.ok(JSON.stringify(snapshot).length < 200_000, 'one push stays small');
});

test('a bad filter is answered with a message, not a filter', () => {
  assert.match(String(parseWebFilter(new URLSearchParams('proto=bogus'))), /unknown protocol "bogus"/);
  assert.match(String(parseWebFilter(new URLSearchParams(`q=${'x'.repeat(65)}`))), /64 characters/);
});

test('largest returns the top n in order from one pass', () => {
  assert.deepEqual(
    largest([5, 1, 9, 3, 7, 9], 3, (n) => n),
    [9, 9, 7],
  );
});

test('with names of addresses (--resolve) the rows carry the names that exist, beside the addresses', () => {
  const aggregate = aggregateOf([flowAt(T0)]);
  const names = new Map([['10.0.0.2', 'web.example']]);
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 10, undefined, false, (a) => names.get(a) ?? a);
  const [flow] = snapshot.flows;
  assert.deepEqual(
    [flow.src, flow.srcName, flow.dst, flow.dstName],
    ['10.0.0.1', undefined, '10.0.0.2', 'web.example'],
  );
  assert.equal(snapshot.talkers[0].name, undefined, 'the source 10.0.0.1 has no name');
});
