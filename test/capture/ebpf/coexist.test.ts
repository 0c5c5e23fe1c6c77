/**
 * flowtap shares interfaces with other tc users and with other flowtap instances: it removes only
 * what it attached (veth prefix fte3x).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { counterDelta, createVethPair, readInterfaceCounters, run, waitForQuiet } from '../../net/netns.ts';
import { openCollecting, startFixture, sum, tcFilters, waitForExit } from './helpers.ts';

const skip = skipUnlessKernel('attach TC programs to veths in network namespaces');

const ICMP = 1;
const PING_COUNT = 3;

test('in clsact mode a foreign filter added after attach survives detach, and so does the clsact qdisc holding it', {
  skip,
}, async (t) => {
  const pair = await createVethPair('fte3x1');
  t.after(() => pair.cleanup());
  const { capture, done } = await openCollecting(t, { attachMode: 'clsact' });
  await capture.attach(pair.hostIf);
  // Another tool's filter, added while flowtap runs.
  await run('tc', [
    'filter',
    'add',
    'dev',
    pair.hostIf,
    'ingress',
    'prio',
    '7',
    'protocol',
    'all',
    'u32',
    'match',
    'u32',
    '0',
    '0',
  ]);
  await capture.stop();
  await done;
  assert.match(
    await run('tc', ['qdisc', 'show', 'dev', pair.hostIf]),
    /clsact/,
    'the qdisc holding it stays',
  );
  const left = await tcFilters(pair.hostIf, 'ingress');
  assert.match(left, /u32/, 'the foreign filter survives');
  assert.doesNotMatch(left, /flowtap_/, 'flowtap removed its own filter');
  assert.doesNotMatch(await tcFilters(pair.hostIf, 'egress'), /flowtap_/);
});

for (const mode of ['clsact', 'tcx'] as const) {
  test(`two flowtap instances on one veth (${mode}): stopping one leaves the other counting`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(mode === 'clsact' ? 'fte3x2' : 'fte3x3');
    t.after(() => pair.cleanup());
    const other = startFixture({ attachMode: mode }, pair.hostIf);
    t.after(async () => {
      if (other.child.exitCode === null) other.child.kill('SIGKILL');
      await waitForExit(other.child);
    });
    assert.equal(await other.firstLine, 'READY');
    const { capture, flows, done } = await openCollecting(t, { attachMode: mode });
    await capture.attach(pair.hostIf);
    if (mode === 'clsact') {
      const both = await tcFilters(pair.hostIf, 'ingress');
      assert.equal(both.match(/flowtap_ingress:\[/g)?.length, 2, "attaching kept the live instance's filter");
    }

    other.child.stdin.end(); // the other instance stops cleanly and detaches
    await waitForExit(other.child);
    assert.equal(other.child.exitCode, 0);
    if (mode === 'clsact') {
      const mine = await tcFilters(pair.hostIf, 'ingress');
      assert.equal(mine.match(/flowtap_ingress:\[/g)?.length, 1, "only this instance's filter is left");
      assert.match(mine, new RegExp(`handle 0x${process.pid.toString(16)} `));
    }

    const before = readInterfaceCounters(pair.hostIf);
    await pair.exec('ping', ['-c', String(PING_COUNT), '-i', '0.01', '-W', '2', pair.hostAddr4]);
    const after = await waitForQuiet(pair.hostIf, 200);
    await capture.stop();
    await done;
    const delta = counterDelta(before, after);
    assert.equal(sum(flows, (f) => f.proto === ICMP && f.icmpType === 8).packets, PING_COUNT);
    assert.ok(
      sum(flows).packets >= delta.rxPackets + delta.txPackets,
      'every packet after the other stopped',
    );
  });
}
