import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilterSyntaxError } from '../../src/errors.ts';
import { buildFilter } from '../../src/filter/build.ts';
import { parseFilterExpression } from '../../src/filter/parser.ts';
import { FILTER_MAX_INSNS } from '../../src/filter/program.ts';
import { runCli } from '../helpers/cli.ts';

/** Bad expressions: the 1-based position reported and what the reason must say. */
const BAD_EXPRESSIONS: [string, number, RegExp][] = [
  ['(tcp', 5, /unbalanced '\(' at position 1/],
  ['tcp)', 4, /unbalanced '\)'/],
  ['((udp or tcp)', 14, /unbalanced '\('/],
  ['()', 2, /expected a primitive, found '\)'/],
  ['tcp and', 8, /'and' needs a primitive/],
  ['or udp', 1, /'or' cannot start a primitive/],
  ['not', 4, /'not' needs a primitive/],
  ['tcp udp', 5, /expected and, or or the end, found 'udp'/],
  ['ether host 02:00:00:00:00:01', 1, /unknown keyword 'ether'/],
  ['greater 100', 1, /unknown keyword 'greater'/],
  ['gateway 10.0.0.1', 1, /unknown keyword 'gateway'/],
  ['tcp[13] & 2 != 0', 4, /unexpected character "\["/],
  ['ip and len > 100', 12, /unexpected character ">"/],
  ['host example.com', 6, /host names are not resolved/],
  ['host 10.0.0.256', 6, /not an IPv4 or IPv6 address/],
  ['net 10.0.0.0/33', 5, /not a prefix length \(0-32\)/],
  ['net 2001:db8::/129', 5, /not a prefix length \(0-128\)/],
  ['net 10.0.0.1/8', 5, /host bits set past \/8/],
  ['net 10.0.0.0 mask 255.0.255.0', 19, /not a contiguous mask/],
  ['net 300.1.2.3/8', 5, /is not a network/],
  ['port 65536', 6, /not a port \(0-65535\)/],
  ['port http', 6, /service names are not resolved/],
  ['portrange 2000-1000', 11, /ends before it starts/],
  ['portrange 1000', 11, /not a port range/],
  ['icmp port 80', 11, /'icmp' cannot qualify 'port'/],
  ['ip port 80', 9, /'ip' cannot qualify 'port'/],
  ['tcp host 10.0.0.1', 10, /'tcp' cannot qualify 'host'/],
  ['ip host 2001:db8::1', 9, /not an IPv4 address/],
  ['ip6 net 10.0.0.0/8', 9, /not an IPv6 address/],
  ['vlan 4096', 6, /not a VLAN id \(0-4095\)/],
  ['proto 256', 7, /not a protocol number/],
  ['src port', 9, /'port' needs a value/],
  ['tcp and 80', 9, /unknown keyword '80'|cannot start/],
];

for (const [expression, position, reason] of BAD_EXPRESSIONS) {
  test(`'${expression}' is refused at position ${position}`, () => {
    assert.throws(
      () => parseFilterExpression(expression),
      (err: unknown) => {
        assert.ok(err instanceof FilterSyntaxError);
        assert.equal(err.exitCode, 2);
        assert.equal(err.code, 'FLOWTAP_FILTER');
        assert.equal(err.position + 1, position, err.message);
        assert.match(err.reason, reason);
        assert.match(err.message, new RegExp(`at position ${position}:`));
        return true;
      },
    );
  });
}

test('a bare value after and/or reuses the qualifiers of the primitive before it', () => {
  assert.deepEqual(
    parseFilterExpression('tcp dst port 80 or 443'),
    parseFilterExpression('tcp dst port 80 or tcp dst port 443'),
  );
});

test('and and or have equal precedence and associate left to right, as in tcpdump', () => {
  assert.deepEqual(
    parseFilterExpression('tcp or udp and ip6'),
    parseFilterExpression('(tcp or udp) and ip6'),
  );
});

test('keywords are case-insensitive and && || ! are and or not', () => {
  assert.deepEqual(
    parseFilterExpression('TCP && !Port 22 || udp'),
    parseFilterExpression('tcp and not port 22 or udp'),
  );
});

test('a filter needing more tests than the kernel evaluates is refused, not cut short', () => {
  const expression = Array.from({ length: FILTER_MAX_INSNS }, (_, i) => `host 10.0.0.${i + 1}`).join(' or ');
  assert.throws(() => buildFilter({ expression }), /more than 64 tests/);
});

test('an empty or blank expression is no filter at all', () => {
  assert.equal(buildFilter({ expression: '  ' }), undefined);
});

test('flowtap read refuses a bad expression with exit 2, the position and the reason, before reading', async () => {
  const result = await runCli(['read', '/nonexistent.pcap', 'tcp', 'port', '99999']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /invalid filter at position 10: '99999' is not a port \(0-65535\)/);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

test('flowtap run refuses a bad FILTER with exit 2 before touching the kernel', async () => {
  const result = await runCli(['run', '--interfaces', 'none0'], { env: { FILTER: 'host 10.0.0.0/33' } });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /invalid filter at position 6/);
});

test('flowtap run refuses an expression given both positionally and with --filter', async () => {
  const result = await runCli(['run', '--filter', 'udp', 'tcp']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /either --filter or an expression/);
});
