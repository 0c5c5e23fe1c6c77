/** Watch mode against the real kernel: needs root (creates veths named ftaw*, removed afterwards). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { type TestContext, test } from 'node:test';
import { InterfaceFilter } from '../../src/ifaces/filter.ts';
import { LinkMonitorWatcher } from '../../src/ifaces/link-monitor.ts';
import type { InterfaceEvent } from '../../src/ifaces/tracker.ts';
import { run } from '../net/netns.ts';

/** Pids of the direct children of this process. */
function childPids(): number[] {
  const pids: number[] = [];
  for (const task of readdirSync('/proc/self/task')) {
    const text = readFileSync(`/proc/self/task/${task}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
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

test('watch mode adds a veth pair when it comes up and removes it when deleted', async (t) => {
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

test('watch mode removes an interface that is set down and adds it back when it is up', async (t) => {
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

test('stopping the watcher ends its ip monitor child process', async (t) => {
  const before = new Set(childPids());
  const { watcher } = watch(t);
  await watcher.start();
  const monitors = childPids().filter(
    (pid) => !before.has(pid) && commandOf(pid).startsWith('ip -o monitor'),
  );
  assert.equal(monitors.length, 1, 'one ip monitor runs while watching');
  await watcher.stop();
  assert.equal(commandOf(monitors[0]), '', 'the ip monitor process is gone');
});
