import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { expandGlob, hasWildcard } from '../../../src/capture/pcap/file-glob.ts';

const dir = mkdtempSync(join(tmpdir(), 'flowtap-glob-'));
after(() => rmSync(dir, { recursive: true, force: true }));
for (const day of ['d1', 'd2']) {
  mkdirSync(join(dir, day));
  for (const name of ['eth0.pcap', 'eth1.pcap', 'eth2.pcap.gz', '.hidden.pcap', 'a+b(1).pcap']) {
    writeFileSync(join(dir, day, name), '');
  }
}

test('*, ? and [...] match within a segment, in sorted order, across directories', async () => {
  assert.deepEqual(await expandGlob(join(dir, 'd?/eth[01].pcap')), [
    join(dir, 'd1/eth0.pcap'),
    join(dir, 'd1/eth1.pcap'),
    join(dir, 'd2/eth0.pcap'),
    join(dir, 'd2/eth1.pcap'),
  ]);
  assert.deepEqual(await expandGlob(join(dir, 'd2/eth[!01]*')), [join(dir, 'd2/eth2.pcap.gz')]);
});

test('a leading dot is matched only by a pattern that starts with one; other characters are literal', async () => {
  assert.ok(!(await expandGlob(join(dir, 'd1/*.pcap'))).includes(join(dir, 'd1/.hidden.pcap')));
  assert.deepEqual(await expandGlob(join(dir, 'd1/.*.pcap')), [join(dir, 'd1/.hidden.pcap')]);
  assert.deepEqual(await expandGlob(join(dir, 'd1/a+b(?).pcap')), [join(dir, 'd1/a+b(1).pcap')]);
});

test('a pattern matching nothing, or under a missing directory, expands to nothing', async () => {
  assert.deepEqual(await expandGlob(join(dir, 'd3/*.pcap')), []);
  assert.deepEqual(await expandGlob(join(dir, 'd1/*.pcapng')), []);
  assert.equal(hasWildcard('plain.pcap'), false);
  assert.equal(hasWildcard('cap-[0-9].pcap'), true);
});
