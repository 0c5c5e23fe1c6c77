import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InterfaceFilter } from '../../src/ifaces/filter.ts';

test('an empty include list selects every interface not excluded', () => {
  const filter = new InterfaceFilter([], ['lo']);
  assert.equal(filter.allows('eth1'), true);
  assert.equal(filter.allows('lo'), false);
});

test('an exact name matches only that name, not a prefix of it', () => {
  const filter = new InterfaceFilter(['veth0'], []);
  assert.equal(filter.allows('veth0'), true);
  assert.equal(filter.allows('veth01'), false);
  assert.equal(filter.allows('xveth0'), false);
});

test('a /regex/ entry matches names by regular expression', () => {
  const filter = new InterfaceFilter(['/^veth[0-9]+$/'], []);
  assert.equal(filter.allows('veth12'), true);
  assert.equal(filter.allows('veth1a'), false);
  assert.equal(filter.allows('eth0'), false);
});

test('exclusion wins over inclusion', () => {
  const filter = new InterfaceFilter(['/^br/', 'eth1'], ['/-int$/', 'eth1']);
  assert.equal(filter.allows('br0'), true);
  assert.equal(filter.allows('br-int'), false);
  assert.equal(filter.allows('eth1'), false);
});
