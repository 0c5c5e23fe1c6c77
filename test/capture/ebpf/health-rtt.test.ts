import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, run } from '../../net/netns.ts';
import { closeTcp, connectTcp, exchange, openHealthPipeline, startPeer, tcpInfo } from './health-helpers.ts';
import { flowOf, sendTraffic } from './helpers.ts';

const skip = skipUnlessKernel('hook TCP health programs and slow a veth with tbf in network namespaces');

const INGRESS = 0;
const EGRESS = 1;
const TCP = 6;
/**
 * One 1000-byte message per round trip through a tbf of 200 kbit/s whose bucket holds one frame:
 * each message waits for the bucket to refill, 1066 B x 8 / 200 kbit/s = 43 ms, so every RTT
 * sample is the same and the socket's smoothed RTT settles there within the rounds.
 */
const TBF = ['rate', '200kbit', 'burst', '1600', 'limit', '10000'];
const MESSAGE_BYTES = 1000;
const ROUNDS = 40;
const RTT_TOLERANCE = 0.1;
const NS_PER_MS = 1e6;

for (const hooks of ['auto', 'tracepoint'] as const) {
  test(`a flow's RTT over a veth slowed by tbf is the socket's own smoothed RTT (ss -ti) within 10% (HEALTH_HOOKS=${hooks})`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(hooks === 'auto' ? 'fthr1' : 'fthr2');
    t.after(() => pair.cleanup());
    await run('tc', ['qdisc', 'add', 'dev', pair.hostIf, 'root', 'tbf', ...TBF]);
    const port = await startPeer(t, pair, MESSAGE_BYTES);
    const live = await openHealthPipeline(t, { rtt: true, retrans: false, drops: false, hooks });
    for (const choice of live.capture.healthHooks) {
      assert.ok(choice.hook, `${choice.feature} is hooked (${choice.refused.join('; ')})`);
      if (hooks === 'tracepoint') assert.ok(choice.hook.raw, 'forced to a raw tracepoint');
    }
    await live.capture.attach(pair.hostIf);

    const socket = await connectTcp(t, pair.nsAddr4, port);
    const localPort = socket.localPort ?? 0;
    for (let i = 0; i < ROUNDS; i++) await exchange(socket, MESSAGE_BYTES);
    const kernel = await tcpInfo(localPort);
    await closeTcp(socket);
    const flows = await live.finish();

    // The answers reach this host's socket: their flow carries that socket's smoothed RTT.
    const answers = flows.filter(flowOf(INGRESS, TCP, pair.nsAddr4, pair.hostAddr4, port, localPort));
    assert.equal(answers.length, 1);
    const rtt = answers[0].health?.rtt;
    assert.ok(rtt, 'the answers flow has RTT samples');
    assert.ok(rtt.samples >= ROUNDS, `a sample per segment received (${rtt.samples})`);
    const lastMs = Number(rtt.lastNs) / NS_PER_MS;
    t.diagnostic(`flow RTT ${lastMs} ms (${rtt.samples} samples), ss ${kernel.rttMs} ms`);
    assert.ok(
      Math.abs(lastMs - kernel.rttMs) <= kernel.rttMs * RTT_TOLERANCE,
      `flow RTT ${lastMs} ms vs ss ${kernel.rttMs} ms`,
    );
    assert.ok(kernel.rttMs > 20, `tbf slowed the round trips (${kernel.rttMs} ms)`);
    assert.ok(rtt.minNs <= rtt.lastNs && rtt.lastNs <= rtt.maxNs);
  });
}

test('the handshake of an unslowed connection takes under 1 ms, timed on the client side and on the server side', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fthr3');
  t.after(() => pair.cleanup());
  const peerPort = await startPeer(t, pair, 1);
  const server = createServer((s) => s.resume().on('end', () => s.end()));
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, pair.hostAddr4, resolve));
  const serverPort = (server.address() as { port: number }).port;
  const live = await openHealthPipeline(t, { rtt: true, retrans: false, drops: false, hooks: 'auto' });
  await live.capture.attach(pair.hostIf);

  // This host connects out: SYN leaves, SYN-ACK arrives (client side).
  const socket = await connectTcp(t, pair.nsAddr4, peerPort);
  const clientPort = socket.localPort ?? 0;
  await exchange(socket, 1);
  await closeTcp(socket);
  // A connection comes in: SYN arrives, SYN-ACK leaves, ACK arrives (server side).
  const sent = await sendTraffic(pair, { kind: 'tcp', host: pair.hostAddr4, port: serverPort, bytes: 10 });
  const flows = await live.finish();

  const outgoing = flows.filter(flowOf(EGRESS, TCP, pair.hostAddr4, pair.nsAddr4, clientPort, peerPort));
  const incoming = flows.filter(
    flowOf(INGRESS, TCP, pair.nsAddr4, pair.hostAddr4, sent.srcPorts[0], serverPort),
  );
  for (const [side, found] of [
    ['client', outgoing],
    ['server', incoming],
  ] as const) {
    assert.equal(found.length, 1, `one ${side}-side flow`);
    const handshake = found[0].health?.handshakeRttNs;
    assert.ok(handshake !== undefined, `the ${side} side timed the handshake`);
    assert.ok(handshake > 0n && handshake < 1_000_000n, `${side} side: ${handshake} ns`);
    t.diagnostic(`${side}-side handshake ${handshake} ns`);
  }
});

test('RTT and handshake are keyed by IPv6 addresses for IPv6 sockets, and IPv4 for an IPv6 socket talking to an IPv4 peer', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fthr4', { ipv6: true });
  t.after(() => pair.cleanup());
  const peerPort = await startPeer(t, pair, 1, pair.nsAddr6);
  // A dual-stack server: the IPv4 connection below reaches it as ::ffff:a.b.c.d.
  const server = createServer((s) => s.on('data', () => s.write('!')).on('end', () => s.end()));
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  const serverPort = (server.address() as { port: number }).port;
  const live = await openHealthPipeline(t, { rtt: true, retrans: false, drops: false, hooks: 'auto' });
  await live.capture.attach(pair.hostIf);

  const socket = await connectTcp(t, pair.nsAddr6, peerPort);
  const clientPort = socket.localPort ?? 0;
  for (let i = 0; i < 3; i++) await exchange(socket, 1);
  await closeTcp(socket);
  const sent = await sendTraffic(pair, { kind: 'tcp', host: pair.hostAddr4, port: serverPort, bytes: 10 });
  const flows = await live.finish();

  const v6Answers = flows.filter(flowOf(INGRESS, TCP, pair.nsAddr6, pair.hostAddr6, peerPort, clientPort));
  assert.equal(v6Answers.length, 1);
  assert.equal(v6Answers[0].etype, 0x86dd);
  assert.ok(v6Answers[0].health?.rtt, 'the IPv6 answers carry the client socket RTT');
  const v6Out = flows.filter(flowOf(EGRESS, TCP, pair.hostAddr6, pair.nsAddr6, clientPort, peerPort));
  assert.ok(v6Out[0]?.health?.handshakeRttNs, 'the IPv6 handshake is timed');
  const mapped = flows.filter(
    flowOf(INGRESS, TCP, pair.nsAddr4, pair.hostAddr4, sent.srcPorts[0], serverPort),
  );
  assert.equal(mapped.length, 1);
  assert.equal(mapped[0].etype, 0x0800);
  assert.ok(mapped[0].health?.rtt, 'the dual-stack server socket samples land on the IPv4 flow');
});
