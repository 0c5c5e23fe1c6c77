/**
 * Rows that arrive with a health section (a capture's TCP analysis writes one into the packets it
 * measured): the flow table keeps it beside the flow, merges it by the one merge rule, and hands
 * it out on eviction without leaking it into the next flow cached in the same place.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlowTable } from '../../src/account/flow-table.ts';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { rowWords } from '../../src/codec/row-words.ts';
import type { FlowHealth } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

const NO_HEALTH: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0 };
const T0 = 1_700_000_000_000_000_000n;

function addAll(table: FlowTable, flows: Parameters<typeof makeFlow>[0][]): void {
  const builder = new RecordBatchBuilder(flows.length);
  for (const spec of flows) builder.append(makeFlow(spec));
  const batch = builder.finish();
  assert.equal(table.add(rowWords(batch), batch.count), 'done');
}

test("a flow's rows with health are merged: retransmissions add up, the first handshake stays", () => {
  const table = new FlowTable(16);
  addAll(table, [
    { timeFlowStartNs: T0, timeFlowEndNs: T0, health: { ...NO_HEALTH, handshakeRttNs: 4_000_000n } },
    { timeFlowStartNs: T0 + 1n, timeFlowEndNs: T0 + 1n },
    {
      timeFlowStartNs: T0 + 2n,
      timeFlowEndNs: T0 + 2n,
      health: { ...NO_HEALTH, retransPackets: 1, retransBytes: 100 },
    },
    { srcPort: 9, timeFlowStartNs: T0, timeFlowEndNs: T0 },
    {
      timeFlowStartNs: T0 + 3n,
      timeFlowEndNs: T0 + 3n,
      health: { ...NO_HEALTH, retransPackets: 1, retransBytes: 50 },
    },
  ]);
  const batch = table.evictAll();
  assert.equal(batch.count, 2);
  assert.deepEqual(batch.flow(0).health, {
    ...NO_HEALTH,
    handshakeRttNs: 4_000_000n,
    retransPackets: 2,
    retransBytes: 150,
  });
  assert.equal(batch.flow(0).packets, 4);
  assert.equal(batch.flow(1).health, undefined, 'a flow without health rows has none');
});

test('an evicted health section does not reappear on the next flow cached in its place', () => {
  const table = new FlowTable(4);
  addAll(table, [{ health: { ...NO_HEALTH, retransPackets: 3, retransBytes: 30 } }]);
  assert.equal(table.evictAll().flow(0).health?.retransPackets, 3);
  addAll(table, [{ srcPort: 7 }]);
  assert.equal(table.evictAll().flow(0).health, undefined);
});

test('drops arriving in a row are kept with their latest cause', () => {
  const table = new FlowTable(4);
  const drop = (timeNs: bigint, cause: number): FlowHealth => ({
    ...NO_HEALTH,
    dropPackets: 1,
    dropBytes: 60,
    latestDrop: { timeNs, cause, tcpFlags: 2, tcpState: 1 },
  });
  addAll(table, [{ health: drop(T0 + 5n, 6) }, { health: drop(T0 + 9n, 77) }, { health: drop(T0 + 1n, 2) }]);
  const health = table.evictAll().flow(0).health;
  assert.equal(health?.dropPackets, 3);
  assert.equal(health?.latestDrop?.cause, 77);
});
