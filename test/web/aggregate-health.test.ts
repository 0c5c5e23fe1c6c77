/**
 * The web view's TCP health: the aggregate's sliding sums of drops and retransmissions, the RTT
 * and drop reason it keeps per flow and host, and the snapshot's RTT/drops columns and "who is
 * dropping" lists, with reason names from the kernel's table.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { DropReasonNames } from '../../src/model/drop-reasons.ts';
import type { Flow, FlowHealth } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { FlowAggregate } from '../../src/web/aggregate.ts';
import { buildSnapshot, DROP_TOP_N, NO_FILTER, parseWebFilter } from '../../src/web/snapshot.ts';
import { type FlowSpec, makeFlow } from '../helpers/flows.ts';

const T0 = 1_700_000_000;
const NS = 1_000_000_000n;
const NAMES = new InterfaceRegistry();
NAMES.set(1, 'eth0');
/** A kernel whose table names reasons 2 and 6 (as Linux 6.x numbers NOT_SPECIFIED and NETFILTER_DROP). */
const REASONS = new DropReasonNames(
  new Map([
    [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
    [6, 'SKB_DROP_REASON_NETFILTER_DROP'],
  ]),
);
const NO_HEALTH: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0 };

function drops(packets: number, cause: number, atSecond: number): FlowHealth {
  return {
    ...NO_HEALTH,
    dropPackets: packets,
    dropBytes: packets * 100,
    latestDrop: { timeNs: BigInt(atSecond) * NS, cause, tcpFlags: 0x10, tcpState: 1 },
  };
}

function flowAt(second: number, spec: FlowSpec): Flow {
  return makeFlow({
    ifIndex: 1,
    timeFlowStartNs: BigInt(second) * NS,
    timeFlowEndNs: BigInt(second) * NS,
    ...spec,
  });
}

function snapshotOf(flows: Flow[], aggregate = new FlowAggregate({ timeline: 'records' }), query = '') {
  aggregate.add(recordBatchOf(flows, NAMES));
  const filter = parseWebFilter(new URLSearchParams(query));
  assert.ok(typeof filter !== 'string');
  return buildSnapshot(aggregate, filter, 10, undefined, false, undefined, () => REASONS);
}

test("a flow's row carries its RTT (smoothed over handshake), retransmissions, drops and the latest reason", () => {
  const s = snapshotOf([
    flowAt(T0, {
      srcPort: 1,
      health: { ...NO_HEALTH, handshakeRttNs: 3_000_000n, retransPackets: 2, retransBytes: 2000 },
    }),
    flowAt(T0 + 5, {
      srcPort: 1,
      health: {
        ...drops(3, 2, T0 + 5),
        rtt: { minNs: 1_000_000n, maxNs: 9_000_000n, lastNs: 4_000_000n, samples: 7 },
        retransPackets: 1,
        retransBytes: 900,
      },
    }),
    flowAt(T0 + 6, { srcPort: 1, health: drops(4, 6, T0 + 6) }),
    flowAt(T0 + 6, { srcPort: 2 }),
  ]);
  const measured = s.flows.find((f) => f.srcPort === 1);
  assert.ok(measured);
  assert.equal(measured.rttNs, 4_000_000, 'the latest record with an RTT; smoothed wins over handshake');
  assert.equal(measured.rttKind, 'smoothed');
  assert.equal(measured.retrans, 3);
  assert.equal(measured.drops, 7);
  assert.equal(measured.dropBytes, 700);
  assert.equal(measured.dropReason, 'NETFILTER_DROP', 'the latest drop names the reason');
  const plain = s.flows.find((f) => f.srcPort === 2);
  assert.ok(plain);
  assert.equal(plain.rttNs, undefined);
  assert.equal(plain.drops, 0);
  assert.equal(plain.dropReason, '');
});

test('a capture flow with only a handshake time shows it as such', () => {
  const s = snapshotOf([flowAt(T0, { health: { ...NO_HEALTH, handshakeRttNs: 250_000n } })]);
  assert.equal(s.flows[0].rttNs, 250_000);
  assert.equal(s.flows[0].rttKind, 'handshake');
});

test('who is dropping lists flows and hosts with drops only, most first, with the latest reason', () => {
  const s = snapshotOf([
    flowAt(T0, { srcAddr: '10.0.0.5', srcPort: 1, health: drops(10, 6, T0) }),
    flowAt(T0, { srcAddr: '10.0.0.5', srcPort: 2, proto: 17, health: drops(5, 2, T0 + 1) }),
    flowAt(T0, { srcAddr: '10.0.0.7', srcPort: 3, health: drops(12, 6, T0) }),
    flowAt(T0, { srcAddr: '10.0.0.8', srcPort: 4, bytes: 1e9 }),
  ]);
  assert.deepEqual(
    s.dropping.flows.map((f) => [f.srcPort, f.drops, f.dropReason]),
    [
      [3, 12, 'NETFILTER_DROP'],
      [1, 10, 'NETFILTER_DROP'],
      [2, 5, 'NOT_SPECIFIED'],
    ],
  );
  assert.deepEqual(
    s.dropping.hosts.map((h) => [h.address, h.drops, h.dropBytes, h.dropReason]),
    [
      ['10.0.0.5', 15, 1500, 'NOT_SPECIFIED'],
      ['10.0.0.7', 12, 1200, 'NETFILTER_DROP'],
    ],
    "a host sums its flows over protocols, named by its latest drop's reason",
  );
  assert.equal(s.dropTopN, DROP_TOP_N);
});

test('the dropping lists follow the filter and hold at most their bound', () => {
  const flows: Flow[] = [];
  for (let i = 0; i < DROP_TOP_N + 5; i++) {
    flows.push(flowAt(T0, { srcAddr: `10.0.1.${i}`, srcPort: 1000 + i, health: drops(i + 1, 6, T0) }));
  }
  const all = snapshotOf(flows);
  assert.equal(all.dropping.flows.length, DROP_TOP_N);
  assert.equal(all.dropping.hosts.length, DROP_TOP_N);
  assert.equal(all.dropping.flows[0].drops, DROP_TOP_N + 5);
  const one = snapshotOf(flows, new FlowAggregate({ timeline: 'records' }), 'q=10.0.1.3');
  assert.deepEqual(
    one.dropping.hosts.map((h) => h.address),
    ['10.0.1.3'],
  );
});

test('a small flow that drops is among the rows the page gets, so sorting on drops shows it', () => {
  const flows: Flow[] = [];
  for (let i = 0; i < 30; i++)
    flows.push(flowAt(T0, { srcPort: 2000 + i, bytes: 1e6 + i, packets: 1000 + i }));
  flows.push(flowAt(T0, { srcPort: 9, bytes: 60, packets: 1, health: drops(1, 6, T0) }));
  const s = snapshotOf(flows);
  assert.ok(s.flows.some((f) => f.srcPort === 9));
});

test('drops and retransmissions leave the window with the records that brought them', () => {
  const aggregate = new FlowAggregate({ timeline: 'records', topSegmentSeconds: 10, topSegmentCount: 2 });
  snapshotOf(
    [flowAt(T0, { health: { ...drops(4, 6, T0), retransPackets: 2, retransBytes: 10 } })],
    aggregate,
  );
  const later = snapshotOf([flowAt(T0 + 15, { health: drops(1, 2, T0 + 15) })], aggregate);
  assert.equal(later.flows[0].drops, 5);
  assert.equal(later.flows[0].retrans, 2);
  const gone = snapshotOf([flowAt(T0 + 25, {})], aggregate);
  assert.equal(gone.flows[0].drops, 1, "the first record's drops left with its segment");
  assert.equal(gone.flows[0].retrans, 0);
});

test('pruning a full segment keeps the flows that drop, however small', () => {
  const aggregate = new FlowAggregate({ timeline: 'records', topSegmentCapacity: 8 });
  const flows: Flow[] = [flowAt(T0, { srcPort: 1, bytes: 1, packets: 1, health: drops(1, 6, T0) })];
  for (let i = 0; i < 20; i++) flows.push(flowAt(T0, { srcPort: 100 + i, bytes: 1000 + i, packets: 10 + i }));
  const s = snapshotOf(flows, aggregate);
  assert.ok(aggregate.stats.prunedKeys > 0);
  assert.deepEqual(
    s.dropping.flows.map((f) => f.srcPort),
    [1],
  );
});

test('without the kernel table a drop reason is its number, asked for only when a row has drops', () => {
  let asked = 0;
  const aggregate = new FlowAggregate({ timeline: 'records' });
  aggregate.add(recordBatchOf([flowAt(T0, {})], NAMES));
  const source = () => {
    asked++;
    return new DropReasonNames(undefined);
  };
  buildSnapshot(aggregate, NO_FILTER, 10, undefined, false, undefined, source);
  assert.equal(asked, 0);
  aggregate.add(recordBatchOf([flowAt(T0, { srcPort: 7, health: drops(1, 77, T0) })], NAMES));
  const s = buildSnapshot(aggregate, NO_FILTER, 10, undefined, false, undefined, source);
  assert.equal(s.dropping.flows[0].dropReason, '77');
  assert.ok(asked > 0);
});
