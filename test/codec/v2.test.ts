import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatchBuilder, recordBatchOf } from '../../src/codec/record-batch.ts';
import { RecordStreamDecoder } from '../../src/codec/record-stream.ts';
import { decodeV2, decodeV2Batch, decodeV2Records, encodeV2 } from '../../src/codec/v2.ts';
import { V2, V2_MAX_CROSSED, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { MalformedRecordError, TruncatedRecordError } from '../../src/errors.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { makeFlow } from '../helpers/flows.ts';

const sample = [
  makeFlow(),
  makeFlow({
    etype: 0x86dd,
    srcAddr: '2001:db8::1',
    dstAddr: 'fe80::2',
    proto: 58,
    icmpType: 128,
    srcPort: 0,
    dstPort: 0,
    direction: 0,
    bytes: 2 ** 50,
    packets: 2 ** 33,
    timeFlowStartNs: 1n,
    timeFlowEndNs: 2n ** 63n,
    tcpFlags: 0x1ff,
    dscp: 63,
    ifIndex: 2 ** 32 - 1,
  }),
];

/** A flow with byte fields as plain arrays, so Buffer views and Uint8Arrays compare equal. */
function plain(flow: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(flow).map(([k, v]) => [k, v instanceof Uint8Array ? [...v] : v]));
}

test('encode then decode returns every field of IPv4 and IPv6 flows', () => {
  const batch = decodeV2Batch(encodeV2(sample));
  assert.equal(batch.count, 2);
  assert.deepEqual(plain(batch.flow(0)), plain(sample[0]));
  const f = batch.flow(1);
  assert.deepEqual(
    [
      f.etype,
      f.proto,
      f.icmpType,
      f.bytes,
      f.packets,
      f.timeFlowStartNs,
      f.timeFlowEndNs,
      f.tcpFlags,
      f.dscp,
      f.ifIndex,
    ],
    [0x86dd, 58, 128, 2 ** 50, 2 ** 33, 1n, 2n ** 63n, 0x1ff, 63, 2 ** 32 - 1],
  );
  assert.deepEqual([...f.srcAddr], [...sample[1].srcAddr]);
});

test('decoding wraps the buffer without copying it', () => {
  const buf = encodeV2(sample);
  assert.equal(decodeV2Batch(buf).bytes, buf);
});

test('interface names resolve through the batch registry', () => {
  const names = new InterfaceRegistry();
  names.set(7, 'veth7');
  const batch = recordBatchOf([makeFlow({ ifIndex: 7 })], names);
  assert.equal(batch.flow(0).interface, 'veth7');
});

test('a truncated buffer names the offset of the partial record', () => {
  const buf = encodeV2(sample).subarray(0, V2_RECORD_BYTES + 10);
  assert.throws(
    () => decodeV2Batch(buf),
    (e: unknown) => e instanceof TruncatedRecordError && e.offset === V2_RECORD_BYTES,
  );
  assert.throws(() => decodeV2(buf, V2_RECORD_BYTES), TruncatedRecordError);
});

for (const [field, offset, value] of [
  ['direction', V2.DIRECTION, 2],
  ['key_pad', V2.KEY_PAD + 1, 1],
  ['metrics_pad0', V2.METRICS_PAD0, 1],
  ['dedup_src_mac', V2.DEDUP_SRC_MAC + 2, 1],
  ['metrics_pad', V2.METRICS_PAD, 9],
  ['user_pad', V2.USER_PAD + 3, 4],
  ['crossed_count', V2.CROSSED_COUNT, 7],
  ['packets', V2.PACKETS, 0],
  ['src_addr', V2.SRC_ADDR + 11, 0],
] as const) {
  test(`a record with a bad ${field} is rejected with its offset`, () => {
    const buf = encodeV2(sample);
    buf[V2_RECORD_BYTES * 0 + offset] = value;
    assert.throws(
      () => decodeV2Batch(buf, { baseOffset: 500 }),
      (e: unknown) =>
        e instanceof MalformedRecordError && e.field === field && e.offset >= 500 && e.offset <= 500 + offset,
    );
  });
}

test('a last-seen time before the first-seen time is rejected', () => {
  const buf = encodeV2([makeFlow({ timeFlowStartNs: 10n, timeFlowEndNs: 5n })]);
  assert.throws(
    () => decodeV2Batch(buf),
    (e: unknown) => e instanceof MalformedRecordError && e.field === 'last_seen_ns',
  );
});

test('the stream decoder joins records split across chunks and reports a dangling tail', () => {
  const buf = encodeV2([...sample, ...sample, ...sample]);
  const decoder = new RecordStreamDecoder({
    name: 'v2',
    recordBytes: V2_RECORD_BYTES,
    decodeRecords: (b, base) => decodeV2Records(b, { baseOffset: base }),
  });
  let rows = 0;
  let at = 0;
  for (const size of [50, 100, 70, V2_RECORD_BYTES * 6]) {
    const batch = decoder.push(buf.subarray(at, Math.min(at + size, buf.length)));
    at = Math.min(at + size, buf.length);
    rows += batch?.count ?? 0;
  }
  assert.equal(rows, 6);
  decoder.end();
  decoder.push(Buffer.alloc(10));
  assert.throws(
    () => decoder.end(),
    (e: unknown) => e instanceof TruncatedRecordError && e.offset === buf.length,
  );
});

test('the rows before a malformed one are returned, uncopied, with its error', () => {
  const buf = encodeV2(Array.from({ length: 6 }, (_, i) => makeFlow({ srcPort: i })));
  buf[4 * V2_RECORD_BYTES + V2.DIRECTION] = 9;
  const { batch, error } = decodeV2Records(buf, { baseOffset: 50 });
  assert.deepEqual(
    Array.from(batch.flows(), (f) => f.srcPort),
    [0, 1, 2, 3],
  );
  assert.equal(batch.bytes.buffer, buf.buffer);
  assert.ok(error instanceof MalformedRecordError);
  assert.equal(error.offset, 50 + 4 * V2_RECORD_BYTES + V2.DIRECTION);
});

test('the stream decoder hands on the records before a malformed one, then throws its error', () => {
  const buf = encodeV2(Array.from({ length: 5 }, (_, i) => makeFlow({ srcPort: i })));
  buf[3 * V2_RECORD_BYTES + V2.DIRECTION] = 4;
  const decoder = new RecordStreamDecoder({
    name: 'v2',
    recordBytes: V2_RECORD_BYTES,
    decodeRecords: (b, base) => decodeV2Records(b, { baseOffset: base }),
  });
  const first = decoder.push(buf.subarray(0, 2 * V2_RECORD_BYTES + 10));
  const second = decoder.push(buf.subarray(2 * V2_RECORD_BYTES + 10));
  assert.deepEqual([first?.count, second?.count], [2, 1]);
  const isBadDirection = (e: unknown) =>
    e instanceof MalformedRecordError && e.offset === 3 * V2_RECORD_BYTES + V2.DIRECTION;
  assert.ok(isBadDirection(decoder.failure));
  assert.throws(() => decoder.end(), isBadDirection);
  assert.throws(() => decoder.push(Buffer.alloc(V2_RECORD_BYTES)), isBadDirection);
});

test('the builder grows, and drops a reserved row cleanly', () => {
  const builder = new RecordBatchBuilder(1);
  for (let i = 0; i < 5; i++) builder.append(makeFlow({ srcPort: i }));
  builder.appendRow();
  builder.dropLastRow();
  const batch = builder.finish();
  assert.equal(batch.count, 5);
  assert.deepEqual(
    Array.from(batch.flows(), (f) => f.srcPort),
    [0, 1, 2, 3, 4],
  );
  assert.equal(builder.count, 0);
});

test('a row counting more interfaces crossed than a record holds gives the ones it holds', () => {
  const batch = recordBatchOf([makeFlow({ crossed: [{ ifIndex: 7, direction: 1 }] })]);
  batch.bytes[V2.CROSSED_COUNT] = 200;
  assert.equal(batch.flow(0).crossed?.length, V2_MAX_CROSSED);
  assert.deepEqual(batch.flow(0).crossed?.[0], { ifIndex: 7, direction: 1 });
});
