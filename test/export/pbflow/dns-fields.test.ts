/**
 * DNS in pbflow: netobserv's field numbers and types (21 dns_id, 22 dns_flags, 23 dns_latency as a
 * Duration, 25 dns_errno, 32 dns_name), flowtap's counts from 1020, what the hand-written encoder
 * writes, and both decoders reading it back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { decodePbRecords } from '../../../src/export/pbflow/decode.ts';
import { encodePbRecord, encodePbRecords } from '../../../src/export/pbflow/encode.ts';
import { flowsFromPbRecords } from '../../../src/export/pbflow/from-pb.ts';
import { RecordSchema } from '../../../src/export/pbflow/gen/flow_pb.ts';
import type { FlowDns } from '../../../src/model/flow.ts';
import { makeFlow } from '../../helpers/flows.ts';

const T_END = 1_700_000_000_123_000_000n;
const RESPONSE: FlowDns = {
  queries: 0,
  answers: 3,
  unanswered: 1,
  malformed: 2,
  latestNs: T_END,
  header: { id: 6893, flags: 34179 },
  name: 'caf\u00e9.example',
  latencyNs: 2_000_000_005n,
  errno: 2,
};

test("the DNS fields have netobserv's numbers and types, and flowtap's extensions theirs", () => {
  const field = (name: string) => RecordSchema.fields.find((f) => f.name === name);
  const shape = (name: string) => {
    const f = field(name);
    if (f === undefined) return undefined;
    return [
      f.number,
      f.fieldKind === 'message' ? f.message.typeName : f.fieldKind === 'scalar' ? f.scalar : f.fieldKind,
    ];
  };
  // ScalarType: 13 uint32, 9 string, 8 bool.
  assert.deepEqual(shape('dns_id'), [21, 13]);
  assert.deepEqual(shape('dns_flags'), [22, 13]);
  assert.deepEqual(shape('dns_latency'), [23, 'google.protobuf.Duration']);
  assert.deepEqual(shape('dns_errno'), [25, 13]);
  assert.deepEqual(shape('dns_name'), [32, 9]);
  assert.deepEqual(
    ['dns_queries', 'dns_answers', 'dns_unanswered', 'dns_malformed', 'dns_name_truncated'].map(shape),
    [
      [1020, 13],
      [1021, 13],
      [1022, 13],
      [1023, 13],
      [1024, 8],
    ],
  );
});

test("a flow's DNS goes out in the hand-written encoding as the schema reads it", () => {
  const record = fromBinary(RecordSchema, encodePbRecord(recordBatchOf([makeFlow({ dns: RESPONSE })]), 0));
  assert.deepEqual(
    [record.dnsId, record.dnsFlags, record.dnsErrno, record.dnsName],
    [6893, 34179, 2, 'caf\u00e9.example'],
  );
  assert.deepEqual([record.dnsLatency?.seconds, record.dnsLatency?.nanos], [2n, 5]);
  assert.deepEqual(
    [
      record.dnsQueries,
      record.dnsAnswers,
      record.dnsUnanswered,
      record.dnsMalformed,
      record.dnsNameTruncated,
    ],
    [0, 3, 1, 2, false],
  );
});

test('a flow without DNS sends no DNS field', () => {
  const record = fromBinary(RecordSchema, encodePbRecord(recordBatchOf([makeFlow()]), 0));
  assert.deepEqual(
    [record.dnsId, record.dnsFlags, record.dnsLatency, record.dnsName, record.dnsQueries],
    [0, 0, undefined, '', 0],
  );
});

test("both decoders read a flow's DNS back, dated by the flow's end", () => {
  const flows = [
    makeFlow({ timeFlowEndNs: T_END, dns: RESPONSE }),
    makeFlow({
      timeFlowEndNs: T_END,
      dns: {
        queries: 1,
        answers: 0,
        unanswered: 0,
        malformed: 0,
        latestNs: T_END,
        name: 'x'.repeat(64),
        nameTruncated: true,
      },
    }),
    makeFlow({ timeFlowEndNs: T_END }),
  ];
  const message = encodePbRecords(recordBatchOf(flows), 0, flows.length);
  const expected = flows.map((f) => f.dns);
  assert.deepEqual(
    [...decodePbRecords(message).flows()].map((f) => f.dns),
    expected,
  );
  assert.deepEqual(
    flowsFromPbRecords(message).map((f) => f.dns),
    expected,
  );
});
