import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer } from 'node:net';
import { test } from 'node:test';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { counterDelta, createVethPair, readInterfaceCounters, waitForQuiet } from '../../net/netns.ts';
import { flowOf, openCollecting, sendTraffic, sum } from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs to veths in network namespaces');

const INGRESS = 0;
const EGRESS = 1;
const UDP = 17;
const TCP = 6;
const ICMP = 1;
const ICMPV6 = 58;
const ETH_IPV4_UDP_HEADERS = 14 + 20 + 8;
const ETH_IPV6_UDP_HEADERS = 14 + 40 + 8;
const PING_COUNT = 3;
const PING_IPV4_FRAME = 14 + 20 + 8 + 56;
const PING_IPV6_FRAME = 14 + 40 + 8 + 56;
const TCP_SYN = 0x02;
const TCP_FIN = 0x01;
const TCP_ACK = 0x10;

async function udpSink(t: { after: (fn: () => void) => void }, host: string): Promise<number> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return socket.address().port;
}

for (const [mapKind, veth] of [
  ['percpu', 'fte3c4'],
  ['shared', 'fte3c8'],
] as const) {
  test(`udp datagrams and icmp echo over ipv4 are counted exactly per flow and direction, and all flows add up to the interface counters (${mapKind} flow map)`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(veth);
    t.after(() => pair.cleanup());
    const port = await udpSink(t, pair.hostAddr4);
    const { capture, flows, done } = await openCollecting(t, { mapKind });
    const before = readInterfaceCounters(pair.hostIf);
    await capture.attach(pair.hostIf);

    const datagrams = 40;
    const payloadBytes = 100;
    const udp = await sendTraffic(pair, {
      kind: 'udp',
      host: pair.hostAddr4,
      port,
      count: datagrams,
      payloadBytes,
    });
    await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
    const after = await waitForQuiet(pair.hostIf, 200);
    await capture.stop();
    await done;

    const delta = counterDelta(before, after);
    assert.deepEqual(sum(flows, flowOf(INGRESS, UDP, pair.nsAddr4, pair.hostAddr4, udp.srcPorts[0], port)), {
      packets: datagrams,
      bytes: datagrams * (ETH_IPV4_UDP_HEADERS + payloadBytes),
    });
    assert.deepEqual(
      sum(flows, (f) => f.direction === EGRESS && f.proto === UDP),
      { packets: 0, bytes: 0 },
    );
    const echo = (f: (typeof flows)[number]) =>
      f.proto === ICMP && f.icmpType === 8 && f.direction === INGRESS;
    const reply = (f: (typeof flows)[number]) =>
      f.proto === ICMP && f.icmpType === 0 && f.direction === EGRESS;
    assert.deepEqual(sum(flows, echo), { packets: PING_COUNT, bytes: PING_COUNT * PING_IPV4_FRAME });
    assert.deepEqual(sum(flows, reply), { packets: PING_COUNT, bytes: PING_COUNT * PING_IPV4_FRAME });
    assert.deepEqual(
      sum(flows, (f) => f.direction === INGRESS),
      { packets: delta.rxPackets, bytes: delta.rxBytes },
    );
    assert.deepEqual(
      sum(flows, (f) => f.direction === EGRESS),
      { packets: delta.txPackets, bytes: delta.txBytes },
    );
    assert.ok(
      flows.every((f) => f.interface === pair.hostIf),
      'every flow names the interface',
    );
  });
}

test('a tcp connection is counted in both directions with its handshake and close flags, and all flows add up to the interface counters', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3c5');
  t.after(() => pair.cleanup());
  const server = createTcpServer((socket) => {
    socket.resume();
    socket.on('end', () => socket.end());
  });
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, pair.hostAddr4, resolve));
  const port = (server.address() as { port: number }).port;
  // Drained only at stop: a connection slowed past a periodic drain would otherwise be two records.
  const { capture, flows, done } = await openCollecting(t, { drainIntervalMs: 60_000 });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);

  const payloadBytes = 100_000;
  const tcp = await sendTraffic(pair, { kind: 'tcp', host: pair.hostAddr4, port, bytes: payloadBytes });
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const delta = counterDelta(before, after);
  const toServer = flows.filter(flowOf(INGRESS, TCP, pair.nsAddr4, pair.hostAddr4, tcp.srcPorts[0], port));
  const toClient = flows.filter(flowOf(EGRESS, TCP, pair.hostAddr4, pair.nsAddr4, port, tcp.srcPorts[0]));
  assert.equal(toServer.length, 1, 'one flow client to server');
  assert.equal(toClient.length, 1, 'one flow server to client');
  assert.equal(toServer[0].tcpFlags & (TCP_SYN | TCP_FIN | TCP_ACK), TCP_SYN | TCP_FIN | TCP_ACK);
  assert.equal(toClient[0].tcpFlags & (TCP_SYN | TCP_FIN | TCP_ACK), TCP_SYN | TCP_FIN | TCP_ACK);
  assert.ok(toServer[0].bytes > payloadBytes, 'the payload is inside the client flow');
  assert.ok(toServer[0].timeFlowEndNs > toServer[0].timeFlowStartNs, 'the flow spans time');
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  assert.ok(
    nowNs - toServer[0].timeFlowStartNs < 60_000_000_000n,
    'times are Unix-epoch, within the last minute',
  );
  assert.ok(toServer[0].timeFlowEndNs <= nowNs, 'times are not in the future');
  assert.deepEqual(
    sum(flows, (f) => f.direction === INGRESS),
    { packets: delta.rxPackets, bytes: delta.rxBytes },
  );
  assert.deepEqual(
    sum(flows, (f) => f.direction === EGRESS),
    { packets: delta.txPackets, bytes: delta.txBytes },
  );
});

test('udp datagrams and icmpv6 echo over ipv6 are counted exactly, and all flows including neighbour discovery add up to the interface counters', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3c6', { ipv6: true });
  t.after(() => pair.cleanup());
  const port = await udpSink(t, pair.hostAddr6);
  await waitForQuiet(pair.hostIf);
  const { capture, flows, done } = await openCollecting(t);
  await capture.attach(pair.hostIf);
  const before = readInterfaceCounters(pair.hostIf);

  const datagrams = 25;
  const payloadBytes = 333;
  const udp = await sendTraffic(pair, {
    kind: 'udp',
    host: pair.hostAddr6,
    port,
    count: datagrams,
    payloadBytes,
  });
  await pair.exec('ping', ['-6', '-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr6]);
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const delta = counterDelta(before, after);
  assert.deepEqual(sum(flows, flowOf(INGRESS, UDP, pair.nsAddr6, pair.hostAddr6, udp.srcPorts[0], port)), {
    packets: datagrams,
    bytes: datagrams * (ETH_IPV6_UDP_HEADERS + payloadBytes),
  });
  const echo = flowOf(INGRESS, ICMPV6, pair.nsAddr6, pair.hostAddr6, 0, 0);
  const reply = flowOf(EGRESS, ICMPV6, pair.hostAddr6, pair.nsAddr6, 0, 0);
  assert.deepEqual(
    sum(flows, (f) => echo(f) && f.icmpType === 128),
    {
      packets: PING_COUNT,
      bytes: PING_COUNT * PING_IPV6_FRAME,
    },
  );
  assert.deepEqual(
    sum(flows, (f) => reply(f) && f.icmpType === 129),
    {
      packets: PING_COUNT,
      bytes: PING_COUNT * PING_IPV6_FRAME,
    },
  );
  assert.deepEqual(
    sum(flows, (f) => f.direction === INGRESS),
    { packets: delta.rxPackets, bytes: delta.rxBytes },
  );
  assert.deepEqual(
    sum(flows, (f) => f.direction === EGRESS),
    { packets: delta.txPackets, bytes: delta.txBytes },
  );
});

test('with direction ingress only arriving packets are counted', { skip }, async (t) => {
  const pair = await createVethPair('fte3c7');
  t.after(() => pair.cleanup());
  const { capture, flows, done } = await openCollecting(t, { direction: 'ingress' });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);
  await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const delta = counterDelta(before, after);
  assert.ok(delta.txPackets >= PING_COUNT, 'replies left the interface');
  assert.equal(sum(flows, (f) => f.direction === EGRESS).packets, 0);
  assert.deepEqual(sum(flows), { packets: delta.rxPackets, bytes: delta.rxBytes });
});
