import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LOOKUPS_IN_FLIGHT, NAME_TTL_MS, ReverseNames } from '../../src/agent/reverse-names.ts';

/** A resolver the test answers by hand. */
function fakeResolver() {
  const pending = new Map<string, { resolve: (names: string[]) => void; reject: (err: Error) => void }>();
  const asked: string[] = [];
  const reverse = (address: string) =>
    new Promise<string[]>((resolve, reject) => {
      asked.push(address);
      pending.set(address, { resolve, reject });
    });
  return { reverse, asked, pending };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('an address shows as itself until its name arrives, then by name, looked up once', async () => {
  const { reverse, asked, pending } = fakeResolver();
  const names = new ReverseNames({ reverse });
  assert.equal(names.nameOf('192.0.2.1'), '192.0.2.1');
  assert.equal(names.nameOf('192.0.2.1'), '192.0.2.1');
  pending.get('192.0.2.1')?.resolve(['host.example']);
  await settle();
  assert.equal(names.nameOf('192.0.2.1'), 'host.example');
  assert.deepEqual(asked, ['192.0.2.1']);
});

test('a failed lookup is cached as the address until it expires, then asked again', async () => {
  const { reverse, asked, pending } = fakeResolver();
  let nowMs = 0;
  const names = new ReverseNames({ reverse, nowMs: () => nowMs });
  names.nameOf('192.0.2.9');
  pending.get('192.0.2.9')?.reject(Object.assign(new Error('queryPtr ENOTFOUND'), { code: 'ENOTFOUND' }));
  await settle();
  assert.equal(names.nameOf('192.0.2.9'), '192.0.2.9');
  assert.equal(names.failures, 1);
  assert.equal(asked.length, 1);
  nowMs += NAME_TTL_MS + 1;
  names.nameOf('192.0.2.9');
  assert.equal(asked.length, 2);
});

test('lookups in flight and cached names are bounded', async () => {
  const { reverse, asked, pending } = fakeResolver();
  const names = new ReverseNames({ reverse, maxEntries: 3 });
  for (let i = 0; i < 50; i++) names.nameOf(`10.0.0.${i}`);
  assert.equal(asked.length, MAX_LOOKUPS_IN_FLIGHT);
  for (const [address, p] of pending) p.resolve([`h${address.split('.')[3]}`]);
  await settle();
  const known = asked.filter((a) => names.nameOf(a) !== a);
  assert.equal(known.length, 3, 'only the 3 most recent answers are kept');
});
