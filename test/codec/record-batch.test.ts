import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { makeFlow } from '../helpers/flows.ts';

function ports(builder: RecordBatchBuilder, ...srcPorts: number[]): void {
  for (const srcPort of srcPorts) builder.append(makeFlow({ srcPort }));
}

test('a finished batch keeps its buffer while it is not recycled', () => {
  const builder = new RecordBatchBuilder(4);
  ports(builder, 1, 2);
  const first = builder.finish();
  const held = Buffer.from(first.bytes);
  for (let i = 0; i < 3; i++) {
    ports(builder, 7, 8, 9);
    assert.notEqual(builder.finish().bytes, first.bytes);
  }
  assert.deepEqual(first.bytes, held);
  assert.deepEqual(
    Array.from(first.flows(), (f) => f.srcPort),
    [1, 2],
  );
});

test('a recycled buffer comes back zeroed as the buffer of a later batch', () => {
  const builder = new RecordBatchBuilder(4);
  ports(builder, 1, 2, 3);
  const first = builder.finish();
  assert.equal(builder.recycle(first), true);
  ports(builder, 4);
  const second = builder.finish(); // the buffer the builder had moved on to
  assert.notEqual(second.bytes, first.bytes);
  ports(builder, 5);
  const third = builder.finish();
  assert.equal(third.bytes, first.bytes);
  assert.deepEqual(
    Array.from(third.flows(), (f) => f.srcPort),
    [5],
  );
  assert.ok(third.bytes.subarray(V2_RECORD_BYTES).every((b) => b === 0));
  assert.deepEqual(
    Array.from(second.flows(), (f) => f.srcPort),
    [4],
  );
});

test('a buffer is handed to one batch at a time, however often it is recycled', () => {
  const builder = new RecordBatchBuilder(4);
  ports(builder, 1);
  const first = builder.finish();
  assert.equal(builder.recycle(first), true);
  assert.equal(builder.recycle(first), false, 'recycled twice');
  const live = [builder.finish(), builder.finish(), builder.finish()];
  assert.equal(new Set(live.map((b) => b.bytes)).size, live.length);
  // The batch now lent the recycled buffer is a new loan: recycling the old batch again gives nothing.
  assert.ok(live.some((b) => b.bytes === first.bytes));
  assert.equal(builder.recycle(first), false);
});

test('a batch another builder made is not taken', () => {
  const builder = new RecordBatchBuilder(4);
  const other = new RecordBatchBuilder(4);
  ports(other, 1);
  const foreign = other.finish();
  assert.equal(builder.recycle(foreign), false);
  ports(builder, 2);
  assert.notEqual(builder.finish().bytes, foreign.bytes);
});
