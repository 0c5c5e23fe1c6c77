import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeV1, decodeV1Batch, decodeV1Records, encodeV1, V1_RECORD_BYTES } from '../../src/codec/v1.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { MalformedRecordError, TruncatedRecordError } from '../../src/errors.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

const READ_NS = 1_650_000_000_123_456_789n;

/** The reference's record for 10.0.2.15:22 → 10.0.2.2:51819 TCP, 56320 bytes, written byte by byte. */
function referenceRecord(): Buffer {
  const b = Buffer.alloc(36);
  b.writeUInt16LE(0x0800, 0);
  b[2] = 1;
  Buffer.from([0x08, 0x00, 0x27, 0x23, 0xe8, 0x8a]).copy(b, 3);
  Buffer.from([0x52, 0x54, 0x00, 0x12, 0x35, 0x02]).copy(b, 9);
  b.writeUInt32LE(0x0a00020f, 15);
  b.writeUInt32LE(0x0a000202, 19);
  b.writeUInt16LE(22, 23);
  b.writeUInt16LE(51819, 25);
  b[27] = 6;
  b.writeBigUInt64LE(56320n, 28);
  return b;
}

test('a reference record decodes into the reference flow fields', () => {
  const flow = decodeV1(referenceRecord(), 0, { readTimeNs: READ_NS });
  const json = JSON.parse(flowToJson(flow));
  assert.deepEqual(json.DataLink, { SrcMac: '08:00:27:23:e8:8a', DstMac: '52:54:00:12:35:02' });
  assert.deepEqual(json.Network, { SrcAddr: '10.0.2.15', DstAddr: '10.0.2.2' });
  assert.deepEqual(json.Transport, { SrcPort: 22, DstPort: 51819, Proto: 'TCP' });
  assert.equal(json.Direction, 'EGRESS');
  assert.equal(json.Bytes, 56320);
  assert.equal(json.Packets, 1);
  assert.equal(flow.timeFlowStartNs, READ_NS);
  assert.equal(flow.timeFlowEndNs, READ_NS);
});

test('encodeV1 writes exactly the reference bytes', () => {
  const flow = decodeV1(referenceRecord(), 0, { readTimeNs: READ_NS });
  assert.deepEqual(encodeV1(flow), referenceRecord());
});

test('a batch decodes every record of one buffer in order', () => {
  const flows = Array.from({ length: 50 }, (_, i) => makeFlow({ srcPort: 1000 + i, bytes: 2 ** 40 + i }));
  const buf = Buffer.alloc(flows.length * V1_RECORD_BYTES);
  for (const [i, f] of flows.entries()) encodeV1(f, buf, i * V1_RECORD_BYTES);
  const batch = decodeV1Batch(buf, { readTimeNs: READ_NS, ifIndex: 3 });
  assert.equal(batch.count, 50);
  for (let i = 0; i < 50; i++) {
    const f = batch.flow(i);
    assert.equal(f.srcPort, 1000 + i);
    assert.equal(f.bytes, 2 ** 40 + i);
    assert.equal(f.ifIndex, 3);
  }
});

test('a short buffer is a truncation error naming where the partial record starts', () => {
  const buf = Buffer.concat([referenceRecord(), referenceRecord().subarray(0, 20)]);
  assert.throws(
    () => decodeV1Batch(buf, { readTimeNs: READ_NS, baseOffset: 1000 }),
    (err: unknown) =>
      err instanceof TruncatedRecordError &&
      err.offset === 1036 &&
      err.availableBytes === 20 &&
      /offset 1036/.test(err.message),
  );
  assert.throws(() => decodeV1(buf, 36, { readTimeNs: READ_NS }), TruncatedRecordError);
});

test('a direction other than ingress or egress is a malformed record, not a wrong flow', () => {
  const buf = Buffer.concat([referenceRecord(), referenceRecord()]);
  buf[36 + 2] = 7;
  assert.throws(
    () => decodeV1Batch(buf, { readTimeNs: READ_NS }),
    (err: unknown) => err instanceof MalformedRecordError && err.offset === 38 && err.field === 'direction',
  );
});

test('the records before a malformed one are decoded and returned with its error', () => {
  const flows = Array.from({ length: 20 }, (_, i) => makeFlow({ srcPort: 1000 + i }));
  const buf = Buffer.alloc(flows.length * V1_RECORD_BYTES);
  for (const [i, f] of flows.entries()) encodeV1(f, buf, i * V1_RECORD_BYTES);
  buf[10 * V1_RECORD_BYTES + 2] = 7;
  const { batch, error } = decodeV1Records(buf, { readTimeNs: READ_NS, baseOffset: 100 });
  assert.deepEqual(
    Array.from(batch.flows(), (f) => f.srcPort),
    Array.from({ length: 10 }, (_, i) => 1000 + i),
  );
  assert.equal(batch.bytes.length, 10 * V2_RECORD_BYTES, 'no undecoded row is handed on');
  assert.ok(error instanceof MalformedRecordError);
  assert.equal(error.offset, 100 + 10 * V1_RECORD_BYTES + 2);
});
