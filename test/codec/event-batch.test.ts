import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventBatchBuilder } from '../../src/codec/event-batch.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { TunnelType, V2_EVENT_BYTES, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import type { Flow } from '../../src/model/flow.ts';
import { eventBatchOf } from '../helpers/events.ts';
import { makeFlow } from '../helpers/flows.ts';

/** Flows using every key and metrics field an event carries. */
const FLOWS: Flow[] = [
  makeFlow({ srcPort: 1, tcpFlags: 0x12, dscp: 46, vlanOuter: 7, vlanInner: 9 }),
  makeFlow({
    etype: 0x86dd,
    srcAddr: 'fd00::1',
    dstAddr: 'fd00::2',
    proto: 17,
    bytes: 2 ** 40,
    packets: 3,
    timeFlowStartNs: 2n ** 63n,
    timeFlowEndNs: 2n ** 64n - 1n,
    tunnel: {
      type: TunnelType.GENEVE,
      id: 0xabcdef,
      srcAddr: Buffer.alloc(16, 1),
      dstAddr: Buffer.alloc(16, 2),
    },
    crossed: [
      { ifIndex: 3, direction: 0 },
      { ifIndex: 4, direction: 1 },
    ],
  }),
];

test('an event is the start of its row: rows made from events are the flows with empty user and health sections', () => {
  const events = eventBatchOf(FLOWS);
  assert.equal(events.count, FLOWS.length);
  const rows = events.toRecordBatch();
  assert.deepEqual([...rows.flows()], [...recordBatchOf(FLOWS).flows()]);
  for (let i = 0; i < rows.count; i++) {
    const row = rows.bytes.subarray(i * V2_RECORD_BYTES, (i + 1) * V2_RECORD_BYTES);
    assert.ok(row.subarray(V2_EVENT_BYTES).every((b) => b === 0));
  }
  assert.deepEqual([...events.flows()], [...rows.flows()]);
});

test('event words are the event bytes, event i at word i * 46', () => {
  const events = eventBatchOf(FLOWS);
  const words = events.words();
  assert.equal(words.length, FLOWS.length * (V2_EVENT_BYTES / 4));
  assert.equal(words[V2_EVENT_BYTES / 4 + 12] & 0xffff, FLOWS[1].srcPort);
});

test('a recycled event buffer comes back zeroed over every event it held', () => {
  const builder = new EventBatchBuilder(4);
  for (let i = 0; i < 3; i++) {
    const at = builder.appendRow();
    assert.equal(at, i * V2_EVENT_BYTES);
    builder.bytes.fill(0xee, at, at + V2_EVENT_BYTES);
  }
  const first = builder.finish();
  assert.equal(builder.recycle(first), true);
  builder.appendRow();
  const second = builder.finish(); // the buffer the builder had moved on to
  assert.notEqual(second.bytes, first.bytes);
  const at = builder.appendRow();
  assert.equal(builder.bytes, first.bytes);
  assert.equal(at, 0);
  assert.ok(builder.bytes.every((b) => b === 0));
});

test('a dropped event is zeroed, so the next one starts clean', () => {
  const builder = new EventBatchBuilder(2);
  const at = builder.appendRow();
  builder.bytes.fill(0xee, at, at + V2_EVENT_BYTES);
  builder.dropLastRow();
  assert.equal(builder.count, 0);
  assert.equal(builder.appendRow(), at);
  assert.ok(builder.bytes.subarray(at, at + V2_EVENT_BYTES).every((b) => b === 0));
});
