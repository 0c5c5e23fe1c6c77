import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { progressLine, ReadProgress, wantsProgress } from '../../src/agent/commands/read-progress.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { runCli } from '../helpers/cli.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const MIB = 1 << 20;

describe('the progress line', () => {
  test('shows bytes read of the total, packets per second, flows and the time left', () => {
    const line = progressLine(
      { bytesRead: 25 * MIB, totalBytes: 100 * MIB, packets: 2_000_000, flows: 1234 },
      2000,
    );
    assert.equal(
      line,
      'flowtap read: 25.0 MiB of 100.0 MiB (25%), 1,000,000 packets/s, 1,234 flows, ETA 0:06',
    );
    const stdin = progressLine({ bytesRead: 3 * MIB, totalBytes: undefined, packets: 10, flows: 1 }, 1000);
    assert.equal(stdin, 'flowtap read: 3.0 MiB, 10 packets/s, 1 flows');
  });

  test('is drawn in place, no wider than the terminal, and erased on stop', () => {
    const written: string[] = [];
    const stream = { isTTY: true, columns: 30, write: (t: string) => written.push(t) > 0 };
    assert.equal(wantsProgress(stream, false), true);
    assert.equal(wantsProgress(stream, true), false);
    assert.equal(wantsProgress({ ...stream, isTTY: false }, false), false);
    const progress = new ReadProgress(stream, () => ({ bytesRead: 0, totalBytes: 1, packets: 0, flows: 0 }));
    progress.start();
    progress.stop();
    progress.stop();
    assert.deepEqual(written, ['\r\x1b[Kflowtap read: 0.0 MiB of 0.0 ', '\r\x1b[K']);
  });
});

describe('flowtap read on a terminal and on a pipe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-progress-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'cap.pcap');
  const frame = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
  writeFileSync(
    file,
    classicPcap(Array.from({ length: 100 }, (_, i) => ({ frame, seconds: 1_700_000_000, fraction: i }))),
  );

  /** What a terminal shows for `flowtap read ARGS` with stdout sent to /dev/null: stderr only. */
  async function onTerminal(args: string): Promise<string> {
    // script(1) runs the command on a new pseudo-terminal and copies what it writes to stdout.
    const command = `${process.execPath} --import tsx ${CLI} read ${args} > /dev/null`;
    const { stdout } = await promisify(execFile)('script', ['-qfec', command, '/dev/null'], { cwd: ROOT });
    return stdout;
  }

  test('a terminal gets the progress line, erased before the summary', async () => {
    const shown = await onTerminal(file);
    const erase = '\r\x1b[K';
    assert.match(shown, /flowtap read: 0\.0 MiB of 0\.0 MiB \(\d+%\), [\d,]+ packets\/s, \d+ fl/);
    assert.ok(shown.startsWith(`${erase}flowtap read: 0.0 MiB`), JSON.stringify(shown));
    assert.ok(shown.includes(`${erase}flowtap read: pcap, 100 packets read`), JSON.stringify(shown));
  });

  test('--quiet silences it on a terminal', async () => {
    const shown = await onTerminal(`--quiet ${file}`);
    assert.doesNotMatch(shown, /packets\/s/);
    assert.match(shown, /100 packets read/);
  });

  test('a pipe never gets it', async () => {
    const { code, stderr } = await runCli(['read', file]);
    assert.equal(code, 0);
    assert.equal(stderr, 'flowtap read: pcap, 100 packets read, 100 counted into 1 flows\n');
  });
});
