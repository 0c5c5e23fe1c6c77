import assert from 'node:assert/strict';
import { test } from 'node:test';
import { icmpName, isIcmpProtocol } from '../../src/model/icmp.ts';

const ICMP = 1;
const ICMPV6 = 58;

test('ICMP and ICMPv6 types and codes have the names people know', () => {
  assert.equal(icmpName(ICMP, 8, 0), 'echo-request');
  assert.equal(icmpName(ICMP, 0, 0), 'echo-reply');
  assert.equal(icmpName(ICMP, 3, 3), 'port-unreachable');
  assert.equal(icmpName(ICMP, 3, 4), 'fragmentation-needed');
  assert.equal(icmpName(ICMP, 11, 0), 'time-exceeded');
  assert.equal(icmpName(ICMPV6, 128, 0), 'echo-request');
  assert.equal(icmpName(ICMPV6, 1, 4), 'port-unreachable');
  assert.equal(icmpName(ICMPV6, 135, 0), 'neighbor-solicitation');
});

test('a code without a name of its own follows the type, and unknown types print their numbers', () => {
  assert.equal(icmpName(ICMP, 11, 1), 'time-exceeded/1');
  assert.equal(icmpName(ICMP, 3, 200), 'dest-unreachable/200');
  assert.equal(icmpName(ICMP, 99, 2), 'type 99/2');
  assert.equal(icmpName(ICMPV6, 250, 0), 'type 250');
});

test('only ICMP and ICMPv6 are ICMP protocols', () => {
  assert.deepEqual([1, 58, 6, 17, 0].map(isIcmpProtocol), [true, true, false, false, false]);
});
