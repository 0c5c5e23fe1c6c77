import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { InterfaceFilter } from '../../src/ifaces/filter.ts';
import { PollWatcher } from '../../src/ifaces/poll-watcher.ts';
import type { InterfaceEvent } from '../../src/ifaces/tracker.ts';

/** A fake /sys/class/net the test edits, removed afterwards. */
function fakeSysfs(t: TestContext) {
  const root = mkdtempSync(join(tmpdir(), 'flowtap-sysfs-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  return {
    root,
    set(name: string, ifIndex: number, flagsHex: string, operstate: string) {
      mkdirSync(join(root, name), { recursive: true });
      writeFileSync(join(root, name, 'ifindex'), `${ifIndex}\n`);
      writeFileSync(join(root, name, 'flags'), `${flagsHex}\n`);
      writeFileSync(join(root, name, 'operstate'), `${operstate}\n`);
    },
    remove(name: string) {
      rmSync(join(root, name), { recursive: true, force: true });
    },
  };
}

/** Resolves with the next event, or rejects after `deadlineMs`. */
function nextEvent(queue: InterfaceEvent[], waiters: Array<() => void>, deadlineMs = 5_000) {
  return new Promise<InterfaceEvent>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no interface event before the deadline')), deadlineMs);
    const check = () => {
      const e = queue.shift();
      if (!e) return void waiters.push(check);
      clearTimeout(timer);
      resolve(e);
    };
    check();
  });
}

function startWatcher(t: TestContext, root: string) {
  const queue: InterfaceEvent[] = [];
  const waiters: Array<() => void> = [];
  const watcher = new PollWatcher({
    filter: new InterfaceFilter([], ['lo']),
    listener: (e) => {
      queue.push(e);
      for (const w of waiters.splice(0)) w();
    },
    pollPeriodMs: 20,
    sysClassNet: root,
  });
  t.after(() => watcher.stop());
  return { watcher, next: () => nextEvent(queue, waiters), queue };
}

test('poll mode adds interfaces that are up at start and ignores lo and down ones', async (t) => {
  const fs = fakeSysfs(t);
  fs.set('lo', 1, '0x9', 'unknown');
  fs.set('eth1', 2, '0x1003', 'up');
  fs.set('eth2', 3, '0x1002', 'down');
  const { watcher, queue } = startWatcher(t, fs.root);
  await watcher.start();
  assert.deepEqual(queue, [{ kind: 'added', name: 'eth1', ifIndex: 2 }]);
  assert.deepEqual([...watcher.current()], [['eth1', 2]]);
});

test('poll mode reports an interface that appears, then its removal', async (t) => {
  const fs = fakeSysfs(t);
  const { watcher, next } = startWatcher(t, fs.root);
  await watcher.start();
  fs.set('veth9', 40, '0x1003', 'up');
  assert.deepEqual(await next(), { kind: 'added', name: 'veth9', ifIndex: 40 });
  fs.remove('veth9');
  assert.deepEqual(await next(), { kind: 'removed', name: 'veth9', ifIndex: 40 });
});

test('poll mode treats an interface whose lower layer is down as not there', async (t) => {
  const fs = fakeSysfs(t);
  fs.set('veth9', 40, '0x1003', 'lowerlayerdown');
  const { watcher, next, queue } = startWatcher(t, fs.root);
  await watcher.start();
  assert.equal(queue.length, 0);
  fs.set('veth9', 40, '0x1003', 'up');
  assert.deepEqual(await next(), { kind: 'added', name: 'veth9', ifIndex: 40 });
});
