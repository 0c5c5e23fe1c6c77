import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { EbpfCapture } from '../../../src/capture/ebpf/capture.ts';
import { ConfigError, InterfaceError } from '../../../src/errors.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { counterDelta, createVethPair, readInterfaceCounters, run, waitForQuiet } from '../../net/netns.ts';
import { trafficCommand } from '../../net/traffic.ts';
import {
  assertNothingLeft,
  bpfFdCount,
  openCollecting,
  startFixture,
  sum,
  tcFilters,
  waitForExit,
} from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs to veths in network namespaces');

const INGRESS = 0;
const UDP = 17;
const ICMP = 1;
const PING_COUNT = 3;
const NOBODY = 65534;

test('stopping in the middle of traffic hands out every packet counted, then leaves no program, filter, qdisc, map or link behind', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3l1');
  t.after(() => pair.cleanup());
  const sink = createSocket('udp4');
  t.after(() => sink.close());
  let received = 0;
  sink.on('message', () => received++);
  await new Promise<void>((resolve) => sink.bind(0, pair.hostAddr4, resolve));
  const fdsBefore = bpfFdCount();
  // A long drain interval leaves everything in the kernel map until stop() drains it.
  const { capture, flows, done } = await openCollecting(t, { drainIntervalMs: 60_000 });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);

  const [cmd, ...args] = trafficCommand({
    kind: 'udp',
    host: pair.hostAddr4,
    port: sink.address().port,
    count: 1_000_000,
    payloadBytes: 64,
  });
  const sender = pair.spawn(cmd, args);
  t.after(async () => {
    if (sender.pid !== undefined && sender.exitCode === null) process.kill(sender.pid, 'SIGKILL');
    await waitForExit(sender);
  });
  const deadline = Date.now() + 20_000;
  while (received < 2000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(received >= 2000, 'traffic flows');
  const receivedBeforeStop = received;
  await capture.stop();
  const after = readInterfaceCounters(pair.hostIf);
  await done;

  const counted = sum(flows, (f) => f.direction === INGRESS && f.proto === UDP).packets;
  assert.ok(
    counted >= receivedBeforeStop,
    `${counted} counted ≥ ${receivedBeforeStop} delivered before stop`,
  );
  assert.ok(counted <= counterDelta(before, after).rxPackets, 'no more than the interface received');
  assert.equal(capture.stats().drains, 2, 'only the final drains ran');
  await assertNothingLeft(pair.hostIf, fdsBefore);
});

test('flows counted before an interface is detached are still handed out, and none after', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3l2');
  t.after(() => pair.cleanup());
  const fdsBefore = bpfFdCount();
  const { capture, flows, done } = await openCollecting(t);
  await capture.attach(pair.hostIf);
  await capture.attach(pair.hostIf);
  assert.deepEqual(capture.attached(), [pair.hostIf], 'attaching twice attaches once');
  await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
  await capture.detach(pair.hostIf);
  assert.deepEqual(capture.attached(), []);
  await assertNothingLeftOnInterfaceOnly(pair.hostIf);
  await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
  await capture.stop();
  await done;

  const echo = sum(flows, (f) => f.direction === INGRESS && f.proto === ICMP && f.icmpType === 8);
  assert.equal(echo.packets, PING_COUNT);
  await assertNothingLeft(pair.hostIf, fdsBefore);
});

async function assertNothingLeftOnInterfaceOnly(ifName: string): Promise<void> {
  assert.doesNotMatch(await run('tc', ['qdisc', 'show', 'dev', ifName]), /clsact/);
}

test('in clsact mode the filters count traffic and a clsact qdisc flowtap did not create is kept on stop', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3l3');
  t.after(() => pair.cleanup());
  await run('tc', ['qdisc', 'add', 'dev', pair.hostIf, 'clsact']);
  const fdsBefore = bpfFdCount();
  const { capture, flows, done } = await openCollecting(t, { attachMode: 'clsact' });
  const before = readInterfaceCounters(pair.hostIf);
  await capture.attach(pair.hostIf);
  assert.match(await tcFilters(pair.hostIf, 'ingress'), /flowtap_ingress/);
  assert.match(await tcFilters(pair.hostIf, 'egress'), /flowtap_egress/);
  await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
  const after = await waitForQuiet(pair.hostIf, 200);
  await capture.stop();
  await done;

  const delta = counterDelta(before, after);
  assert.deepEqual(sum(flows), {
    packets: delta.rxPackets + delta.txPackets,
    bytes: delta.rxBytes + delta.txBytes,
  });
  await assertNothingLeft(pair.hostIf, fdsBefore, true);
});

test('in clsact mode a clsact qdisc flowtap created is removed on stop', { skip }, async (t) => {
  const pair = await createVethPair('fte3l4');
  t.after(() => pair.cleanup());
  const fdsBefore = bpfFdCount();
  const { capture, done } = await openCollecting(t, { attachMode: 'clsact' });
  await capture.attach(pair.hostIf);
  assert.match(await run('tc', ['qdisc', 'show', 'dev', pair.hostIf]), /clsact/);
  await capture.stop();
  await done;
  await assertNothingLeft(pair.hostIf, fdsBefore);
});

test('tc filters left by a killed flowtap are replaced by the next run and removed when it stops', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3l5');
  t.after(() => pair.cleanup());
  const crashed = startFixture({ attachMode: 'clsact' }, pair.hostIf);
  t.after(async () => {
    if (crashed.child.exitCode === null) crashed.child.kill('SIGKILL');
    await waitForExit(crashed.child);
  });
  assert.equal(await crashed.firstLine, 'READY');
  crashed.child.kill('SIGKILL');
  await waitForExit(crashed.child);
  assert.match(await tcFilters(pair.hostIf, 'ingress'), /flowtap_ingress/, 'the killed run left its filter');

  const fdsBefore = bpfFdCount();
  const { capture, flows, done } = await openCollecting(t, { attachMode: 'clsact' });
  await capture.attach(pair.hostIf);
  assert.equal(
    (await tcFilters(pair.hostIf, 'ingress')).match(/flowtap_ingress:\[/g)?.length,
    1,
    "one flowtap filter: the killed run's is gone",
  );
  assert.match(await tcFilters(pair.hostIf, 'ingress'), new RegExp(`handle 0x${process.pid.toString(16)} `));
  await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
  await capture.stop();
  await done;

  assert.equal(sum(flows, (f) => f.proto === ICMP && f.icmpType === 8).packets, PING_COUNT);
  // The killed run created the clsact qdisc; this run cannot know that, so it keeps it.
  await assertNothingLeft(pair.hostIf, fdsBefore, true);
});

test('TCX links of a killed flowtap vanish with its process', { skip }, async (t) => {
  const pair = await createVethPair('fte3l6');
  t.after(() => pair.cleanup());
  const crashed = startFixture({ attachMode: 'tcx' }, pair.hostIf);
  t.after(async () => {
    if (crashed.child.exitCode === null) crashed.child.kill('SIGKILL');
    await waitForExit(crashed.child);
  });
  assert.equal(await crashed.firstLine, 'READY');
  crashed.child.kill('SIGKILL');
  await waitForExit(crashed.child);
  await assertNothingLeft(pair.hostIf, bpfFdCount());
});

test('without privileges opening a capture fails with a PermissionError that says to run as root or read a pcap file', async () => {
  const { child, firstLine } = startFixture({}, '', { uid: NOBODY, gid: NOBODY });
  const line = JSON.parse(await firstLine) as { name: string; code: string; message: string };
  await waitForExit(child);
  assert.equal(child.exitCode, 3);
  assert.equal(line.name, 'PermissionError');
  assert.match(line.message, /CAP_BPF/);
  assert.match(line.message, /CAP_NET_ADMIN/);
  assert.match(line.message, /root/);
  assert.match(line.message, /flowtap read FILE/);
});

test('attaching to an interface that does not exist fails with an InterfaceError naming it', {
  skip,
}, async (t) => {
  const { capture } = await openCollecting(t);
  await assert.rejects(
    capture.attach('fte-missing0'),
    (err) => err instanceof InterfaceError && /fte-missing0 does not exist/.test(err.message),
  );
  assert.deepEqual(capture.attached(), []);
});

test('an unknown direction is rejected with a ConfigError before anything is loaded', async () => {
  await assert.rejects(
    EbpfCapture.open({
      sampling: 1,
      direction: 'sideways' as 'both',
      maxFlows: 10,
      drainIntervalMs: 100,
      interfaces: new InterfaceRegistry(),
    }),
    (err) => err instanceof ConfigError && err.setting === 'direction',
  );
});
