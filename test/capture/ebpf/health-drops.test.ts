import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InterfaceAttachment } from '../../../src/ebpf/attach.ts';
import { libbpf } from '../../../src/ebpf/libbpf.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, type VethPair } from '../../net/netns.ts';
import { dropReason, nftCounter, nftInNs, openHealthPipeline } from './health-helpers.ts';
import { flowOf, sendTraffic } from './helpers.ts';

const skip = skipUnlessKernel('hook TCP health programs and drop packets in network namespaces');

const INGRESS = 0;
const EGRESS = 1;
const UDP = 17;
const DATAGRAMS = 25;
const PAYLOAD_BYTES = 100;
const FRAME_BYTES = 14 + 20 + 8 + PAYLOAD_BYTES;
const TABLE = 'fthealth';
const SHOT_OBJECT = fileURLToPath(new URL('./fixtures/shot.bpf.o', import.meta.url));

/** Sends DATAGRAMS datagrams from this process to `host:port`; returns the local port. */
async function sendUdp(t: TestContext, host: string, port: number): Promise<number> {
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, resolve));
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  for (let i = 0; i < DATAGRAMS; i++) {
    await new Promise<void>((resolve, reject) =>
      socket.send(payload, port, host, (err) => (err ? reject(err) : resolve())),
    );
  }
  return socket.address().port;
}

/** Attaches the fixture that drops every packet at TC ingress of `ifName`, after what is there; released in t.after. */
function attachShot(t: TestContext, ifName: string): void {
  const lib = libbpf();
  const obj: bigint = lib.objectOpenFile(SHOT_OBJECT, null);
  assert.ok(obj, 'the fixture opens');
  t.after(() => lib.objectClose(obj));
  assert.equal(lib.objectLoad(obj), 0, 'the fixture loads');
  const fd: number = lib.programFd(lib.objectFindProgram(obj, 'ft_test_shot'));
  const ifIndex = Number(readFileSync(`/sys/class/net/${ifName}/ifindex`, 'utf8'));
  const attachment = InterfaceAttachment.attach(ifName, ifIndex, { ingressFd: fd }, 'tcx');
  t.after(() => attachment.detach());
}

/** The namespace reaches the host without ARP (the drop program would drop ARP too). */
async function staticNeighbour(pair: VethPair): Promise<void> {
  await pair.exec('ip', [
    'neigh',
    'replace',
    pair.hostAddr4,
    'lladdr',
    pair.hostMac,
    'dev',
    pair.nsIf,
    'nud',
    'permanent',
  ]);
}

for (const hooks of ['auto', 'tracepoint'] as const) {
  test(`datagrams an nftables rule drops for one port are exactly the flow's drops, with the netfilter reason (HEALTH_HOOKS=${hooks})`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(hooks === 'auto' ? 'fthd1' : 'fthd2');
    t.after(() => pair.cleanup());
    const port = 9999;
    await nftInNs(pair, 'add', 'table', 'inet', TABLE);
    await nftInNs(pair, 'add', 'chain', 'inet', TABLE, 'input', '{ type filter hook input priority 0 ; }');
    await nftInNs(
      pair,
      'add',
      'rule',
      'inet',
      TABLE,
      'input',
      'udp',
      'dport',
      String(port),
      'counter',
      'drop',
    );
    const live = await openHealthPipeline(t, { rtt: false, retrans: false, drops: true, hooks });
    await live.capture.attach(pair.hostIf);
    const localPort = await sendUdp(t, pair.nsAddr4, port);
    const dropped = await nftCounter(pair, TABLE);
    const flows = await live.finish();

    const sent = flows.filter(flowOf(EGRESS, UDP, pair.hostAddr4, pair.nsAddr4, localPort, port));
    assert.equal(sent.length, 1);
    assert.equal(dropped.packets, DATAGRAMS);
    assert.equal(sent[0].packets, DATAGRAMS);
    assert.deepEqual(sent[0].health, {
      dropPackets: DATAGRAMS,
      dropBytes: DATAGRAMS * FRAME_BYTES,
      retransPackets: 0,
      retransBytes: 0,
      latestDrop: {
        timeNs: sent[0].health?.latestDrop?.timeNs,
        cause: await dropReason('NETFILTER_DROP'),
        tcpFlags: 0,
        tcpState: 0,
      },
    });
    const dropNs = sent[0].health?.latestDrop?.timeNs ?? 0n;
    assert.ok(dropNs >= sent[0].timeFlowStartNs, 'the drop time is on the flows clock (Unix ns)');
  });
}

for (const dedup of [true, false]) {
  test(`packets a TC program drops (TC_ACT_SHOT) carry TC's own reason (DEDUPER=${dedup ? 'firstCome' : 'none'})`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(dedup ? 'fthd3' : 'fthd4');
    t.after(() => pair.cleanup());
    await staticNeighbour(pair);
    const live = await openHealthPipeline(
      t,
      { rtt: false, retrans: false, drops: true, hooks: 'auto' },
      { dedup },
    );
    await live.capture.attach(pair.hostIf);
    attachShot(t, pair.hostIf);
    const udp = await sendTraffic(pair, {
      kind: 'udp',
      host: pair.hostAddr4,
      port: 9998,
      count: DATAGRAMS,
      payloadBytes: PAYLOAD_BYTES,
    });
    const flows = await live.finish();

    const received = flows.filter(flowOf(INGRESS, UDP, pair.nsAddr4, pair.hostAddr4, udp.srcPorts[0], 9998));
    assert.equal(received.length, 1, 'one flow, the drops joined into it');
    assert.equal(received[0].packets, DATAGRAMS, 'counted by flowtap before the drop');
    assert.equal(received[0].health?.dropPackets, DATAGRAMS);
    assert.equal(received[0].health?.dropBytes, DATAGRAMS * FRAME_BYTES);
    assert.equal(received[0].health?.latestDrop?.cause, await dropReason('TC_INGRESS'));
  });
}

test('a drop no counted flow matches becomes a record of its own with zero packets', { skip }, async (t) => {
  const pair = await createVethPair('fthd5');
  t.after(() => pair.cleanup());
  const port = 9997;
  await nftInNs(pair, 'add', 'table', 'inet', TABLE);
  await nftInNs(pair, 'add', 'chain', 'inet', TABLE, 'input', '{ type filter hook input priority 0 ; }');
  await nftInNs(pair, 'add', 'rule', 'inet', TABLE, 'input', 'udp', 'dport', String(port), 'drop');
  // Only egress is counted: the drops happen on the way in, in the namespace, on no counted flow.
  const live = await openHealthPipeline(
    t,
    { rtt: false, retrans: false, drops: true, hooks: 'auto' },
    { direction: 'ingress' },
  );
  await live.capture.attach(pair.hostIf);
  const localPort = await sendUdp(t, pair.nsAddr4, port);
  const flows = await live.finish();

  const own = flows.filter((f) => f.proto === UDP && f.srcPort === localPort && f.dstPort === port);
  assert.equal(own.length, 1);
  assert.equal(own[0].packets, 0);
  assert.equal(own[0].health?.dropPackets, DATAGRAMS);
});
