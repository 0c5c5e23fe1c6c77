import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterSyntaxError } from '../../src/errors.ts';
import { buildFilter, describeFilter } from '../../src/filter/build.ts';
import { parseFilterRules } from '../../src/filter/rules.ts';

test('rules are read from JSON and from YAML text alike', () => {
  const json = parseFilterRules(
    '[{"action": "Accept", "cidr": "10.0.0.0/8", "protocol": "TCP", "sample": 10}]',
  );
  const yaml = parseFilterRules('- action: Accept\n  cidr: 10.0.0.0/8\n  protocol: TCP\n  sample: 10\n');
  assert.deepEqual(json, yaml);
  assert.equal(json.rules[0].sampling, 10);
  assert.equal(json.unmatchedAccept, false);
});

test("netobserv's key spellings (ip_cidr, snake_case, camelCase) are all read", () => {
  const a = parseFilterRules([{ ip_cidr: '10.0.0.0/8', destination_port: 53, action: 'Reject' }]);
  const b = parseFilterRules([{ cidr: '10.0.0.0/8', destinationPort: 53, action: 'reject' }]);
  assert.deepEqual(a, b);
  assert.equal(a.unmatchedAccept, true, 'a list of reject rules is a deny list');
});

const BAD_RULES: [unknown, RegExp][] = [
  ['{"action": ', /not JSON or YAML/],
  ['{"action": "Accept"}', /expected a list of rules/],
  [[{ action: 'Drop' }], /rule 1: action="Drop": expected Accept or Reject/],
  [[{ cidr: '10.0.0.0/40' }], /rule 1: cidr="10.0.0.0\/40"/],
  [[{ peer_cidr: '10.0.0.0/8' }], /peer_cidr needs cidr/],
  [[{ action: 'Accept' }, { destination_port: 70000 }], /rule 2: destinationport="70000"/],
  [[{ port_range: '90-80' }], /portrange="90-80"/],
  [[{ tcp_flags: 'SYN-FOO' }], /tcpflags="SYN-FOO"/],
  [[{ protocol: 'QUIC' }], /protocol="QUIC"/],
  [[{ colour: 'red' }], /rule 1: unknown key 'colour'/],
  [[{ sample: -1 }], /sample="-1"/],
  [[{ cidr: '10.0.0.0/8', peer_cidr: '2001:db8::/32' }], /different IP versions/],
];

for (const [raw, reason] of BAD_RULES) {
  test(`FLOW_FILTER_RULES ${JSON.stringify(raw)} is refused naming the rule and key`, () => {
    assert.throws(
      () => parseFilterRules(raw),
      (err: unknown) => err instanceof FilterSyntaxError && err.exitCode === 2 && reason.test(err.message),
    );
  });
}

test('an expression and rules together compile to one program that needs both', () => {
  const program = buildFilter({ expression: 'tcp', rules: [{ action: 'Accept', port: 443 }] });
  assert.ok(program);
  assert.equal(describeFilter(program), 'tcp + 1 FLOW_FILTER_RULES rule');
});
