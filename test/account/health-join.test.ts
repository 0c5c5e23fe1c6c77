import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthJoin } from '../../src/account/health-join.ts';
import { HealthBatch } from '../../src/codec/health-batch.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2 } from '../../src/codec/v2-layout.ts';
import type { FlowHealth } from '../../src/model/flow.ts';
import { type FlowSpec, makeFlow } from '../helpers/flows.ts';

const COLLECTED_NS = 1_700_000_001_000_000_000n;

function health(fields: Partial<FlowHealth> = {}): FlowHealth {
  return { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0, ...fields };
}

/** Health rows as the kernel keys them: no MACs, no packets; with dedup no interface or direction. */
function healthBatch(entries: Array<[FlowSpec, FlowHealth]>): HealthBatch {
  const batch = recordBatchOf(
    entries.map(([spec, h]) =>
      makeFlow({
        srcMac: '00:00:00:00:00:00',
        dstMac: '00:00:00:00:00:00',
        direction: 0,
        ifIndex: 0,
        bytes: 0,
        packets: 0,
        timeFlowStartNs: COLLECTED_NS,
        timeFlowEndNs: COLLECTED_NS,
        ...spec,
        health: h,
      }),
    ),
  );
  return new HealthBatch(batch.bytes, batch.count, batch.interfaces);
}

function healthOf(batch: RecordBatch, i: number): FlowHealth | undefined {
  return batch.flow(i).health;
}

test('a health row joins the evicted flow of its key, whatever the flow MACs, interface and direction (dedup)', () => {
  const join = new HealthJoin({ dedup: true });
  join.add(healthBatch([[{}, health({ retransPackets: 3, retransBytes: 4200 })]]));
  const evicted = recordBatchOf([makeFlow({ ifIndex: 7, direction: 1, packets: 10 })]);
  const out = join.join(evicted);
  assert.equal(out.count, 1);
  assert.deepEqual(healthOf(out, 0), health({ retransPackets: 3, retransBytes: 4200 }));
  assert.equal(out.flow(0).packets, 10);
  assert.deepEqual(join.counts, { joined: 1, ownRecords: 0, filtered: 0 });
  assert.equal(join.pending, 0);
});

test('without dedup a health row joins only the flow of its interface and direction', () => {
  const join = new HealthJoin({ dedup: false });
  join.add(healthBatch([[{ ifIndex: 7, direction: 0 }, health({ dropPackets: 1, dropBytes: 60 })]]));
  const evicted = recordBatchOf([
    makeFlow({ ifIndex: 7, direction: 1 }),
    makeFlow({ ifIndex: 8, direction: 0 }),
    makeFlow({ ifIndex: 7, direction: 0 }),
  ]);
  const out = join.join(evicted);
  assert.equal(out.count, 3);
  assert.equal(healthOf(out, 0), undefined);
  assert.equal(healthOf(out, 1), undefined);
  assert.equal(healthOf(out, 2)?.dropPackets, 1);
});

test('a health row is joined into the first flow of its key only', () => {
  const join = new HealthJoin({ dedup: true });
  join.add(healthBatch([[{}, health({ dropPackets: 2, dropBytes: 120 })]]));
  const out = join.join(recordBatchOf([makeFlow({ ifIndex: 1 }), makeFlow({ ifIndex: 2 })]));
  assert.equal(healthOf(out, 0)?.dropPackets, 2);
  assert.equal(healthOf(out, 1), undefined);
});

test('health rows no flow claims become records of their own, with zero packets and their interface listed', () => {
  const join = new HealthJoin({ dedup: false });
  join.add(
    healthBatch([[{ srcPort: 999, ifIndex: 5, direction: 1 }, health({ dropPackets: 4, dropBytes: 400 })]]),
  );
  const out = join.join(recordBatchOf([makeFlow()]));
  assert.equal(out.count, 2);
  const own = out.flow(1);
  assert.equal(own.srcPort, 999);
  assert.equal(own.packets, 0);
  assert.equal(own.timeFlowEndNs, COLLECTED_NS);
  assert.deepEqual(own.crossed, [{ ifIndex: 5, direction: 1 }]);
  assert.equal(own.health?.dropPackets, 4);
  assert.deepEqual(join.counts, { joined: 0, ownRecords: 1, filtered: 0 });
});

test('the filter decides whether an unclaimed health row is kept, and a dropped one is counted', () => {
  const join = new HealthJoin({
    dedup: true,
    keepUnclaimed: (bytes, row) => bytes.readUInt16LE(row + V2.DST_PORT) === 443,
  });
  join.add(
    healthBatch([
      [{ dstPort: 443 }, health({ dropPackets: 1, dropBytes: 60 })],
      [{ dstPort: 22 }, health({ dropPackets: 1, dropBytes: 60 })],
    ]),
  );
  const out = join.join(recordBatchOf([]));
  assert.equal(out.count, 1);
  assert.equal(out.flow(0).dstPort, 443);
  assert.deepEqual(join.counts, { joined: 0, ownRecords: 1, filtered: 1 });
});

test('health rows of one key from two drains merge before the join: counts add, RTT min and max span both, the later one is last', () => {
  const join = new HealthJoin({ dedup: true });
  const rtt = (minNs: bigint, maxNs: bigint, lastNs: bigint, samples: number) => ({
    minNs,
    maxNs,
    lastNs,
    samples,
  });
  join.add(healthBatch([[{}, health({ retransPackets: 1, retransBytes: 100, rtt: rtt(5n, 9n, 7n, 3) })]]));
  join.add(healthBatch([[{}, health({ retransPackets: 2, retransBytes: 300, rtt: rtt(6n, 12n, 6n, 2) })]]));
  assert.equal(join.pending, 1);
  const out = join.join(recordBatchOf([makeFlow()]));
  assert.deepEqual(
    healthOf(out, 0),
    health({ retransPackets: 3, retransBytes: 400, rtt: rtt(5n, 12n, 6n, 5) }),
  );
});

test('a non-IP flow never takes a health row, even one with its zeroed key', () => {
  const join = new HealthJoin({ dedup: true });
  const arp: FlowSpec = { etype: 0x0806, proto: 0, srcPort: 0, dstPort: 0, srcAddr: '::', dstAddr: '::' };
  join.add(healthBatch([[arp, health({ dropPackets: 1, dropBytes: 42 })]]));
  const out = join.join(recordBatchOf([makeFlow(arp)]));
  assert.equal(healthOf(out, 0), undefined);
  assert.equal(out.count, 2);
});

test('without waiting health rows the evicted batch is handed back untouched', () => {
  const join = new HealthJoin({ dedup: true });
  const evicted = recordBatchOf([makeFlow()]);
  assert.equal(join.join(evicted), evicted);
});

test('many health rows with distinct keys each find their flow', () => {
  const join = new HealthJoin({ dedup: true });
  const n = 500;
  join.add(
    healthBatch(
      Array.from({ length: n }, (_, i) => [{ srcPort: i + 1 }, health({ dropPackets: i + 1, dropBytes: 1 })]),
    ),
  );
  const out = join.join(recordBatchOf(Array.from({ length: n }, (_, i) => makeFlow({ srcPort: n - i }))));
  assert.equal(out.count, n);
  for (let i = 0; i < n; i++) assert.equal(healthOf(out, i)?.dropPackets, n - i);
});
