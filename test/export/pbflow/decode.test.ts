/**
 * The hand-written pbflow decoder against the generic path (protobuf-es + flowFromPbRecord): the
 * same flows from random batches, from messages protobuf-es writes in its own way, and the same
 * refusals of what the flow model cannot hold.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { TimestampSchema } from '@bufbuild/protobuf/wkt';
import type { RecordBatch } from '../../../src/codec/record-batch.ts';
import { MalformedMessageError } from '../../../src/errors.ts';
import { decodePbRecords, PbflowBatchDecoder } from '../../../src/export/pbflow/decode.ts';
import { encodePbRecordList, encodePbRecords } from '../../../src/export/pbflow/encode.ts';
import { flowsFromPbRecords } from '../../../src/export/pbflow/from-pb.ts';
import {
  DataLinkSchema,
  IPSchema,
  NetworkSchema,
  type Record,
  RecordSchema,
  RecordsSchema,
  TransportSchema,
} from '../../../src/export/pbflow/gen/flow_pb.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { randomBatch } from './random-rows.ts';

/** The flows of `batch` as the generic path gives them: ifIndex is 0 there (pbflow has none). */
function flowsOf(batch: RecordBatch): Flow[] {
  return [...batch.flows()].map((flow) => ({ ...flow, ifIndex: 0 }));
}

function plain(flow: Flow): object {
  return {
    ...flow,
    srcMac: [...flow.srcMac],
    dstMac: [...flow.dstMac],
    srcAddr: [...flow.srcAddr],
    dstAddr: [...flow.dstAddr],
    ...(flow.agentIp && { agentIp: [...flow.agentIp] }),
    ...(flow.tunnel && {
      tunnel: { ...flow.tunnel, srcAddr: [...flow.tunnel.srcAddr], dstAddr: [...flow.tunnel.dstAddr] },
    }),
  };
}

function assertSameFlows(actual: Flow[], expected: Flow[]): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++)
    assert.deepEqual(plain(actual[i]), plain(expected[i]), `flow ${i}`);
}

test('decodePbRecords gives the flows the generic decoder gives for random rows', () => {
  const batch = randomBatch(11, 5_000);
  const message = encodePbRecords(batch, 0, batch.count);
  assertSameFlows(flowsOf(decodePbRecords(message)), flowsFromPbRecords(message));
});

test('appendRecord reads Kafka values one by one into one batch', () => {
  const batch = randomBatch(12, 700);
  const decoder = new PbflowBatchDecoder(16);
  for (const value of encodePbRecordList(batch, 0, batch.count)) decoder.appendRecord(value);
  assert.equal(decoder.count, batch.count);
  assertSameFlows(flowsOf(decoder.finish()), flowsFromPbRecords(encodePbRecords(batch, 0, batch.count)));
  assert.equal(decoder.count, 0);
});

test('a batch numbers its interface names and resolves them back, past the ones compared byte by byte', () => {
  const records = Array.from({ length: 60 }, (_, i) => create(RecordSchema, { interface: `if${i % 40}` }));
  const batch = decodePbRecords(toBinary(RecordsSchema, create(RecordsSchema, { entries: records })));
  for (let i = 0; i < records.length; i++) {
    assert.equal(batch.flow(i).interface, `if${i % 40}`);
    assert.equal(batch.flow(i).ifIndex, (i % 40) + 1);
  }
});

test('fields in another order, repeated, merged or unknown are read as protobuf-es reads them', () => {
  const full: Record = create(RecordSchema, {
    ethProtocol: 0x86dd,
    direction: 1,
    timeFlowStart: create(TimestampSchema, { seconds: 1_700_000_000n, nanos: 999_999_999 }),
    timeFlowEnd: create(TimestampSchema, { seconds: 18_446_744_073n, nanos: 709_551_615 }),
    dataLink: create(DataLinkSchema, { srcMac: 0xffff_ffff_ffffn, dstMac: 1n }),
    network: create(NetworkSchema, {
      srcAddr: create(IPSchema, { ipFamily: { case: 'ipv6', value: new Uint8Array(16).fill(0xab) } }),
      dstAddr: create(IPSchema, { ipFamily: { case: 'ipv4', value: 0xc0a80001 } }),
    }),
    transport: create(TransportSchema, { srcPort: 65_535, dstPort: 1, protocol: 255 }),
    bytes: 0xffff_ffff_ffff_ffffn,
    packets: 2n ** 53n + 1n,
    interface: 'eth0',
  });
  const body = Buffer.from(toBinary(RecordSchema, full));
  // Unknown fields of every wire type, then a second data_link setting only dst_mac (a merge)
  // and a second eth_protocol (the last wins).
  const extra = Buffer.from([
    0xf8,
    0x01,
    0x96,
    0x01, // field 31 varint
    0xf9,
    0x01,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8, // field 31 fixed64
    0xfa,
    0x01,
    2,
    0x61,
    0x62, // field 31 bytes
    0xfd,
    0x01,
    1,
    2,
    3,
    4, // field 31 fixed32
    0x2a,
    0x02,
    0x10,
    0x07, // data_link { dst_mac: 7 }
    0x08,
    0x80,
    0x10, // eth_protocol 2048
  ]);
  const record = Buffer.concat([body, extra]);
  const message = Buffer.concat([
    Buffer.from([0x0a, (record.length & 0x7f) | 0x80, record.length >> 7]),
    record,
  ]);
  const expected = flowsFromPbRecords(message);
  assert.equal(expected[0].etype, 0x0800);
  assert.equal(expected[0].dstMac.at(-1), 7);
  assert.equal(expected[0].srcMac[0], 0xff);
  assertSameFlows(flowsOf(decodePbRecords(message)), expected);
});

/** A Records message of one Record whose body is `record`. */
function oneEntry(record: number[]): Buffer {
  return Buffer.from([0x0a, record.length, ...record]);
}

const REFUSED: [string, number[]][] = [
  ['eth_protocol above 65535', [0x08, 0x80, 0x80, 0x04]],
  ['a port above 65535', [0x3a, 0x04, 0x08, 0x80, 0x80, 0x04]],
  ['a protocol above 255', [0x3a, 0x03, 0x18, 0x80, 0x02]],
  ['a MAC wider than 48 bits', [0x2a, 0x09, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ['an IPv6 member of 4 bytes', [0x32, 0x08, 0x0a, 0x06, 0x12, 0x04, 1, 2, 3, 4]],
  ['nanos of a second or more', [0x1a, 0x06, 0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03]],
];

for (const [what, record] of REFUSED) {
  test(`a record with ${what} is refused by both decoders`, () => {
    const message = oneEntry(record);
    assert.throws(() => flowsFromPbRecords(message), MalformedMessageError);
    assert.throws(() => decodePbRecords(message), MalformedMessageError);
  });
}

test('a truncated message is refused and leaves the batch as it was', () => {
  const batch = randomBatch(13, 3);
  const good = encodePbRecords(batch, 0, 3);
  const decoder = new PbflowBatchDecoder();
  decoder.appendRecords(good);
  for (let cut = 1; cut < good.length; cut++) {
    const truncated = good.subarray(0, cut);
    let decoded = 0;
    try {
      decoded = decoder.appendRecords(truncated);
    } catch (err) {
      assert.ok(err instanceof MalformedMessageError, String(err));
    }
    // A cut between entries is a shorter valid message; drop what it appended to compare below.
    if (decoded > 0) decoder.finish();
    if (decoded > 0) decoder.appendRecords(good);
  }
  assert.equal(decoder.count, 3);
  assertSameFlows(flowsOf(decoder.finish()), flowsFromPbRecords(good));
});
