/**
 * The hand-written pbflow encoder against the generic protobuf-es path: byte identity on seeded
 * random rows (both families, zero fields, 64-bit extremes, missing and non-ASCII interface names),
 * and the generic path's mapping of each field as the reference sends it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { type RecordBatch, recordBatchOf } from '../../../src/codec/record-batch.ts';
import { encodePbRecord, encodePbRecordList, encodePbRecords } from '../../../src/export/pbflow/encode.ts';
import { RecordSchema, RecordsSchema } from '../../../src/export/pbflow/gen/flow_pb.ts';
import { pbRecordOf } from '../../../src/export/pbflow/record.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { parseIp } from '../../../src/model/ip.ts';
import { makeFlow, seededRandom } from '../../helpers/flows.ts';
import { randomBatch } from './random-rows.ts';

function genericRecord(batch: RecordBatch, i: number): Buffer {
  return Buffer.from(toBinary(RecordSchema, pbRecordOf(batch, i)));
}

function genericRecords(batch: RecordBatch, start: number, end: number): Buffer {
  const entries = [];
  for (let i = start; i < end; i++) entries.push(pbRecordOf(batch, i));
  return Buffer.from(toBinary(RecordsSchema, create(RecordsSchema, { entries })));
}

test('encodePbRecord writes the same bytes as toBinary of pbRecordOf for random rows', () => {
  const batch = randomBatch(1, 20_000);
  for (let i = 0; i < batch.count; i++) {
    const expected = genericRecord(batch, i);
    const actual = encodePbRecord(batch, i);
    if (!actual.equals(expected)) {
      assert.fail(`row ${i}: ${actual.toString('hex')} !== ${expected.toString('hex')}`);
    }
  }
});

test('encodePbRecords writes the same bytes as toBinary of a Records message for random ranges', () => {
  const batch = randomBatch(2, 3_000);
  const random = seededRandom(3);
  const ranges: [number, number][] = [
    [0, 0],
    [0, 1],
    [0, batch.count], // several hundred KiB: grows the scratch buffer mid-batch
  ];
  for (let k = 0; k < 50; k++) {
    const start = Math.floor(random() * batch.count);
    ranges.push([start, Math.min(batch.count, start + Math.floor(random() * 200))]);
  }
  for (const [start, end] of ranges) {
    const actual = encodePbRecords(batch, start, end);
    const expected = genericRecords(batch, start, end);
    assert.ok(actual.equals(expected), `rows ${start}..${end}`);
  }
});

test('encodePbRecordList gives each row its own Record bytes', () => {
  const batch = randomBatch(4, 500);
  const values = encodePbRecordList(batch, 100, 400);
  assert.equal(values.length, 300);
  values.forEach((value, k) => {
    assert.ok(value.equals(genericRecord(batch, 100 + k)), `row ${100 + k}`);
  });
});

test('encodePbRecords frames records longer than 127 bytes with a multi-byte length', () => {
  const registry = new InterfaceRegistry();
  registry.set(7, 'n'.repeat(100_000)); // longer than the initial scratch buffer
  registry.set(8, 'ü'.repeat(70));
  const batch = recordBatchOf(
    [
      makeFlow({ ifIndex: 7 }),
      makeFlow({ etype: 0x86dd, srcAddr: 'fd00::1', dstAddr: 'fd00::2', ifIndex: 8 }),
    ],
    registry,
  );
  const actual = encodePbRecords(batch, 0, 2);
  assert.ok(actual.equals(genericRecords(batch, 0, 2)));
  assert.ok(actual.length > 100_000);
});

test('pbRecordOf maps every field as the reference sends it', () => {
  const registry = new InterfaceRegistry();
  registry.set(3, 'eth0');
  const batch = recordBatchOf(
    [
      makeFlow({
        etype: 0x0800,
        direction: 1,
        srcMac: '11:22:33:44:55:66',
        dstMac: 'aa:bb:cc:dd:ee:ff',
        srcAddr: '10.0.0.1',
        dstAddr: '192.168.1.254',
        srcPort: 22,
        dstPort: 51_819,
        proto: 6,
        ifIndex: 3,
        bytes: 2 ** 40 + 5,
        packets: 7,
        timeFlowStartNs: 1_647_502_932_414_480_074n,
        timeFlowEndNs: 1_647_502_932_414_849_771n,
      }),
      makeFlow({ etype: 0x86dd, direction: 0, srcAddr: 'fd00::1', dstAddr: '::ffff:10.1.2.3', ifIndex: 4 }),
    ],
    registry,
  );
  const v4 = pbRecordOf(batch, 0);
  assert.equal(v4.ethProtocol, 0x0800);
  assert.equal(v4.direction, 1);
  assert.equal(v4.timeFlowStart?.seconds, 1_647_502_932n);
  assert.equal(v4.timeFlowStart?.nanos, 414_480_074);
  assert.equal(v4.timeFlowEnd?.nanos, 414_849_771);
  assert.equal(v4.dataLink?.srcMac, 0x112233445566n);
  assert.equal(v4.dataLink?.dstMac, 0xaabbccddeeffn);
  assert.deepEqual(v4.network?.srcAddr?.ipFamily, { case: 'ipv4', value: 0x0a000001 });
  assert.deepEqual(v4.network?.dstAddr?.ipFamily, { case: 'ipv4', value: 0xc0a801fe });
  assert.deepEqual([v4.transport?.srcPort, v4.transport?.dstPort, v4.transport?.protocol], [22, 51_819, 6]);
  assert.equal(v4.bytes, 2n ** 40n + 5n);
  assert.equal(v4.packets, 7n);
  assert.equal(v4.interface, 'eth0');

  const v6 = pbRecordOf(batch, 1);
  const src = v6.network?.srcAddr?.ipFamily;
  assert.equal(src?.case, 'ipv6');
  assert.equal(Buffer.from(src.value as Uint8Array).toString('hex'), 'fd000000000000000000000000000001');
  // A mapped address goes as IPv4 even in an IPv6 flow, as the reference's net.IP.To4() decides.
  assert.deepEqual(v6.network?.dstAddr?.ipFamily, { case: 'ipv4', value: 0x0a010203 });
  assert.equal(v6.interface, '');
});

test('the fields of issue 13 decode as the schema of netobserv reads them', () => {
  const registry = new InterfaceRegistry();
  registry.set(3, 'veth3');
  registry.set(4, 'br0');
  const batch = recordBatchOf(
    [
      makeFlow({
        agentIp: parseIp('192.0.2.10')!,
        crossed: [
          { ifIndex: 3, direction: 0 },
          { ifIndex: 4, direction: 1 },
        ],
        vlanOuter: 100,
        vlanInner: 20,
        tunnel: { type: 1, id: 42, srcAddr: parseIp('198.51.100.1')!, dstAddr: parseIp('2001:db8::2')! },
      }),
    ],
    registry,
  );
  const record = fromBinary(RecordSchema, encodePbRecord(batch, 0));
  assert.deepEqual(record.agentIp?.ipFamily, { case: 'ipv4', value: 0xc000020a });
  assert.deepEqual(
    record.dupList.map((d) => [d.interface, d.direction]),
    [
      ['veth3', 0],
      ['br0', 1],
    ],
  );
  assert.deepEqual([record.vlanId, record.innerVlanId], [100, 20]);
  assert.equal(record.tunnel?.type, 1);
  assert.equal(record.tunnel?.id, 42);
  assert.deepEqual(record.tunnel?.srcAddr?.ipFamily, { case: 'ipv4', value: 0xc6336401 });
  assert.equal(record.tunnel?.dstAddr?.ipFamily.case, 'ipv6');
});

test('a flow without the fields of issue 13 encodes as the reference would have sent it', () => {
  const bytes = encodePbRecord(recordBatchOf([makeFlow()]), 0);
  const record = fromBinary(RecordSchema, bytes);
  assert.equal(record.agentIp, undefined);
  assert.deepEqual(record.dupList, []);
  assert.equal(record.tunnel, undefined);
  assert.ok(bytes.length < 128, 'no field beyond the reference ones');
});
