/** The web view and issue 13: interfaces crossed and tunnel columns, bidirectional records in the chart and tables. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { parseIp } from '../../src/model/ip.ts';
import { FlowAggregate } from '../../src/web/aggregate.ts';
import { buildSnapshot, NO_FILTER } from '../../src/web/snapshot.ts';
import { makeFlow } from '../helpers/flows.ts';

const T0 = 1_700_000_000;
const NS = 1_000_000_000n;

const NAMES = new InterfaceRegistry();
NAMES.set(1, 'veth1');
NAMES.set(2, 'br0');

test('a flow row shows the interfaces it crossed and its tunnel', () => {
  const aggregate = new FlowAggregate({ timeline: 'records' });
  aggregate.add(
    recordBatchOf(
      [
        makeFlow({
          ifIndex: 1,
          timeFlowStartNs: BigInt(T0) * NS,
          timeFlowEndNs: BigInt(T0) * NS,
          crossed: [
            { ifIndex: 1, direction: 0 },
            { ifIndex: 2, direction: 1 },
          ],
          tunnel: { type: 1, id: 42, srcAddr: parseIp('192.0.2.1')!, dstAddr: parseIp('192.0.2.2')! },
        }),
        makeFlow({
          ifIndex: 1,
          srcPort: 9,
          timeFlowStartNs: BigInt(T0) * NS,
          timeFlowEndNs: BigInt(T0) * NS,
        }),
      ],
      NAMES,
    ),
  );
  const rows = buildSnapshot(aggregate, NO_FILTER, 10, undefined).flows;
  assert.deepEqual(rows.map((r) => [r.srcPort, r.crossed, r.tunnel]).sort(), [
    [1234, 'veth1 in,br0 out', 'VXLAN 42 192.0.2.1>192.0.2.2'],
    [9, '', ''],
  ]);
});

test('a bidirectional record counts its reverse traffic in the other direction of the chart and in its row', () => {
  const aggregate = new FlowAggregate({ timeline: 'records' });
  aggregate.add(
    recordBatchOf(
      [
        makeFlow({
          ifIndex: 1,
          direction: 1,
          bytes: 300,
          packets: 3,
          timeFlowStartNs: BigInt(T0) * NS,
          timeFlowEndNs: BigInt(T0) * NS,
          reverse: {
            bytes: 5000,
            packets: 4,
            timeFlowStartNs: BigInt(T0) * NS,
            timeFlowEndNs: BigInt(T0) * NS,
            tcpFlags: 0,
            dscp: 0,
          },
        }),
      ],
      NAMES,
    ),
  );
  const snapshot = buildSnapshot(aggregate, NO_FILTER, 10, undefined);
  const total = (name: string) =>
    snapshot.chart
      .find((s) => `${s.interface} ${s.direction}` === name)
      ?.bytesPerSecond.reduce((a, b) => a + b, 0);
  assert.equal(total('veth1 EGRESS'), 300);
  assert.equal(total('veth1 INGRESS'), 5000);
  assert.deepEqual(
    snapshot.flows.map((r) => [r.bytes, r.packets]),
    [[5300, 7]],
  );
});
