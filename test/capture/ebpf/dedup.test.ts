/**
 * Interfaces crossed (DEDUPER): packets routed between two namespaces through a bridge of the
 * host (test/net/bridge.ts) cross three interfaces the capture is attached to; by default each
 * is one flow, counted once, listing every (interface, direction) it crossed.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import type { FlowMapKindSetting } from '../../../src/ebpf/kernel-memory.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createRoutedBridge } from '../../net/bridge.ts';
import { openCollecting } from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs to a routed bridge in network namespaces');

const INGRESS = 0;
const ICMP = 1;
const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;
const PINGS = 5;
/** Ethernet + IPv4 + ICMP header + ping's 56 bytes, as the sender's veth sends it. */
const PING_FRAME_BYTES = 14 + 20 + 8 + 56;

function echoFlows(flows: readonly Flow[], type: number, src: string, dst: string): Flow[] {
  return flows.filter(
    (f) =>
      f.proto === ICMP &&
      f.icmpType === type &&
      formatIp(f.srcAddr, 0, f.etype) === src &&
      formatIp(f.dstAddr, 0, f.etype) === dst,
  );
}

/** `name:in` / `name:out` of every interface a flow crossed, in the order it lists them. */
function crossedNames(flow: Flow): string[] {
  const names = new Map<number, string>();
  for (const name of readdirSync('/sys/class/net')) {
    names.set(Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8')), name);
  }
  return (flow.crossed ?? []).map((c) => `${names.get(c.ifIndex)}:${c.direction === INGRESS ? 'in' : 'out'}`);
}

async function pingThroughBridge(
  t: TestContext,
  prefix: string,
  subnet: number,
  opts: { dedup?: boolean; mapKind?: FlowMapKindSetting },
) {
  const topo = await createRoutedBridge(prefix, subnet);
  t.after(() => topo.cleanup());
  // The first ping resolves every neighbour, so the counted ones cross a quiet path.
  await topo.execIn('a', 'ping', ['-c', '1', '-W', '2', topo.addrB]);
  const { capture, flows, done } = await openCollecting(t, { ...opts, drainIntervalMs: 60_000 });
  for (const ifName of [topo.portA, topo.bridge, topo.portB]) await capture.attach(ifName);
  await topo.execIn('a', 'ping', ['-c', String(PINGS), '-i', '0.01', '-W', '2', topo.addrB]);
  await capture.stop();
  await done;
  return { topo, flows };
}

for (const [mapKind, prefix, subnet] of [
  ['percpu', 'ftkd1', 241],
  ['shared', 'ftkd2', 242],
] as const) {
  test(`a packet routed through a bridge is one flow per direction, counted once, listing the three interfaces it crossed (${mapKind} map)`, {
    skip,
  }, async (t) => {
    const { topo, flows } = await pingThroughBridge(t, prefix, subnet, { mapKind });

    const echo = echoFlows(flows, ECHO_REQUEST, topo.addrA, topo.addrB);
    assert.equal(echo.length, 1, 'one echo-request flow');
    assert.equal(echo[0].packets, PINGS, 'as many packets as the sender sent');
    assert.equal(echo[0].bytes, PINGS * PING_FRAME_BYTES, 'bytes as the first interface saw them');
    assert.equal(echo[0].interface, topo.portA, 'counted where it was first seen');
    assert.equal(echo[0].direction, INGRESS);
    assert.deepEqual(
      crossedNames(echo[0]),
      [`${topo.portA}:in`, `${topo.bridge}:in`, `${topo.bridge}:out`, `${topo.portB}:out`],
      'first the bridge port it arrived on, then the bridge in and out, then the port it left by',
    );

    const reply = echoFlows(flows, ECHO_REPLY, topo.addrB, topo.addrA);
    assert.equal(reply.length, 1, 'one echo-reply flow');
    assert.equal(reply[0].packets, PINGS);
    assert.equal(reply[0].interface, topo.portB);
    assert.deepEqual(crossedNames(reply[0]), [
      `${topo.portB}:in`,
      `${topo.bridge}:in`,
      `${topo.bridge}:out`,
      `${topo.portA}:out`,
    ]);
  });
}

test('with DEDUPER=none a routed packet is counted on every interface it crossed, each its own flow', {
  skip,
}, async (t) => {
  const { topo, flows } = await pingThroughBridge(t, 'ftkd3', 243, { dedup: false });
  const echo = echoFlows(flows, ECHO_REQUEST, topo.addrA, topo.addrB);
  assert.deepEqual(
    echo.map((f) => `${f.interface}:${f.direction === INGRESS ? 'in' : 'out'}`).sort(),
    [`${topo.bridge}:in`, `${topo.bridge}:out`, `${topo.portA}:in`, `${topo.portB}:out`].sort(),
    'a flow per interface and direction: three interfaces, the bridge both ways',
  );
  for (const f of echo) {
    assert.equal(f.packets, PINGS, `${f.interface} counts every packet`);
    assert.deepEqual(
      (f.crossed ?? []).map((c) => [c.ifIndex, c.direction]),
      [[f.ifIndex, f.direction]],
      'the one interface of its key',
    );
  }
});
