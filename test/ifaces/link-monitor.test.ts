/** Watch mode against the real kernel: needs root (creates veths named ftaw*, removed afterwards). */
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { InterfaceFilter } from '../../src/ifaces/filter.ts';
import { LinkMonitorWatcher } from '../../src/ifaces/link-monitor.ts';
import type { InterfaceEvent } from '../../src/ifaces/tracker.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { run } from '../net/netns.ts';

const skip = skipUnlessKernel('create veths');

/** What this process's fds are (`socket:[…]`, `pipe:[…]`, paths), sorted. */
function openFds(): string[] {
  const targets: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      targets.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the fd of the listing itself is gone by now
    }
  }
  return targets.sort();
}

async function vethInRoot(t: TestContext, a: string, b: string): Promise<void> {
  await run('ip', ['link', 'del', a]).catch(() => undefined);
  t.after(() => run('ip', ['link', 'del', a]).catch(() => undefined));
  await run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
}

function watch(t: TestContext) {
  const events: InterfaceEvent[] = [];
  let wake: (() => void) | undefined;
  const watcher = new LinkMonitorWatcher({
    filter: new InterfaceFilter(['/^ftaw[01]$/'], []),
    listener: (e) => {
      events.push(e);
      wake?.();
    },
  });
  t.after(() => watcher.stop());
  /** Waits until `events` holds `count` events, or fails after 5 s. */
  const until = async (count: number) => {
    const deadline = Date.now() + 5_000;
    while (events.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`expected ${count} events, got ${JSON.stringify(events)}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, left).unref();
      });
    }
  };
  return { watcher, events, until };
}

test('watch mode adds a veth pair when it comes up and removes it when deleted', { skip }, async (t) => {
  const { watcher, events, until } = watch(t);
  await watcher.start();
  assert.equal(events.length, 0);
  await vethInRoot(t, 'ftaw0', 'ftaw1');
  await run('ip', ['link', 'set', 'ftaw0', 'up']);
  await run('ip', ['link', 'set', 'ftaw1', 'up']);
  await until(2);
  assert.deepEqual(events.map((e) => `${e.kind} ${e.name}`).sort(), ['added ftaw0', 'added ftaw1']);
  await run('ip', ['link', 'del', 'ftaw0']);
  await until(4);
  assert.deepEqual(
    events
      .slice(2)
      .map((e) => `${e.kind} ${e.name}`)
      .sort(),
    ['removed ftaw0', 'removed ftaw1'],
  );
});

test('watch mode removes an interface that is set down and adds it back when it is up', {
  skip,
}, async (t) => {
  await vethInRoot(t, 'ftaw0', 'ftaw1');
  await run('ip', ['link', 'set', 'ftaw0', 'up']);
  await run('ip', ['link', 'set', 'ftaw1', 'up']);
  const { watcher, events, until } = watch(t);
  await watcher.start();
  await until(2);
  await run('ip', ['link', 'set', 'ftaw1', 'down']);
  // ftaw1 is down and ftaw0 loses its carrier: both go.
  await until(4);
  assert.deepEqual(
    events
      .slice(2)
      .map((e) => e.kind)
      .sort(),
    ['removed', 'removed'],
  );
  await run('ip', ['link', 'set', 'ftaw1', 'up']);
  await until(6);
  assert.deepEqual(
    events
      .slice(4)
      .map((e) => `${e.kind} ${e.name}`)
      .sort(),
    ['added ftaw0', 'added ftaw1'],
  );
});

test('stopping the watcher closes its netlink socket and wake-up pipe and ends its worker', async (t) => {
  const before = openFds();
  const { watcher } = watch(t);
  await watcher.start();
  const during = openFds();
  assert.equal(
    during.filter((f) => f.startsWith('socket:')).length,
    before.filter((f) => f.startsWith('socket:')).length + 1,
    'one netlink socket while watching',
  );
  await watcher.stop();
  assert.deepEqual(openFds(), before, 'every descriptor it opened is closed');
});
