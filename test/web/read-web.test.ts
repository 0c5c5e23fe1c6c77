/**
 * `flowtap read FILE --web` end to end: the real CLI in a child process serves the capture's flows
 * on the capture's own timeline, keeps serving after the file ends, and closes on SIGTERM.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import type { HistorySnapshot } from '../../src/web/history.ts';
import type { WebSnapshot } from '../../src/web/snapshot.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const WAIT_MS = 20_000;
const T0 = 1_700_000_000;

function frameOf(name: string): Buffer {
  const vector = PACKET_VECTORS.find((v) => v.name === name);
  assert.ok(vector, name);
  return Buffer.from(vector.frame, 'hex');
}

/** A capture of 10 TCP packets and 5 UDP packets over 10 s from T0. */
function writeCapture(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-web-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tcp = frameOf('ipv4 tcp syn with dscp EF');
  const udp = frameOf('ipv4 udp with payload');
  const packets = [];
  for (let s = 0; s < 10; s++) {
    packets.push({ frame: tcp, seconds: T0 + s, fraction: 0 });
    if (s % 2 === 0) packets.push({ frame: udp, seconds: T0 + s, fraction: 500_000 });
  }
  const file = join(dir, 'two-flows.pcap');
  writeFileSync(file, classicPcap(packets));
  return file;
}

/** Starts the CLI; resolves stderr lines as they come through `untilStderr`. */
function startCli(t: TestContext, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  });
  child.stdin.end();
  child.stdout.resume();
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    for (const wake of waiters.splice(0)) wake();
  });
  const untilStderr = async (pattern: RegExp): Promise<RegExpExecArray> => {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const m = pattern.exec(stderr);
      if (m) return m;
      if (child.exitCode !== null) throw new Error(`flowtap exited early: ${stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern} in: ${stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  return { child, exited, untilStderr };
}

function getJson<T>(url: string): Promise<T> {
  return getJsonWithStatus<T>(url).then(([, body]) => body);
}

function getJsonWithStatus<T>(url: string): Promise<[number, T]> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve([res.statusCode ?? 0, JSON.parse(body) as T]));
    })
      .on('error', reject)
      .end();
  });
}

test('read --web serves the capture on its own timeline after the file ends and closes on SIGTERM', async (t) => {
  const file = writeCapture(t);
  const cli = startCli(t, ['read', file, '--web', '127.0.0.1:0']);
  const url = (await cli.untilStderr(/web view at (http:\/\/\S+)/))[1];
  await cli.untilStderr(/keeps serving until SIGINT or SIGTERM/);

  const snapshot = await getJson<WebSnapshot>(`${url}snapshot.json`);
  assert.equal(snapshot.timeline, 'records');
  assert.equal(snapshot.endSecond, T0 + 9, 'the window ends at the last packet, not now');
  assert.deepEqual(
    snapshot.flows.map((f) => [f.proto, f.src, f.srcPort, f.dst, f.dstPort, f.packets, f.bytes]),
    [
      ['TCP', '192.0.2.1', 40000, '198.51.100.2', 80, 10, 540],
      ['UDP', '192.0.2.1', 5353, '198.51.100.2', 53, 5, 370],
    ],
  );
  assert.equal(snapshot.health?.packetsSeen, 15);
  const perSecond = snapshot.chart.flatMap((s) => s.bytesPerSecond).reduce((a, b) => a + b, 0);
  assert.ok(
    Math.abs(perSecond - 910) < 10,
    `every byte of the capture is in the chart (to rounding): ${perSecond}`,
  );

  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('read --store --web answers a past window of the stored capture from /history.json', async (t) => {
  const file = writeCapture(t);
  const storeDir = mkdtempSync(join(tmpdir(), 'flowtap-web-store-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  // Retention counts from the wall clock; the capture is from 2023.
  const env = { ...process.env, STORE_RETENTION: '0' };
  const cli = startCli(t, ['read', file, '--store', '--store-path', storeDir, '--web', '127.0.0.1:0'], env);
  const url = (await cli.untilStderr(/web view at (http:\/\/\S+)/))[1];
  await cli.untilStderr(/keeps serving until SIGINT or SIGTERM/);

  assert.equal((await getJson<WebSnapshot>(`${url}snapshot.json`)).historyAvailable, true);
  const window = `from=${T0 * 1000}&to=${(T0 + 60) * 1000}`;
  const [status, history] = await getJsonWithStatus<HistorySnapshot>(
    `${url}history.json?${window}&proto=UDP`,
  );
  assert.equal(status, 200);
  assert.equal(history.timeline, 'history');
  assert.deepEqual(
    history.flows.map((f) => [f.proto, f.src, f.srcPort, f.dst, f.dstPort, f.packets, f.bytes]),
    [['UDP', '192.0.2.1', 5353, '198.51.100.2', 53, 5, 370]],
  );
  const [badStatus, bad] = await getJsonWithStatus<{ error: string }>(`${url}history.json?from=5&to=1`);
  assert.equal(badStatus, 400);
  assert.match(bad.error, /to= must be after from=/);

  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('read --web without --store answers /history.json 404 saying history is off', async (t) => {
  const file = writeCapture(t);
  const cli = startCli(t, ['read', file, '--web', '127.0.0.1:0']);
  const url = (await cli.untilStderr(/web view at (http:\/\/\S+)/))[1];
  await cli.untilStderr(/keeps serving until SIGINT or SIGTERM/);
  assert.equal((await getJson<WebSnapshot>(`${url}snapshot.json`)).historyAvailable, false);
  const [status, body] = await getJsonWithStatus<{ error: string }>(`${url}history.json?from=0&to=1000`);
  assert.equal(status, 404);
  assert.match(body.error, /history is off/);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0);
});

test('read --web with an address it cannot use exits 2 naming --web', async (t) => {
  const file = writeCapture(t);
  const cli = startCli(t, ['read', file, '--web', 'localhost:99999']);
  assert.equal(await cli.exited, 2);
  await cli.untilStderr(/invalid --web="localhost:99999"/);
});
