import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { splitOffset } from '../../src/ebpf/clock.ts';
import { FlowObject } from '../../src/ebpf/object.ts';
import { RingBufferReader } from '../../src/ebpf/ringbuf.ts';
import { ClosedError } from '../../src/errors.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';

const rootOnly = skipUnlessKernel('load the datapath');

function openReader(t: { after: (fn: () => void) => void }): RingBufferReader {
  const obj = FlowObject.load({ sampling: 1, maxFlows: 16, ringBufferBytes: 1 << 16, mapKind: 'percpu' });
  t.after(() => obj.close());
  const reader = new RingBufferReader(obj.ringBufferFd, obj.options.ringBufferBytes);
  t.after(() => reader.close());
  return reader;
}

test('a closed ring buffer reader throws a ClosedError instead of reading unmapped memory', {
  skip: rootOnly,
}, (t) => {
  const reader = openReader(t);
  assert.equal(reader.pendingBytes(), 0);
  reader.close();
  assert.equal(reader.closed, true);
  assert.throws(
    () => reader.pendingBytes(),
    (err: unknown) => {
      assert.ok(err instanceof ClosedError);
      assert.equal(err.code, 'FLOWTAP_CLOSED');
      assert.match(err.message, /pendingBytes on a closed ring buffer reader/);
      return true;
    },
  );
  assert.throws(() => reader.readInto(new RecordBatchBuilder(4), splitOffset(0n)), ClosedError);
});

test('closing a ring buffer reader twice is harmless and its counters stay readable', {
  skip: rootOnly,
}, (t) => {
  const reader = openReader(t);
  reader.close();
  reader.close();
  assert.equal(reader.malformedRecords, 0);
});
