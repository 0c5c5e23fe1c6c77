import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBatchBuilder } from '../../src/codec/event-batch.ts';
import { V2, V2_EVENT_BYTES, V2_KEY_BYTES, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';

/** A builder holding `count` events, event `i` with source port 1000 + i. */
function builderOf(count: number): EventBatchBuilder {
  const builder = new EventBatchBuilder(2);
  for (let i = 0; i < count; i++) {
    const at = builder.appendRow();
    builder.bytes.writeUInt16LE(1000 + i, at + V2.SRC_PORT);
  }
  return builder;
}

test('a batch whose events carry no section has no section rows', () => {
  const batch = builderOf(3).finish();
  assert.equal(batch.sections, undefined);
});

test("a section row holds its event's key and is made once per event", () => {
  const builder = builderOf(3);
  const s = builder.sectionRowOf(1 * V2_EVENT_BYTES);
  assert.equal(builder.sectionRowOf(1 * V2_EVENT_BYTES), s);
  const key = builder.sections.bytes.subarray(s, s + V2_KEY_BYTES);
  assert.deepEqual(key, builder.bytes.subarray(V2_EVENT_BYTES, V2_EVENT_BYTES + V2_KEY_BYTES));
  const batch = builder.finish();
  assert.deepEqual([...(batch.sections?.events ?? [])], [1]);
  assert.equal(builder.sections.count, 0, 'the builder starts over');
});

test('section rows stay in event order when an earlier event gets one after a later event', () => {
  const builder = builderOf(40);
  for (const event of [5, 30, 31, 7, 2, 39, 30]) {
    const s = builder.sectionRowOf(event * V2_EVENT_BYTES);
    builder.sections.bytes[s + V2.RETRANS_PACKETS] += 1;
  }
  const batch = builder.finish();
  const sections = batch.sections;
  assert.ok(sections !== undefined);
  assert.deepEqual([...sections.events], [2, 5, 7, 30, 31, 39]);
  const rows = batch.toRecordBatch();
  const retransmitted = [...rows.flows()].map((f) => f.health?.retransPackets ?? 0);
  assert.deepEqual(
    retransmitted.flatMap((n, i) => (n > 0 ? [[i, n]] : [])),
    [
      [2, 1],
      [5, 1],
      [7, 1],
      [30, 2],
      [31, 1],
      [39, 1],
    ],
  );
  for (const [k, event] of sections.events.entries()) {
    assert.equal(rows.flow(event).srcPort, 1000 + event);
    assert.equal(sections.words[(k * V2_RECORD_BYTES + V2.SRC_PORT) / 4] & 0xffff, 1000 + event);
  }
  assert.equal(sections.firstAtOrAfter(0), 0);
  assert.equal(sections.firstAtOrAfter(6), 2);
  assert.equal(sections.firstAtOrAfter(30), 3);
  assert.equal(sections.firstAtOrAfter(40), 6);
});

test('a dropped event takes its section row with it, zeroed', () => {
  const builder = builderOf(2);
  const s = builder.sectionRowOf(1 * V2_EVENT_BYTES);
  builder.sections.bytes[s + V2.RETRANS_PACKETS] = 1;
  builder.dropLastRow();
  assert.equal(builder.sections.count, 0);
  const at = builder.appendRow();
  const again = builder.sectionRowOf(at);
  assert.equal(builder.sections.bytes[again + V2.RETRANS_PACKETS], 0);
});
