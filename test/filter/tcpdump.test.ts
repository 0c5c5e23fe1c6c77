/**
 * The cross-check against tcpdump: for every expression, the packets flowtap counts in a capture
 * of mixed traffic equal, exactly, the packets `tcpdump -r FILE EXPR` selects (Debian tcpdump).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CaptureDecoder } from '../../src/capture/pcap/capture-decoder.ts';
import { buildFilter } from '../../src/filter/build.ts';
import { runCli } from '../helpers/cli.ts';
import { mixedCapture, mixedFrames } from './mixed-traffic.ts';

/** Expressions checked on the untagged capture. */
const EXPRESSIONS = [
  'ip',
  'ip6',
  'tcp',
  'udp',
  'sctp',
  'icmp',
  'icmp6',
  'not ip and not ip6',
  'port 80',
  'tcp port 443',
  'udp port 53',
  'sctp port 5201',
  'src port 22',
  'dst port 8080',
  'port 80 or 443',
  'tcp dst port 5201 and src portrange 1-1024',
  'portrange 1024-5201',
  'udp dst portrange 30000-65535',
  'host 10.0.0.1',
  'src host 192.168.1.10',
  'dst host 2001:db8::2',
  'host 10.0.0.1 or 10.0.0.2',
  'src and dst host 10.1.2.3',
  'src or dst host fe80::1',
  'net 10.0.0.0/8',
  'net 192.168',
  'src net 172.16.0.0 mask 255.240.0.0',
  'dst net 2001:db8::/32',
  'ip6 net fd00::/8 and udp',
  'ip proto 47',
  'ip6 proto 50',
  'proto 17',
  'ip and not tcp and not udp',
  'tcp and (port 22 or port 80) and not host 8.8.8.8',
  '(udp || sctp) && !net 10.0.0.0/8',
  'tcp or udp and dst net 192.168.1.0/24',
  'not (port 53 or icmp) and ip',
  'icmp and host 8.8.8.8 or icmp6 and net fe80::/10',
  'udp and not port 5201 and not port 53',
];

/** Expressions checked on the capture of tagged and untagged frames. */
const VLAN_EXPRESSIONS = [
  'vlan',
  'vlan 100',
  'vlan 200 and tcp',
  'vlan and udp port 53',
  'not vlan',
  'vlan 100 and net 10.0.0.0/8',
];

function tcpdumpCount(file: string, expression: string, dir: string): number {
  const out = join(dir, 'selected.pcap');
  execFileSync('tcpdump', ['-r', file, '-w', out, expression], { stdio: ['ignore', 'ignore', 'pipe'] });
  const bytes = readFileSync(out);
  let count = 0;
  for (let at = 24; at + 16 <= bytes.length; at += 16 + bytes.readUInt32LE(at + 8)) count++;
  return count;
}

function flowtapCount(capture: Buffer, expression: string): number {
  const decoder = new CaptureDecoder({ filter: buildFilter({ expression }) });
  decoder.push(capture);
  decoder.end();
  return decoder.stats.counted;
}

function crossCheck(name: string, capture: Buffer, expressions: readonly string[]): void {
  test(`flowtap counts exactly the packets tcpdump selects for ${expressions.length} expressions (${name})`, (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'flowtap-filter-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'mixed.pcap');
    writeFileSync(file, capture);
    const mismatches: string[] = [];
    let matchedSome = 0;
    for (const expression of expressions) {
      const expected = tcpdumpCount(file, expression, dir);
      const counted = flowtapCount(capture, expression);
      if (counted !== expected) mismatches.push(`${expression}: flowtap ${counted}, tcpdump ${expected}`);
      if (expected > 0) matchedSome++;
    }
    assert.deepEqual(mismatches, []);
    assert.ok(matchedSome >= expressions.length - 1, 'nearly every expression selects some packets');
  });
}

crossCheck('untagged mixed traffic', mixedCapture(mixedFrames(3000, 12)), EXPRESSIONS);
crossCheck(
  'tagged and untagged mixed traffic',
  mixedCapture(mixedFrames(2000, 34, [undefined, 100, 200])),
  VLAN_EXPRESSIONS,
);

test('flowtap read with a filter expression counts the packets tcpdump selects', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-filter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const capture = mixedCapture(mixedFrames(500, 56));
  const file = join(dir, 'mixed.pcap');
  writeFileSync(file, capture);
  const expression = 'tcp port 80 or udp and net 10.0.0.0/8';
  const result = await runCli(['read', file, '--output', 'json', ...expression.split(' ')]);
  assert.equal(result.code, 0, result.stderr);
  const packets = result.stdout
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .reduce((sum, line) => sum + (JSON.parse(line) as { Packets: number }).Packets, 0);
  assert.equal(packets, tcpdumpCount(file, expression, dir));
  assert.match(result.stderr, / filtered/);
});
