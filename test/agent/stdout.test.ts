import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { onStdoutClosed, stdoutClosed } from '../../src/agent/stdout.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const TCP4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
/** Far more JSON (about 10 MB) than a pipe holds, so flowtap is still writing when the reader leaves. */
const FLOWS = 30_000;

/** A capture of FLOWS TCP flows, one packet each, told apart by their source ports. */
function manyFlowsCapture(): Buffer {
  const portOffset = 14 + (TCP4[14] & 0x0f) * 4;
  return classicPcap(
    Array.from({ length: FLOWS }, (_, i) => {
      const frame = Buffer.from(TCP4);
      frame.writeUInt16BE(1024 + i, portOffset);
      return { frame, seconds: 1_700_000_000, fraction: i };
    }),
  );
}

test('flowtap read ends quietly with status 0 when the reader of stdout goes away', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-stdout-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'big.pcap');
  writeFileSync(file, manyFlowsCapture());
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'read', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = once(child, 'exit');
  // As `| head -1` does: read the first line, then close the pipe.
  const [first] = (await once(child.stdout, 'data')) as [Buffer];
  assert.match(first.toString('utf8'), /^\{"Etype":2048,/);
  child.stdout.destroy();
  const [code, signal] = await exited;
  assert.equal(stderr, '', 'nothing is printed about the closed pipe');
  assert.deepEqual([code, signal], [0, null]);
});

test('a command that installs its own action is told once, however many streams report the closed pipe', () => {
  let told = 0;
  const restore = onStdoutClosed(() => {
    told++;
  });
  try {
    stdoutClosed();
    stdoutClosed();
  } finally {
    restore();
  }
  assert.equal(told, 1);
});
