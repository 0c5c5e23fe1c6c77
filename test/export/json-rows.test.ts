/** The json export's row encoder: the same text as flowToJson, and buffers lent one at a time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2, V2_MAX_CROSSED, V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { JsonRowEncoder } from '../../src/export/json-rows.ts';
import { flowToJson } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY, TEST_DROP_REASONS } from '../helpers/health.ts';

function flowToJsonLines(batch: RecordBatch): string {
  let text = '';
  for (const flow of batch.flows()) text += `${flowToJson(flow, batch.interfaces)}\n`;
  return text;
}

function encoded(batch: RecordBatch): string {
  return new JsonRowEncoder().encode(batch, 0, batch.count).toString();
}

test('rows encode to the text flowToJson gives their flows, on every field and edge', () => {
  const names = new InterfaceRegistry();
  names.set(1, 'eth0');
  names.set(2, 'we"ird\\if ü');
  const ns = (text: string) => BigInt(text);
  const flows = [
    makeFlow(),
    makeFlow({ direction: 0, ifIndex: 1, tcpFlags: 0x1ff, dscp: 46, srcPort: 65535, dstPort: 0 }),
    makeFlow({ etype: 0x86dd, srcAddr: '2001:db8::1', dstAddr: 'fe80::1:0:0:2', proto: 17, ifIndex: 2 }),
    makeFlow({ etype: 0x86dd, srcAddr: '::ffff:10.1.2.3', dstAddr: '::', proto: 58, icmpType: 128 }),
    makeFlow({ etype: 0x86dd, srcAddr: '1:2:3:4:5:6:7:8', dstAddr: '1:0:0:2:0:0:0:3' }),
    makeFlow({ etype: 0x0806, srcAddr: '::', dstAddr: '::', proto: 0, direction: 7 }),
    makeFlow({ proto: 1, icmpType: 0, icmpCode: 3 }),
    makeFlow({ proto: 6, icmpType: 8, icmpCode: 1 }), // ICMP fields of a TCP flow are not printed
    makeFlow({ proto: 253, bytes: 2 ** 53 - 1, packets: 2 ** 40 + 7 }),
    makeFlow({ timeFlowStartNs: 0n, timeFlowEndNs: ns('18446744073709551615') }),
    makeFlow({ timeFlowStartNs: ns('1700000000500000000'), timeFlowEndNs: ns('1700000000000000001') }),
    // The agent address alone takes the fast path, kept text included.
    makeFlow({ agentIp: parseIp('192.0.2.1')! }),
    makeFlow({ agentIp: parseIp('192.0.2.1')!, srcPort: 7 }),
    makeFlow({ agentIp: parseIp('2001:db8::9')! }),
    // Interfaces crossed without other identity fields: the live datapath's usual row.
    makeFlow({ agentIp: parseIp('192.0.2.1')!, crossed: [{ ifIndex: 1, direction: 0 }] }),
    makeFlow({
      crossed: [
        { ifIndex: 2, direction: 1 },
        { ifIndex: 9, direction: 0 },
        { ifIndex: 1, direction: 1 },
      ],
    }),
    // DNS: a response with every part, a query, a cut name, the root, DNS only (0 packets).
    makeFlow({
      proto: 17,
      dns: {
        queries: 0,
        answers: 2,
        unanswered: 0,
        malformed: 1,
        latestNs: 5n,
        header: { id: 0xbeef, flags: 0x8183 },
        name: 'nx.example',
        latencyNs: 12_999_999n,
        errno: 22,
      },
    }),
    makeFlow({
      proto: 17,
      agentIp: parseIp('192.0.2.1')!,
      dns: {
        queries: 1,
        answers: 0,
        unanswered: 0,
        malformed: 0,
        latestNs: 5n,
        header: { id: 1, flags: 0x100 },
        name: 'a"b\\c',
      },
    }),
    makeFlow({
      dns: {
        queries: 1,
        answers: 0,
        unanswered: 0,
        malformed: 0,
        latestNs: 5n,
        name: 'x'.repeat(64),
        nameTruncated: true,
      },
    }),
    makeFlow({ dns: { queries: 1, answers: 0, unanswered: 0, malformed: 0, latestNs: 5n, name: '' } }),
    makeFlow({
      packets: 0,
      bytes: 0,
      dns: { queries: 0, answers: 0, unanswered: 1, malformed: 0, latestNs: 5n },
    }),
    makeFlow({
      vlanOuter: 10,
      vlanInner: 20,
      tunnel: { type: 1, id: 42, srcAddr: parseIp('10.9.9.9')!, dstAddr: parseIp('10.9.9.8')! },
      crossed: [
        { ifIndex: 3, direction: 0 },
        { ifIndex: 4, direction: 1 },
      ],
      agentIp: parseIp('192.0.2.1')!,
      reverse: {
        bytes: 5,
        packets: 1,
        timeFlowStartNs: 1n,
        timeFlowEndNs: 2n,
        tcpFlags: 2,
        dscp: 1,
      },
    }),
  ];
  const batch = recordBatchOf(flows, names);
  assert.equal(encoded(batch), flowToJsonLines(batch));
});

test('rows of random bytes encode to the text flowToJson gives their flows', () => {
  const rows = 2000;
  const bytes = Buffer.alloc(rows * V2_RECORD_BYTES);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  for (let r = 0; r < rows; r++) {
    const o = r * V2_RECORD_BYTES;
    // A row lists at most V2_MAX_CROSSED interfaces crossed (`flow()` reads that many).
    bytes[o + V2.CROSSED_COUNT] %= V2_MAX_CROSSED + 1;
    // Some rows of each address family the formatter tells apart.
    if (r % 3 === 0) bytes.writeUInt16LE(r % 2 === 0 ? 0x0800 : 0x86dd, o);
  }
  const batch = new RecordBatch(bytes, rows);
  assert.equal(encoded(batch), flowToJsonLines(batch));
});

test('a buffer encode lends is not reused before it is released, and once only after', () => {
  const batch = recordBatchOf([makeFlow({ srcPort: 1 }), makeFlow({ srcPort: 2 })]);
  const encoder = new JsonRowEncoder();
  const first = encoder.encode(batch, 0, 1);
  const text = first.toString();
  const second = encoder.encode(batch, 1, 2);
  assert.notEqual(second.buffer, first.buffer);
  assert.equal(first.toString(), text);
  encoder.release(first);
  encoder.release(first);
  const third = encoder.encode(batch, 0, 2);
  const fourth = encoder.encode(batch, 0, 1);
  assert.equal(third.buffer, first.buffer);
  assert.notEqual(fourth.buffer, third.buffer);
  assert.notEqual(fourth.buffer, second.buffer);
});

test('health sections encode to the text flowToJson gives, with the same drop-reason names', () => {
  const flows = [
    makeFlow({ health: FULL_HEALTH }),
    makeFlow({ health: RETRANS_ONLY, agentIp: parseIp('192.0.2.1')! }),
    makeFlow({
      health: { ...FULL_HEALTH, latestDrop: { timeNs: 5n, cause: 999, tcpFlags: 2, tcpState: 0 } },
    }),
    makeFlow({
      health: {
        ...RETRANS_ONLY,
        rtt: { minNs: 2n ** 60n, maxNs: 2n ** 64n - 1n, lastNs: 2n ** 53n, samples: 1 },
      },
    }),
    makeFlow({ health: FULL_HEALTH, vlanOuter: 7 }),
  ];
  const batch = recordBatchOf(flows);
  let expected = '';
  for (const flow of batch.flows()) expected += `${flowToJson(flow, batch.interfaces, TEST_DROP_REASONS)}\n`;
  assert.equal(
    new JsonRowEncoder(() => TEST_DROP_REASONS).encode(batch, 0, batch.count).toString(),
    expected,
  );
});

test('the drop-reason names are asked for only when a row has drops', () => {
  let asked = 0;
  const encoder = new JsonRowEncoder(() => {
    asked++;
    return TEST_DROP_REASONS;
  });
  encoder.encode(recordBatchOf([makeFlow(), makeFlow({ health: RETRANS_ONLY })]), 0, 2);
  assert.equal(asked, 0);
  const text = encoder.encode(
    recordBatchOf([makeFlow({ health: FULL_HEALTH }), makeFlow({ health: FULL_HEALTH })]),
    0,
    2,
  );
  assert.equal(asked, 1);
  assert.match(text.toString(), /"PktDropLatestDropCause":"SKB_DROP_REASON_NETFILTER_DROP"/);
});
