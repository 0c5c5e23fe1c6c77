import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { counterDelta, createVethPair, readInterfaceCounters, waitForQuiet } from '../../net/netns.ts';
import { flowOf, openCollecting, sendTraffic, sum } from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs to veths in network namespaces');

const INGRESS = 0;
const UDP = 17;
const ETH_IPV4_UDP_HEADERS = 14 + 20 + 8;

async function udpSink(t: { after: (fn: () => void) => void }, host: string): Promise<number> {
  const socket = createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return socket.address().port;
}

test('with 1-in-10 sampling the counted packets stay within six standard deviations of a tenth, and counted plus sampled out equals the interface counters', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3f1');
  t.after(() => pair.cleanup());
  const port = await udpSink(t, pair.hostAddr4);
  const sampling = 10;
  const { capture, flows, done } = await openCollecting(t, { sampling });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);

  const datagrams = 3000;
  const payloadBytes = 10;
  const udp = await sendTraffic(pair, {
    kind: 'udp',
    host: pair.hostAddr4,
    port,
    count: datagrams,
    payloadBytes,
  });
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const counted = sum(flows, flowOf(INGRESS, UDP, pair.nsAddr4, pair.hostAddr4, udp.srcPorts[0], port));
  const p = 1 / sampling;
  const mean = datagrams * p;
  const sixSd = 6 * Math.sqrt(datagrams * p * (1 - p));
  assert.ok(
    Math.abs(counted.packets - mean) <= sixSd,
    `${counted.packets} packets counted, expected ${mean} ± ${sixSd}`,
  );
  assert.equal(counted.bytes, counted.packets * (ETH_IPV4_UDP_HEADERS + payloadBytes));
  const delta = counterDelta(before, after);
  const sampledOut = capture.stats().sampledOut ?? -1;
  assert.equal(sum(flows).packets + sampledOut, delta.rxPackets + delta.txPackets);
});

test('when the kernel flow map is full every packet still arrives through the ring buffer and nothing is lost', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3f2');
  t.after(() => pair.cleanup());
  const port = await udpSink(t, pair.hostAddr4);
  const { capture, flows, done } = await openCollecting(t, { maxFlows: 4, ringBufferBytes: 1 << 16 });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);

  const flowCount = 60;
  const rounds = 3;
  const payloadBytes = 20;
  const udp = await sendTraffic(pair, {
    kind: 'udp',
    host: pair.hostAddr4,
    port,
    count: rounds,
    payloadBytes,
    flows: flowCount,
  });
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const stats = capture.stats();
  assert.ok(stats.ringBufferFallbacks > 0, 'some packets went through the ring buffer');
  assert.equal(stats.ringBufferLost, 0);
  for (const srcPort of udp.srcPorts) {
    assert.deepEqual(
      sum(flows, flowOf(INGRESS, UDP, pair.nsAddr4, pair.hostAddr4, srcPort, port)),
      { packets: rounds, bytes: rounds * (ETH_IPV4_UDP_HEADERS + payloadBytes) },
      `flow from port ${srcPort}`,
    );
  }
  const delta = counterDelta(before, after);
  assert.deepEqual(sum(flows), {
    packets: delta.rxPackets + delta.txPackets,
    bytes: delta.rxBytes + delta.txBytes,
  });
});
