/**
 * Tunnels and VLANs on a live interface: a real VXLAN link between two namespaces, and frames this
 * kernel has no module to make (Geneve, GRE, IP-in-IP, 802.1Q) built by test/vectors/packets.ts
 * and injected on a veth (test/net/inject-frames.ts).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { injectCommand } from '../../net/inject-frames.ts';
import { createVethPair, run, type VethPair } from '../../net/netns.ts';
import {
  ALL_PACKET_VECTORS,
  type ExpectedFlow,
  expectedOf,
  observedFields,
  PACKET_VECTORS,
  withDefaults,
} from '../../vectors/packets.ts';
import { openCollecting } from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs and inject frames on veths in network namespaces');

const INGRESS = 0;
const EGRESS = 1;
const ICMP = 1;
const VXLAN = 1;
const VNI = 42;
const PINGS = 4;

/** A VXLAN link (VNI 42, UDP 4789) over `pair`: inner 10.<x>.0.1 on the host, .2 in the namespace. */
async function vxlanOver(
  pair: VethPair,
  device: string,
  x: number,
): Promise<{ hostInner: string; nsInner: string }> {
  const hostInner = `10.${x}.0.1`;
  const nsInner = `10.${x}.0.2`;
  const link = (local: string, remote: string, dev: string) => [
    'link',
    'add',
    device,
    'type',
    'vxlan',
    'id',
    String(VNI),
    'local',
    local,
    'remote',
    remote,
    'dstport',
    '4789',
    'dev',
    dev,
  ];
  await run('ip', link(pair.hostAddr4, pair.nsAddr4, pair.hostIf));
  await run('sysctl', ['-qw', `net.ipv6.conf.${device}.disable_ipv6=1`]);
  await run('ip', ['addr', 'add', `${hostInner}/24`, 'dev', device]);
  await run('ip', ['link', 'set', device, 'up']);
  await pair.exec('ip', link(pair.nsAddr4, pair.hostAddr4, pair.nsIf));
  await pair.exec('sysctl', ['-qw', `net.ipv6.conf.${device}.disable_ipv6=1`]);
  await pair.exec('ip', ['addr', 'add', `${nsInner}/24`, 'dev', device]);
  await pair.exec('ip', ['link', 'set', device, 'up']);
  return { hostInner, nsInner };
}

function between(flows: readonly Flow[], src: string, dst: string): Flow[] {
  return flows.filter(
    (f) => formatIp(f.srcAddr, 0, f.etype) === src && formatIp(f.dstAddr, 0, f.etype) === dst,
  );
}

test('pings over a vxlan link are keyed by the inner addresses with the vni and the outer addresses when tunnels are on', {
  skip,
}, async (t) => {
  const pair = await createVethPair('ftkv1');
  const device = 'ftkv1vx';
  t.after(async () => {
    await run('ip', ['link', 'del', device]).catch(() => undefined);
    await pair.cleanup();
  });
  const { hostInner, nsInner } = await vxlanOver(pair, device, 238);
  await pair.exec('ping', ['-c', '1', '-W', '2', hostInner]);
  const { capture, flows, done } = await openCollecting(t, { tunnels: true, drainIntervalMs: 60_000 });
  await capture.attach(pair.hostIf);
  await pair.exec('ping', ['-c', String(PINGS), '-i', '0.01', '-W', '2', hostInner]);
  await capture.stop();
  await done;

  const echo = between(flows, nsInner, hostInner).filter((f) => f.proto === ICMP && f.icmpType === 8);
  assert.equal(echo.length, 1, 'one echo-request flow, by its inner addresses');
  assert.equal(echo[0].packets, PINGS);
  assert.equal(echo[0].direction, INGRESS);
  assert.deepEqual(observedFields(echo[0]).tunnel, {
    type: VXLAN,
    id: VNI,
    src: pair.nsAddr4,
    dst: pair.hostAddr4,
  });
  const reply = between(flows, hostInner, nsInner).filter((f) => f.proto === ICMP && f.icmpType === 0);
  assert.equal(reply.length, 1, 'one echo-reply flow');
  assert.equal(reply[0].packets, PINGS);
  assert.equal(reply[0].direction, EGRESS);
  assert.deepEqual(observedFields(reply[0]).tunnel, {
    type: VXLAN,
    id: VNI,
    src: pair.hostAddr4,
    dst: pair.nsAddr4,
  });
  assert.equal(
    between(flows, pair.nsAddr4, pair.hostAddr4).length,
    0,
    'no flow keyed by the outer addresses',
  );
});

test('with tunnels off the same vxlan traffic is udp to port 4789 between the outer addresses', {
  skip,
}, async (t) => {
  const pair = await createVethPair('ftkv2');
  const device = 'ftkv2vx';
  t.after(async () => {
    await run('ip', ['link', 'del', device]).catch(() => undefined);
    await pair.cleanup();
  });
  const { hostInner } = await vxlanOver(pair, device, 237);
  await pair.exec('ping', ['-c', '1', '-W', '2', hostInner]);
  const { capture, flows, done } = await openCollecting(t, { drainIntervalMs: 60_000 });
  await capture.attach(pair.hostIf);
  await pair.exec('ping', ['-c', String(PINGS), '-i', '0.01', '-W', '2', hostInner]);
  await capture.stop();
  await done;

  const outer = between(flows, pair.nsAddr4, pair.hostAddr4);
  assert.ok(outer.length >= 1, 'flows between the outer addresses');
  assert.ok(outer.every((f) => f.proto === 17 && f.dstPort === 4789 && f.tunnel === undefined));
  assert.equal(
    outer.reduce((n, f) => n + f.packets, 0),
    PINGS,
  );
});

/** Flows of frames injected on the namespace end of `pair`, seen arriving on its host end. */
async function injectAndCollect(t: TestContext, prefix: string, frames: readonly string[]): Promise<Flow[]> {
  const pair = await createVethPair(prefix);
  t.after(() => pair.cleanup());
  // Tags stay in the frames the socket sends; the receiving side moves the outer one to metadata
  // (skb_vlan_untag) as a NIC with VLAN offload would, which the program reads too.
  await pair.exec('ethtool', ['-K', pair.nsIf, 'txvlan', 'off']);
  const { capture, flows, done } = await openCollecting(t, {
    tunnels: true,
    direction: 'ingress',
    drainIntervalMs: 60_000,
  });
  await capture.attach(pair.hostIf);
  const [cmd, ...args] = injectCommand(pair.nsIf, frames);
  assert.equal((await pair.exec(cmd, args)).trim(), String(frames.length));
  await capture.stop();
  await done;
  return flows.filter((f) => f.interface === pair.hostIf);
}

/** Vectors that give a flow with tunnels on and carry a tunnel or a VLAN tag. */
function tunnelAndVlanVectors(): Array<{ name: string; frame: string; expected: Required<ExpectedFlow> }> {
  const picked = [];
  for (const vector of ALL_PACKET_VECTORS) {
    const expected = expectedOf(vector, true);
    if ('parseError' in expected) continue;
    const e = withDefaults(expected);
    if (e.tunnel.type !== 0 || e.vlanOuter !== 0)
      picked.push({ name: vector.name, frame: vector.frame, expected: e });
  }
  return picked;
}

test('injected vxlan, geneve, gre, gretap, ip-in-ip and tagged frames give the flows of their vectors on a live interface', {
  skip,
}, async (t) => {
  const vectors = tunnelAndVlanVectors();
  assert.ok(vectors.length >= 10, 'every tunnel type and the tagged frames');
  const flows = await injectAndCollect(
    t,
    'ftki1',
    vectors.map((v) => v.frame),
  );
  for (const { name, expected } of vectors) {
    // Bytes are left out: the receiving side took the outer tag out of a tagged frame.
    const found = flows
      .map((f) => ({ ...observedFields(f), bytes: expected.bytes }))
      .filter(
        (o) => o.srcAddr === expected.srcAddr && o.dstAddr === expected.dstAddr && o.proto === expected.proto,
      );
    assert.deepEqual(found, [expected], name);
  }
});

test('the same addresses and ports under two vlan ids are two flows', { skip }, async (t) => {
  const tagged = PACKET_VECTORS.find((v) => v.name === '802.1Q tagged ipv4 udp');
  assert.ok(tagged);
  const asVlan = (id: number) =>
    tagged.frame.slice(0, 28) + id.toString(16).padStart(4, '0') + tagged.frame.slice(32);
  const flows = await injectAndCollect(t, 'ftki2', [asVlan(10), asVlan(20), asVlan(20)]);
  const udp = flows.filter((f) => f.proto === 17 && f.dstPort === 4000);
  assert.deepEqual(
    udp.map((f) => [f.vlanOuter ?? 0, f.packets]).sort((a, b) => a[0] - b[0]),
    [
      [10, 1],
      [20, 2],
    ],
  );
});
