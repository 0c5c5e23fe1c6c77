/**
 * Interfaces crossed in the kernel program, hop by hop: BPF_PROG_TEST_RUN passes one frame as if
 * it crossed two interfaces (loopback in, a veth out), on CPUs this test chooses, and the drain
 * shows what was counted.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type TestContext, test } from 'node:test';
import { RecordBatchBuilder } from '../../src/codec/record-batch.ts';
import { splitOffset } from '../../src/ebpf/clock.ts';
import { FlowMapDrainer } from '../../src/ebpf/flow-map.ts';
import { type FlowMapKind, FlowObject } from '../../src/ebpf/object.ts';
import type { Flow } from '../../src/model/flow.ts';
import { pinToCpu, unpin } from '../helpers/cpu-affinity.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { createVethPair } from '../net/netns.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const skip = skipUnlessKernel('load the datapath and test-run it on veths');

const LOOPBACK = 1;
const INGRESS = 0;
const EGRESS = 1;
const FRAME = Buffer.from(PACKET_VECTORS[0].frame, 'hex');

/** A loaded datapath, a second interface for the packet's second hop, and a drain. */
async function hops(t: TestContext, mapKind: FlowMapKind, dedup: boolean, prefix: string) {
  const pair = await createVethPair(prefix);
  t.after(() => pair.cleanup());
  const obj = FlowObject.load({ sampling: 1, maxFlows: 64, ringBufferBytes: 1 << 16, mapKind, dedup });
  t.after(() => obj.close());
  t.after(() => unpin());
  const veth = Number(readFileSync(`/sys/class/net/${pair.hostIf}/ifindex`, 'utf8'));
  /** Packet crosses loopback (in) on `firstCpu`, then the veth (out) on `secondCpu`. */
  const send = (firstCpu: number, secondCpu: number) => {
    pinToCpu(firstCpu);
    obj.testRun('ingress', FRAME, LOOPBACK);
    pinToCpu(secondCpu);
    obj.testRun('egress', FRAME, veth);
  };
  const drain = (): Flow[] => {
    const builder = new RecordBatchBuilder(4);
    new FlowMapDrainer(obj).drainInto(builder, splitOffset(0n));
    return [...builder.finish().flows()];
  };
  return { veth, send, drain };
}

for (const [mapKind, prefix] of [
  ['percpu', 'ftkc1'],
  ['shared', 'ftkc2'],
] as const) {
  test(`a packet is counted once on its first interface even when its hops run on different CPUs (${mapKind} map)`, {
    skip: skip || (availableParallelism() < 2 ? 'needs two CPUs' : false),
  }, async (t) => {
    const { veth, send, drain } = await hops(t, mapKind, true, prefix);
    send(0, 0); // creates the flow on CPU 0: loopback ingress counts
    // Second hops on CPU 1, whose slot is empty: it must learn that loopback counts, or it would
    // count the veth (here twice) and then refuse to count loopback (the last packet).
    send(0, 1);
    send(0, 1);
    send(1, 0); // first hop on CPU 1 counts there; second hop on CPU 0 only lists
    const flows = drain();
    assert.equal(flows.length, 1, 'one flow');
    assert.equal(flows[0].packets, 4, 'each of the 4 packets once');
    assert.equal(flows[0].bytes, 4 * FRAME.length);
    assert.deepEqual(
      [flows[0].ifIndex, flows[0].direction],
      [LOOPBACK, INGRESS],
      'the counting interface is the key',
    );
    assert.deepEqual(flows[0].crossed, [
      { ifIndex: LOOPBACK, direction: INGRESS },
      { ifIndex: veth, direction: EGRESS },
    ]);
    assert.deepEqual(Buffer.from(flows[0].srcMac), FRAME.subarray(6, 12), 'MACs back in the key');
  });
}

test('with dedup off each interface a packet crosses counts it in a flow of its own', { skip }, async (t) => {
  const { veth, send, drain } = await hops(t, 'percpu', false, 'ftkc3');
  send(0, 0);
  send(0, 0);
  const flows = drain().sort((a, b) => a.ifIndex - b.ifIndex);
  assert.deepEqual(
    flows.map((f) => [f.ifIndex, f.direction, f.packets, f.crossed]),
    [
      [LOOPBACK, INGRESS, 2, [{ ifIndex: LOOPBACK, direction: INGRESS }]],
      [veth, EGRESS, 2, [{ ifIndex: veth, direction: EGRESS }]],
    ],
  );
});
