/**
 * `flowtap run` end to end: the real CLI with eBPF capture on veths in test namespaces (prefix fta).
 * Needs root and a kernel with BTF; every veth and namespace is removed in t.after.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { attachedProgramNames } from '../../src/ebpf/attach.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { run } from '../net/netns.ts';
import { alive, childPidsOf, egressFrom, ftaPair, sendUdp, startFlowtap } from './live.ts';

const PAYLOAD_BYTES = 100;
const skip = skipUnlessKernel('attach the agent to veths in network namespaces');
/** Ethernet + IPv4 + UDP headers. */
const HEADER_BYTES = 14 + 20 + 8;

function ifIndexOf(ifName: string): number {
  return Number(readFileSync(`/sys/class/net/${ifName}/ifindex`, 'utf8'));
}

test('run prints the flows of known traffic as JSON lines and exits 0 on SIGTERM', { skip }, async (t) => {
  const pair = await ftaPair(t, 1);
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '300ms']);
  await flowtap.untilLog('attached', pair.hostIf);
  const srcPort = await sendUdp(pair.nsAddr, 9, 20, PAYLOAD_BYTES);
  await flowtap.until(
    () => egressFrom(flowtap.flows, pair.hostIf, srcPort).packets >= 20,
    'the 20 datagrams',
  );
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);
  assert.deepEqual(egressFrom(flowtap.flows, pair.hostIf, srcPort), {
    packets: 20,
    bytes: 20 * (HEADER_BYTES + PAYLOAD_BYTES),
  });
  const flow = flowtap.flows.find((f) => f.Transport.SrcPort === srcPort);
  assert.deepEqual(flow?.Network, { SrcAddr: pair.hostAddr, DstAddr: pair.nsAddr });
  assert.equal(flow?.Transport.DstPort, 9);
  assert.deepEqual(attachedProgramNames(ifIndexOf(pair.hostIf)), [], 'nothing stays attached');
  assert.doesNotMatch(await run('tc', ['qdisc', 'show', 'dev', pair.hostIf]), /clsact/);
});

test('SIGTERM in the middle of traffic exports every packet counted before it', { skip }, async (t) => {
  const pair = await ftaPair(t, 2);
  // An active timeout longer than the test: only the drain and flush at stop can export these flows.
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '10m']);
  await flowtap.untilLog('attached', pair.hostIf);
  const before = await sendUdp(pair.nsAddr, 9, 500, PAYLOAD_BYTES);
  // Traffic keeps flowing from another port while the agent stops.
  const stopSending = new AbortController();
  const during = (async () => {
    let sent = 0;
    while (!stopSending.signal.aborted && sent < 20_000) {
      await sendUdp(pair.nsAddr, 10, 10, PAYLOAD_BYTES);
      sent += 10;
    }
  })();
  flowtap.child.kill('SIGTERM');
  const code = await flowtap.exited;
  stopSending.abort();
  await during;
  assert.equal(code, 0);
  assert.equal(flowtap.flows.length > 0 && flowtap.stdout().endsWith('\n'), true, 'whole JSON lines only');
  assert.deepEqual(egressFrom(flowtap.flows, pair.hostIf, before, 9), {
    packets: 500,
    bytes: 500 * (HEADER_BYTES + PAYLOAD_BYTES),
  });
  const summary = flowtap.logs.find((l) => l.msg === 'agent stopped');
  const health = summary?.health as { flowsEvicted: { timeout: number; end: number } };
  assert.equal(health.flowsEvicted.timeout, 0, 'no flow was evicted by the timer');
  assert.ok(health.flowsEvicted.end > 0, 'flows were flushed at the end');
});

for (const mode of ['watch', 'poll'] as const) {
  test(`in ${mode} mode veths added while running are attached, and detached when deleted`, {
    skip,
  }, async (t) => {
    const n = mode === 'watch' ? 3 : 4;
    const flowtap = startFlowtap(t, [
      '-i',
      `/^fta${n}[01]$/`,
      '--listen-interfaces',
      mode,
      '--listen-poll-period',
      '200ms',
    ]);
    await flowtap.untilLog('agent started');
    const pair = await ftaPair(t, n);
    await flowtap.untilLog('attached', pair.hostIf);
    assert.notDeepEqual(attachedProgramNames(ifIndexOf(pair.hostIf)), [], 'programs are attached');
    const hostIndex = ifIndexOf(pair.hostIf);
    await run('ip', ['link', 'del', pair.hostIf]);
    await flowtap.untilLog('detached', pair.hostIf);
    // The pair again: attached again under its new index.
    const again = await ftaPair(t, n);
    await flowtap.until(
      () => flowtap.logs.filter((l) => l.msg === 'attached' && l.interface === again.hostIf).length === 2,
      'the second attach',
    );
    assert.notEqual(ifIndexOf(again.hostIf), hostIndex);
    const children = childPidsOf(flowtap.child.pid as number);
    flowtap.child.kill('SIGTERM');
    assert.equal(await flowtap.exited, 0);
    assert.deepEqual(attachedProgramNames(ifIndexOf(again.hostIf)), [], 'nothing stays attached');
    for (const pid of children) assert.equal(alive(pid), false, `child ${pid} of flowtap is gone`);
    assert.equal(
      flowtap.logs.some((l) => l.level >= 50),
      false,
      'no error was logged',
    );
  });
}

test('run refuses a flow cache whose kernel maps exceed KERNEL_MEMORY_MAX with exit 2 and the figure', async (t) => {
  const flowtap = startFlowtap(t, [
    '-i',
    'lo',
    '--cache-max-flows',
    '16777216',
    '--kernel-memory-max',
    '64MiB',
  ]);
  assert.equal(await flowtap.exited, 2);
  const said = flowtap.logs.map((l) => l.msg).join('\n');
  assert.match(said, /16777216 flows need [\d.]+ GiB of kernel memory/);
  assert.match(said, /raise KERNEL_MEMORY_MAX/);
  assert.doesNotMatch(said, /\n\s+at /, 'no stack trace');
});

test('run logs the kernel memory the datapath takes when it starts', { skip }, async (t) => {
  const pair = await ftaPair(t, 9);
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--kernel-map-kind', 'shared']);
  const line = await flowtap
    .untilLog('attached', pair.hostIf)
    .then(() => flowtap.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('datapath loaded')));
  assert.match(String(line?.msg), /of kernel memory \(shared flow maps\)/);
  assert.ok(Number(line?.kernelMemoryBytes) > 2 ** 24);
  flowtap.child.kill('SIGTERM');
  assert.equal(
    await flowtap.exited,
    0,
    `signal ${flowtap.child.signalCode}; logs: ${JSON.stringify(flowtap.logs.slice(-6))}`,
  );
});

test('run --duration 2s stops on its own with exit 0 and flushes the flows counted before', {
  skip,
}, async (t) => {
  const pair = await ftaPair(t, 5);
  // An active timeout longer than the run: only the flush at the end can export the flow.
  const startedMs = performance.now();
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '10m', '--duration', '2s']);
  await flowtap.untilLog('attached', pair.hostIf);
  const srcPort = await sendUdp(pair.nsAddr, 9, 20, PAYLOAD_BYTES);
  assert.equal(await flowtap.exited, 0);
  // The duration counts from the process's start; how long start-up and the flush take depends on
  // the machine's load, so only the lower bound is asserted.
  const elapsedMs = performance.now() - startedMs;
  assert.ok(elapsedMs >= 2_000, `exited after ${Math.round(elapsedMs)} ms`);
  assert.deepEqual(egressFrom(flowtap.flows, pair.hostIf, srcPort), {
    packets: 20,
    bytes: 20 * (HEADER_BYTES + PAYLOAD_BYTES),
  });
  assert.ok(flowtap.logs.some((l) => /--duration of 2000 ms reached/.test(String(l.msg))));
});

test('run -i with an interface that does not exist warns at once and says so in its health', {
  skip,
}, async (t) => {
  const flowtap = startFlowtap(t, ['-i', 'fta-nosuch0', '--metrics', '127.0.0.1:0']);
  const warning = await flowtap.untilLog('interface fta-nosuch0 does not exist: waiting for it to appear');
  assert.equal(warning.level, 40);
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);
  const summary = flowtap.logs.find((l) => l.msg === 'agent stopped');
  const health = summary?.health as { warnings: string[] };
  assert.deepEqual(health.warnings, ['no interface attached yet']);
});
