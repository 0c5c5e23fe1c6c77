import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InterfaceFilter } from '../../src/ifaces/filter.ts';
import type { InterfaceState } from '../../src/ifaces/sysfs.ts';
import { type InterfaceEvent, InterfaceTracker } from '../../src/ifaces/tracker.ts';

function listing(entries: Record<string, [number, boolean]>): Map<string, InterfaceState> {
  return new Map(Object.entries(entries).map(([name, [ifIndex, up]]) => [name, { ifIndex, up }]));
}

function tracked(include: string[] = [], exclude: string[] = ['lo']) {
  const events: InterfaceEvent[] = [];
  const tracker = new InterfaceTracker(new InterfaceFilter(include, exclude), (e) => events.push(e));
  return { tracker, events };
}

test('the first listing adds every selected interface that is up', () => {
  const { tracker, events } = tracked();
  tracker.update(listing({ lo: [1, true], eth1: [2, true], eth2: [3, false] }));
  assert.deepEqual(events, [{ kind: 'added', name: 'eth1', ifIndex: 2 }]);
});

test('an interface that comes up is added and one that goes down is removed', () => {
  const { tracker, events } = tracked();
  tracker.update(listing({ eth1: [2, true], eth2: [3, false] }));
  events.length = 0;
  tracker.update(listing({ eth1: [2, false], eth2: [3, true] }));
  assert.deepEqual(events, [
    { kind: 'removed', name: 'eth1', ifIndex: 2 },
    { kind: 'added', name: 'eth2', ifIndex: 3 },
  ]);
});

test('an interface that disappears is removed once', () => {
  const { tracker, events } = tracked();
  tracker.update(listing({ eth1: [2, true] }));
  tracker.update(listing({}));
  tracker.update(listing({}));
  assert.deepEqual(
    events.map((e) => e.kind),
    ['added', 'removed'],
  );
  assert.equal(tracker.current.size, 0);
});

test('a name recreated with a new index is removed then added again', () => {
  const { tracker, events } = tracked();
  tracker.update(listing({ veth0: [7, true] }));
  tracker.update(listing({ veth0: [9, true] }));
  assert.deepEqual(events.slice(1), [
    { kind: 'removed', name: 'veth0', ifIndex: 7 },
    { kind: 'added', name: 'veth0', ifIndex: 9 },
  ]);
});

test('an unchanged listing emits nothing', () => {
  const { tracker, events } = tracked();
  tracker.update(listing({ eth1: [2, true] }));
  tracker.update(listing({ eth1: [2, true] }));
  assert.equal(events.length, 1);
});
