import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { splitOffset } from '../../src/ebpf/clock.ts';
import { FlowMapDrainer } from '../../src/ebpf/flow-map.ts';
import { type FlowMapKind, FlowObject } from '../../src/ebpf/object.ts';
import { formatMac } from '../../src/model/mac.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import {
  ALL_PACKET_VECTORS,
  expectedOf,
  observedFields,
  PACKET_VECTORS,
  VECTOR_DST_MAC,
  VECTOR_SRC_MAC,
  withDefaults,
} from '../vectors/packets.ts';

const skip = skipUnlessKernel('load the datapath and test-run it');

const TC_ACT_UNSPEC = -1;
const LOOPBACK_IFINDEX = 1;

const ETH_HLEN = 14;
const MIN_HEADER_BYTES: Record<number, number> = { 2048: 20, 34525: 40 };

/**
 * The frame to hand BPF_PROG_TEST_RUN. The kernel refuses (EINVAL) to test-run an untagged IPv4
 * or IPv6 frame shorter than its IP header, though such frames do reach TC on a real interface;
 * those are run with an 802.1Q tag inserted, which takes the program down the same truncated-
 * header path while the kernel sees a VLAN frame.
 */
function runnableFrame(hex: string): Buffer {
  const frame = Buffer.from(hex, 'hex');
  const etype = frame.readUInt16BE(12);
  const minimum = MIN_HEADER_BYTES[etype];
  if (minimum === undefined || frame.length >= ETH_HLEN + minimum) return frame;
  const tag = Buffer.from([0x81, 0x00, 0x00, 0x01]);
  return Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
}

function loadObject(
  t: { after: (fn: () => void) => void },
  mapKind: FlowMapKind,
  settings: { dedup?: boolean; tunnels?: boolean } = {},
): FlowObject {
  const obj = FlowObject.load({ sampling: 1, maxFlows: 64, ringBufferBytes: 1 << 16, mapKind, ...settings });
  t.after(() => obj.close());
  return obj;
}

for (const [mapKind, dedup, tunnels] of [
  ['percpu', true, false],
  ['shared', true, false],
  ['percpu', true, true],
  ['shared', true, true],
  ['percpu', false, false],
  ['percpu', false, true],
] as const) {
  test(`every packet vector gives its expected flow or parse error in the kernel program (${mapKind} map, dedup ${dedup ? 'on' : 'off'}, tunnels ${tunnels ? 'on' : 'off'})`, {
    skip,
  }, (t) => {
    const obj = loadObject(t, mapKind, { dedup, tunnels });
    const drainer = new FlowMapDrainer(obj);
    const zero = splitOffset(0n);
    for (const vector of ALL_PACKET_VECTORS) {
      const parseErrorsBefore = obj.readCounters().parseErrors;
      assert.equal(obj.testRun('ingress', runnableFrame(vector.frame)), TC_ACT_UNSPEC, vector.name);
      const builder = new RecordBatchBuilder(4);
      drainer.drainInto(builder, zero);
      const parseErrors = obj.readCounters().parseErrors - parseErrorsBefore;
      const batch = builder.finish();
      const expected = expectedOf(vector, tunnels);
      if ('parseError' in expected) {
        assert.equal(batch.count, 0, `${vector.name}: no flow`);
        assert.equal(parseErrors, 1, `${vector.name}: one parse error`);
        continue;
      }
      assert.equal(parseErrors, 0, `${vector.name}: no parse error`);
      assert.equal(batch.count, 1, `${vector.name}: one flow`);
      const flow = batch.flow(0);
      assert.deepEqual(observedFields(flow), withDefaults(expected), vector.name);
      assert.equal(flow.packets, 1, vector.name);
      assert.deepEqual(flow.crossed, [{ ifIndex: LOOPBACK_IFINDEX, direction: 0 }], vector.name);
      assert.equal(formatMac(flow.srcMac), VECTOR_SRC_MAC, vector.name);
      assert.equal(formatMac(flow.dstMac), VECTOR_DST_MAC, vector.name);
      assert.equal(flow.direction, 0, vector.name);
      assert.equal(flow.ifIndex, LOOPBACK_IFINDEX, vector.name);
    }
  });
}

test('the egress program marks its flows egress', { skip }, (t) => {
  const obj = loadObject(t, 'percpu');
  const vector = PACKET_VECTORS.find((v) => !('parseError' in v.expected))!;
  obj.testRun('egress', Buffer.from(vector.frame, 'hex'));
  const builder = new RecordBatchBuilder(4);
  new FlowMapDrainer(obj).drainInto(builder, splitOffset(0n));
  const batch = builder.finish();
  assert.equal(batch.count, 1);
  assert.equal(batch.flow(0).direction, 1);
});

for (const mapKind of ['percpu', 'shared'] as const) {
  test(`repeated packets of one flow add up in one entry with first and last seen times (${mapKind} map)`, {
    skip,
  }, (t) => {
    const obj = loadObject(t, mapKind);
    const frame = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
    for (let i = 0; i < 5; i++) obj.testRun('ingress', frame);
    const builder = new RecordBatchBuilder(4);
    new FlowMapDrainer(obj).drainInto(builder, splitOffset(0n));
    const flow = builder.finish().flow(0);
    assert.equal(flow.packets, 5);
    assert.equal(flow.bytes, 5 * frame.length);
    assert.ok(flow.timeFlowEndNs > flow.timeFlowStartNs, 'last seen after first seen');
  });
}
