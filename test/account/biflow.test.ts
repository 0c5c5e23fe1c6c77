/** Pairing the two directions of a conversation into bidirectional records, and splitting them back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairBiflows, splitBiflows } from '../../src/account/biflow.ts';
import { EvictedRows } from '../../src/account/evicted-rows.ts';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { type Flow, flowKeyString } from '../../src/model/flow.ts';
import { formatIp, parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';

const T0 = 1_700_000_000_000_000_000n;

/** Client 10.0.0.1:40000 → server 10.0.0.2:80 and the answer, the client's first. */
function conversation(): [Flow, Flow] {
  const request = makeFlow({
    srcAddr: '10.0.0.1',
    dstAddr: '10.0.0.2',
    srcPort: 40_000,
    dstPort: 80,
    direction: 1,
    bytes: 300,
    packets: 3,
    tcpFlags: 0x02 | 0x10,
    dscp: 10,
    ifIndex: 4,
    timeFlowStartNs: T0,
    timeFlowEndNs: T0 + 900n,
  });
  const answer = makeFlow({
    srcAddr: '10.0.0.2',
    dstAddr: '10.0.0.1',
    srcPort: 80,
    dstPort: 40_000,
    srcMac: '02:00:00:00:00:02',
    dstMac: '02:00:00:00:00:01',
    direction: 0,
    bytes: 5000,
    packets: 4,
    tcpFlags: 0x12,
    dscp: 20,
    ifIndex: 4,
    timeFlowStartNs: T0 + 100n,
    timeFlowEndNs: T0 + 1000n,
  });
  return [request, answer];
}

test('the two directions of a conversation become one record, forward the first seen', () => {
  const [request, answer] = conversation();
  // The answer comes first in the batch; the request was seen first, so it is forward.
  const paired = pairBiflows(recordBatchOf([answer, request]));
  assert.equal(paired.count, 1);
  const flow = paired.flow(0);
  assert.equal(flowKeyString(flow), flowKeyString(request));
  assert.equal(flow.bytes, 300);
  assert.deepEqual(flow.reverse, {
    bytes: 5000,
    packets: 4,
    timeFlowStartNs: T0 + 100n,
    timeFlowEndNs: T0 + 1000n,
    tcpFlags: 0x12,
    dscp: 20,
  });
});

test('a one-way flow is a bidirectional record with zero reverse counts', () => {
  const [request] = conversation();
  const other = makeFlow({ srcPort: 1, dstPort: 2, ifIndex: 4 });
  const paired = pairBiflows(recordBatchOf([request, other]));
  assert.equal(paired.count, 2);
  for (const flow of paired.flows()) {
    assert.deepEqual(flow.reverse, {
      bytes: 0,
      packets: 0,
      timeFlowStartNs: 0n,
      timeFlowEndNs: 0n,
      tcpFlags: 0,
      dscp: 0,
    });
  }
});

test('directions seen on different interfaces or VLANs do not pair', () => {
  const [request, answer] = conversation();
  assert.equal(pairBiflows(recordBatchOf([request, { ...answer, ifIndex: 5 }])).count, 2);
  assert.equal(pairBiflows(recordBatchOf([request, { ...answer, vlanOuter: 7, vlanInner: 0 }])).count, 2);
});

test('an ICMP echo request pairs with its reply, not with a request the other way', () => {
  const ping = (src: string, dst: string, type: number, start: bigint) =>
    makeFlow({
      proto: 1,
      srcPort: 0,
      dstPort: 0,
      srcAddr: src,
      dstAddr: dst,
      icmpType: type,
      timeFlowStartNs: start,
    });
  const request = ping('10.0.0.1', '10.0.0.2', 8, T0);
  const reply = ping('10.0.0.2', '10.0.0.1', 0, T0 + 1n);
  const otherRequest = ping('10.0.0.2', '10.0.0.1', 8, T0 + 2n);
  const paired = pairBiflows(recordBatchOf([otherRequest, reply, request]));
  assert.equal(paired.count, 2);
  const biflow = [...paired.flows()].find((f) => (f.reverse?.packets ?? 0) > 0);
  assert.equal(biflow?.icmpType, 8);
  assert.equal(formatIp(biflow?.srcAddr ?? new Uint8Array(16), 0, 0x800), '10.0.0.1');
});

test('splitting a bidirectional record gives back both directions with their counters', () => {
  const [request, answer] = conversation();
  const split = splitBiflows(pairBiflows(recordBatchOf([request, answer])));
  assert.equal(split.count, 2);
  const [forward, reverse] = [...split.flows()];
  assert.equal(flowKeyString(forward), flowKeyString(request));
  assert.equal(forward.reverse, undefined);
  assert.equal(flowKeyString(reverse), flowKeyString(answer));
  assert.deepEqual(
    [
      reverse.bytes,
      reverse.packets,
      reverse.timeFlowStartNs,
      reverse.timeFlowEndNs,
      reverse.tcpFlags,
      reverse.dscp,
    ],
    [5000, 4, T0 + 100n, T0 + 1000n, 0x12, 20],
  );
  assert.deepEqual(reverse.crossed, [{ ifIndex: 4, direction: 0 }]);
});

test('a batch without bidirectional records is not copied to be split', () => {
  const batch = recordBatchOf(conversation());
  assert.equal(splitBiflows(batch), batch);
});

test('the evicted-rows stage writes the agent IP into every row and counts what the flows carry', () => {
  const [request, answer] = conversation();
  const tunneled = makeFlow({
    srcPort: 7,
    tunnel: { type: 1, id: 42, srcAddr: parseIp('192.0.2.1')!, dstAddr: parseIp('192.0.2.2')! },
    vlanOuter: 100,
    vlanInner: 0,
    crossed: [
      { ifIndex: 1, direction: 0 },
      { ifIndex: 2, direction: 1 },
    ],
  });
  const stage = new EvictedRows({ agentIp: parseIp('198.51.100.7')!, bidirectional: true });
  const out = stage.finish(recordBatchOf([request, answer, tunneled]));
  assert.equal(out.count, 2);
  for (const flow of out.flows()) assert.equal(formatIp(flow.agentIp!, 0, 0), '198.51.100.7');
  assert.deepEqual(stage.counts, {
    tunneled: { 1: 1 },
    vlanTagged: 1,
    multiInterface: 1,
    biflowsPaired: 1,
    biflowsOneWay: 1,
  });
});

test('without bidirectional mode the stage keeps every row as it was, agent IP aside', () => {
  const flows = conversation();
  const stage = new EvictedRows({ agentIp: parseIp('2001:db8::7')!, bidirectional: false });
  const out = stage.finish(recordBatchOf(flows));
  assert.deepEqual(
    [...out.flows()].map((f) => flowKeyString(f)),
    flows.map((f) => flowKeyString(f)),
  );
  assert.deepEqual(
    [...out.flows()].map((f) => [f.bytes, f.packets, f.reverse]),
    flows.map((f) => [f.bytes, f.packets, undefined]),
  );
  assert.equal(formatIp(out.flow(0).agentIp!, 0, 0), '2001:db8::7');
});

test("a record's health is its conversation's: both directions' drops and retransmissions, the RTT range of both", () => {
  const [request, answer] = conversation();
  request.health = {
    rtt: { minNs: 2_000n, maxNs: 9_000n, lastNs: 5_000n, samples: 2 },
    dropBytes: 100,
    dropPackets: 1,
    retransBytes: 0,
    retransPackets: 0,
    latestDrop: { timeNs: T0 + 10n, cause: 8, tcpFlags: 0x02, tcpState: 2 },
  };
  answer.health = {
    rtt: { minNs: 1_000n, maxNs: 4_000n, lastNs: 3_000n, samples: 1 },
    handshakeRttNs: 700n,
    dropBytes: 60,
    dropPackets: 2,
    retransBytes: 1_448,
    retransPackets: 1,
    latestDrop: { timeNs: T0 + 500n, cause: 3, tcpFlags: 0x10, tcpState: 1 },
  };
  const record = pairBiflows(recordBatchOf([answer, request])).flow(0);
  assert.deepEqual(record.health, {
    // The answer's last packet is later: its latest RTT is the record's.
    rtt: { minNs: 1_000n, maxNs: 9_000n, lastNs: 3_000n, samples: 3 },
    handshakeRttNs: 700n,
    dropBytes: 160,
    dropPackets: 3,
    retransBytes: 1_448,
    retransPackets: 1,
    latestDrop: { timeNs: T0 + 500n, cause: 3, tcpFlags: 0x10, tcpState: 1 },
  });
});

test('splitting a record leaves its health on the forward row only, so nothing counts twice', () => {
  const [request, answer] = conversation();
  request.health = { dropBytes: 0, dropPackets: 0, retransBytes: 2_896, retransPackets: 2 };
  const [forward, reverse] = splitBiflows(pairBiflows(recordBatchOf([request, answer]))).flows();
  assert.equal(forward.health?.retransPackets, 2);
  assert.equal(reverse.health, undefined);
});

test('pairing merges the DNS of both directions into the record; splitting leaves it on the forward row only', () => {
  const [query, response] = conversation();
  query.dns = {
    queries: 1,
    answers: 0,
    unanswered: 0,
    malformed: 0,
    latestNs: T0 + 10n,
    header: { id: 9, flags: 0x0100 },
    name: 'www.example.com',
  };
  response.dns = {
    queries: 0,
    answers: 1,
    unanswered: 0,
    malformed: 0,
    latestNs: T0 + 20n,
    header: { id: 9, flags: 0x8183 },
    name: 'www.example.com',
    latencyNs: 10n,
  };
  const paired = pairBiflows(recordBatchOf([response, query]));
  assert.equal(paired.count, 1);
  assert.deepEqual(paired.flow(0).dns, { ...response.dns, queries: 1 });
  const split = splitBiflows(paired);
  assert.deepEqual(
    [...split.flows()].map((f) => f.dns?.answers),
    [1, undefined],
  );
});
