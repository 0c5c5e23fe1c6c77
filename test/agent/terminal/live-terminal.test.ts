/**
 * The live view as people get it: `flowtap run` on a pseudo-terminal (util-linux `script`), with
 * traffic on a veth, then `q` typed on the keyboard.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { ftaPair, sendUdp } from '../live.ts';

const CLI = new URL('../../../src/cli.ts', import.meta.url).pathname;
const haveScript = spawnSync('script', ['--version']).error === undefined;
const UDP_PORT = 5353; // mdns: the service column names it

test('on a terminal run draws totals and top rows in place, and q ends it with exit 0', {
  skip: skipUnlessKernel('attach the agent to a veth') || (!haveScript && 'needs script (util-linux)'),
}, async (t) => {
  const pair = await ftaPair(t, 6);
  const store = mkdtempSync(join(tmpdir(), 'flowtap-live-'));
  t.after(() => rmSync(store, { recursive: true, force: true }));
  const command =
    `stty cols 120 rows 40; exec ${process.execPath} --import tsx ${CLI} run -i ${pair.hostIf} ` +
    `--cache-active-timeout 300ms --store-path ${store}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TERM: 'xterm-256color' },
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let screen = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stripVTControlCharacters(screen))) {
          child.stdout.off('data', check);
          resolve();
        }
      };
      child.stdout.setEncoding('utf8').on('data', (text: string) => {
        screen += text;
      });
      child.stdout.on('data', check);
      void exited.then(() => reject(new Error(`flowtap ended before ${pattern}: ${screen}`)));
      check();
    });
  await until(/attached interface=fta60/);
  await sendUdp(pair.nsAddr, UDP_PORT, 50, 100);
  await until(/out\s+UDP\s+mdns\s+\S+\s+\S+:5353\s+\S+/);
  const frame = stripVTControlCharacters(screen.slice(screen.lastIndexOf('\x1b[H')));
  assert.match(frame, /pkt\/s\s+\d+ flows\s+\d+ drops/, 'the totals');
  assert.match(frame, /TALKER\s+RATE/, 'the top talkers');
  assert.ok(screen.includes('\x1b[?1049h'), 'drawn on the alternate screen, in place');
  child.stdin.write('q');
  assert.equal(await exited, 0);
  assert.ok(screen.includes('\x1b[?1049l'), 'the normal screen is back');
  assert.match(screen, /flowtap: \d+ flows, \d+ packets/);
});
