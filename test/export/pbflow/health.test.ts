/**
 * The health fields (issue 14) in pbflow: a round trip through the hand-written encoder and
 * decoder, the field numbers and types of the newest netobserv (read here from raw wire tags, not
 * through flowtap's own schema), records of a netobserv sender, and what both decoders refuse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { DurationSchema } from '@bufbuild/protobuf/wkt';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { MalformedMessageError } from '../../../src/errors.ts';
import { decodePbRecords } from '../../../src/export/pbflow/decode.ts';
import { encodePbRecord, encodePbRecords } from '../../../src/export/pbflow/encode.ts';
import { flowsFromPbRecords } from '../../../src/export/pbflow/from-pb.ts';
import { RecordSchema, RecordsSchema } from '../../../src/export/pbflow/gen/flow_pb.ts';
import type { FlowHealth } from '../../../src/model/flow.ts';
import { makeFlow } from '../../helpers/flows.ts';
import { randomBatch } from './random-rows.ts';

const HEALTH: FlowHealth = {
  rtt: { minNs: 1_500_000n, maxNs: 42_000_000n, lastNs: 7_250_000n, samples: 12 },
  handshakeRttNs: 310_000n,
  dropBytes: 3_000,
  dropPackets: 2,
  retransBytes: 2_896,
  retransPackets: 2,
  latestDrop: { timeNs: 1_700_000_000_123_456_789n, cause: 8, tcpFlags: 0x18, tcpState: 1 },
};

/** Each field of a serialized message as [number, wire type, value bytes or varint]. */
function rawFields(bytes: Uint8Array): Map<number, { wire: number; value: bigint | Uint8Array }> {
  const fields = new Map<number, { wire: number; value: bigint | Uint8Array }>();
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = bytes[pos++];
      v |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return v;
    }
  };
  while (pos < bytes.length) {
    const tag = Number(varint());
    const wire = tag & 7;
    if (wire === 0) fields.set(tag >>> 3, { wire, value: varint() });
    else if (wire === 2) {
      const length = Number(varint());
      fields.set(tag >>> 3, { wire, value: bytes.subarray(pos, pos + length) });
      pos += length;
    } else if (wire === 5) pos += 4;
    else pos += 8;
  }
  return fields;
}

test('health sections survive the hot encoder and decoder unchanged', () => {
  const batch = randomBatch(21, 3_000);
  const decoded = decodePbRecords(encodePbRecords(batch, 0, batch.count));
  let measured = 0;
  for (let i = 0; i < batch.count; i++) {
    const sent = batch.flow(i).health;
    // A sample count of 0 with an RTT is sent as absent and read back as the one sample there was.
    if (sent?.rtt?.samples === 0) sent.rtt.samples = 1;
    assert.deepEqual(decoded.flow(i).health, sent, `row ${i}`);
    if (sent !== undefined) measured++;
  }
  assert.ok(measured > 1_000, `${measured} rows with health`);
});

test("a flow's health goes out under netobserv's field numbers and types, the rest from 1004", () => {
  const fields = rawFields(encodePbRecord(recordBatchOf([makeFlow({ health: HEALTH })]), 0));
  assert.deepEqual(fields.get(16), { wire: 0, value: 3_000n }); // pkt_drop_bytes uint64
  assert.deepEqual(fields.get(17), { wire: 0, value: 2n }); // pkt_drop_packets uint64
  assert.deepEqual(fields.get(18), { wire: 0, value: 0x18n }); // pkt_drop_latest_flags uint32
  assert.deepEqual(fields.get(19), { wire: 0, value: 1n }); // pkt_drop_latest_state uint32
  assert.deepEqual(fields.get(20), { wire: 0, value: 8n }); // pkt_drop_latest_drop_cause uint32
  const rtt = fields.get(24); // time_flow_rtt google.protobuf.Duration
  assert.equal(rtt?.wire, 2);
  assert.deepEqual(
    fromBinary(DurationSchema, rtt?.value as Uint8Array),
    create(DurationSchema, { nanos: 7_250_000 }),
  );
  const ext = (n: number) => fields.get(n)?.value;
  assert.equal(fromBinary(DurationSchema, ext(1004) as Uint8Array).nanos, 1_500_000);
  assert.equal(fromBinary(DurationSchema, ext(1005) as Uint8Array).nanos, 42_000_000);
  assert.equal(ext(1006), 12n);
  assert.equal(fromBinary(DurationSchema, ext(1007) as Uint8Array).nanos, 310_000);
  assert.equal(ext(1008), 2_896n);
  assert.equal(ext(1009), 2n);
  assert.ok(ext(1010) instanceof Uint8Array);
});

test('a flow without health encodes none of the health fields', () => {
  const fields = rawFields(encodePbRecord(recordBatchOf([makeFlow()]), 0));
  for (let n = 16; n <= 24; n++) assert.equal(fields.has(n), false, `field ${n}`);
  for (let n = 1004; n <= 1010; n++) assert.equal(fields.has(n), false, `field ${n}`);
});

test("a netobserv agent's drops and RTT decode the same in both decoders, its RTT as min, max and last", () => {
  const message = toBinary(
    RecordsSchema,
    create(RecordsSchema, {
      entries: [
        create(RecordSchema, {
          ethProtocol: 0x0800,
          pktDropBytes: 1_500n,
          pktDropPackets: 1n,
          pktDropLatestFlags: 0x02,
          pktDropLatestState: 2,
          pktDropLatestDropCause: 8,
          timeFlowRtt: create(DurationSchema, { seconds: 1n, nanos: 5 }),
        }),
      ],
    }),
  );
  const expected: FlowHealth = {
    rtt: { minNs: 1_000_000_005n, maxNs: 1_000_000_005n, lastNs: 1_000_000_005n, samples: 1 },
    dropBytes: 1_500,
    dropPackets: 1,
    retransBytes: 0,
    retransPackets: 0,
    latestDrop: { timeNs: 0n, cause: 8, tcpFlags: 0x02, tcpState: 2 },
  };
  assert.deepEqual(flowsFromPbRecords(message)[0]?.health, expected);
  assert.deepEqual(decodePbRecords(message).flow(0).health, expected);
});

test('latest-drop fields without dropped packets, and RTT parts without the latest RTT, are not kept', () => {
  const message = toBinary(
    RecordsSchema,
    create(RecordsSchema, {
      entries: [
        create(RecordSchema, {
          pktDropLatestDropCause: 8,
          timeFlowRttMin: create(DurationSchema, { nanos: 9 }),
          timeFlowRttSamples: 3,
        }),
      ],
    }),
  );
  assert.equal(flowsFromPbRecords(message)[0]?.health, undefined);
  const batch = decodePbRecords(message);
  assert.equal(batch.flow(0).health, undefined);
  assert.ok(
    batch.bytes.subarray(240, 328).every((b) => b === 0),
    'the health section is all zero',
  );
});

/** A Records message of one Record whose body is `record`. */
function oneEntry(record: number[]): Buffer {
  return Buffer.from([0x0a, record.length, ...record]);
}

const REFUSED: [string, number[]][] = [
  ['pkt_drop_latest_flags above 65535', [0x90, 0x01, 0x80, 0x80, 0x04]],
  ['pkt_drop_latest_state above 255', [0x98, 0x01, 0x80, 0x02]],
  [
    'a negative time_flow_rtt',
    [0xc2, 0x01, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
  ],
  ['time_flow_rtt nanos of a second or more', [0xc2, 0x01, 0x06, 0x10, 0x80, 0x94, 0xeb, 0xdc, 0x03]],
];

for (const [what, record] of REFUSED) {
  test(`a record with ${what} is refused by both decoders`, () => {
    const message = oneEntry(record);
    assert.throws(() => flowsFromPbRecords(message), MalformedMessageError);
    assert.throws(() => decodePbRecords(message), MalformedMessageError);
  });
}
