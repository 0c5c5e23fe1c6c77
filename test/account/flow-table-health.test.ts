/**
 * Records that arrive with a health section (rows with their own; a capture's events with the
 * section rows its TCP analysis wrote for the packets it measured): the flow table keeps it
 * beside the flow, merges it by the one merge rule, and hands it out on eviction without leaking
 * it into the next flow cached in the same place. Every test runs on rows and on events.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlowTable } from '../../src/account/flow-table.ts';
import { V2_EVENT_WORDS } from '../../src/codec/event-batch.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { rowWords } from '../../src/codec/row-words.ts';
import { V2_ROW_WORDS } from '../../src/codec/v2-layout.ts';
import type { FlowHealth } from '../../src/model/flow.ts';
import { eventBatchOf } from '../helpers/events.ts';
import { makeFlow } from '../helpers/flows.ts';

const NO_HEALTH: FlowHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0 };
const T0 = 1_700_000_000_000_000_000n;

for (const form of ['rows', 'events'] as const) {
  function addAll(table: FlowTable, specs: Parameters<typeof makeFlow>[0][]): void {
    const flows = specs.map((spec) => makeFlow(spec));
    if (form === 'rows') {
      const batch = recordBatchOf(flows);
      assert.equal(table.add(rowWords(batch), V2_ROW_WORDS, batch.count), 'done');
    } else {
      const batch = eventBatchOf(flows);
      assert.equal(
        table.add(batch.words(), V2_EVENT_WORDS, batch.count, 0, undefined, batch.sections),
        'done',
      );
    }
  }

  test(`a flow's ${form} with health are merged: retransmissions add up, the first handshake stays`, () => {
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

  test(`an evicted health section does not reappear on the next flow cached in its place (${form})`, () => {
    const table = new FlowTable(4);
    addAll(table, [{ health: { ...NO_HEALTH, retransPackets: 3, retransBytes: 30 } }]);
    assert.equal(table.evictAll().flow(0).health?.retransPackets, 3);
    addAll(table, [{ srcPort: 7 }]);
    assert.equal(table.evictAll().flow(0).health, undefined);
  });

  test(`drops arriving in ${form} are kept with their latest cause`, () => {
    const table = new FlowTable(4);
    const drop = (timeNs: bigint, cause: number): FlowHealth => ({
      ...NO_HEALTH,
      dropPackets: 1,
      dropBytes: 60,
      latestDrop: { timeNs, cause, tcpFlags: 2, tcpState: 1 },
    });
    addAll(table, [
      { health: drop(T0 + 5n, 6) },
      { health: drop(T0 + 9n, 77) },
      { health: drop(T0 + 1n, 2) },
    ]);
    const health = table.evictAll().flow(0).health;
    assert.equal(health?.dropPackets, 3);
    assert.equal(health?.latestDrop?.cause, 77);
  });
}

test("an event's section row joins its flow when adding resumes after the table was full", () => {
  const table = new FlowTable(1);
  const batch = eventBatchOf([
    makeFlow({ srcPort: 1 }),
    makeFlow({ srcPort: 2 }),
    makeFlow({ srcPort: 2, health: { ...NO_HEALTH, retransPackets: 1, retransBytes: 10 } }),
  ]);
  const words = batch.words();
  assert.equal(table.add(words, V2_EVENT_WORDS, batch.count, 0, undefined, batch.sections), 'full');
  assert.equal(table.stoppedAt, 1);
  assert.equal(table.evictAll().flow(0).health, undefined);
  assert.equal(table.add(words, V2_EVENT_WORDS, batch.count, 1, undefined, batch.sections), 'done');
  const evicted = table.evictAll();
  assert.equal(evicted.flow(0).srcPort, 2);
  assert.equal(evicted.flow(0).health?.retransBytes, 10);
});

test('an eviction taken in parts carries the health of every flow, and a cleared table forgets it', () => {
  const table = new FlowTable(16);
  const withRetrans = (srcPort: number) =>
    makeFlow({ srcPort, health: { ...NO_HEALTH, retransPackets: srcPort, retransBytes: srcPort * 10 } });
  const batch = recordBatchOf([1, 2, 3, 4, 5].map(withRetrans));
  table.add(rowWords(batch), V2_ROW_WORDS, batch.count);
  const parts = [table.rowsOf(0, 2), table.rowsOf(2, 4), table.rowsOf(4, 5)];
  assert.throws(() => table.rowsOf(4, 6), /not within the 5 cached flows/);
  const whole = table.evictAll();
  assert.deepEqual(
    parts.flatMap((part) => Array.from(part.flows(), (f) => f.health)),
    Array.from(whole.flows(), (f) => f.health),
  );
  assert.deepEqual(
    Array.from(whole.flows(), (f) => f.health?.retransPackets),
    [1, 2, 3, 4, 5],
  );
  const again = recordBatchOf([makeFlow({ srcPort: 1 })]);
  table.add(rowWords(again), V2_ROW_WORDS, 1);
  assert.equal(table.evictAll().flow(0).health, undefined, 'no health left over from the cleared flow');
});
