/**
 * The cheap cousin of bench/flood.bench.ts: `flowtap run` at its default settings, JSON lines to a
 * file, while trafgen sends a bounded burst of TCP SYNs from a namespace, the source port changing
 * every packet (the host answers each with a RST: a second flow per port). Every packet the
 * interface counted must be in the file, and nothing dropped.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { counterDelta, createVethPair, waitForQuiet } from '../net/netns.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
/** SYNs sent; twice the distinct ports, so each port's flow sees two packets. */
const PACKETS = 65_536;
const FIRST_PORT = 1024;
const PORTS = 32_768;

const haveTrafgen = spawnSync('trafgen', ['-v']).error === undefined;

test('at the default settings a burst of one new flow per packet is counted exactly in the JSON export to a file', {
  skip:
    skipUnlessKernel('flood a veth in a network namespace') ||
    (!haveTrafgen && 'needs trafgen (netsniff-ng)'),
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-flood-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pair = await createVethPair('ftf1');
  t.after(() => pair.cleanup());
  const config = join(dir, 'syn.cfg');
  writeFileSync(
    config,
    `{ eth(da=${pair.hostMac}), ipv4(saddr=${pair.nsAddr4}, daddr=${pair.hostAddr4}), ` +
      `tcp(sp=dinc(${FIRST_PORT}, ${FIRST_PORT + PORTS - 1}), dp=80, syn) }\n`,
  );
  const flowsPath = join(dir, 'flows.jsonl');
  const out = openSync(flowsPath, 'w');
  // The flow store is a default exporter too: it must keep up as well, in a directory of the test's own.
  const agent = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', '-i', pair.hostIf], {
    stdio: ['ignore', out, 'pipe'],
    env: { ...process.env, STORE_PATH: join(dir, 'store') },
  });
  closeSync(out);
  t.after(() => killIfRunning(agent));
  let stderr = '';
  agent.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = once(agent, 'exit');
  await until(
    () => stderr.includes('"msg":"attached"'),
    agent,
    () => stderr,
  );

  const before = await waitForQuiet(pair.hostIf, 200);
  const trafgen = pair.spawn('trafgen', [
    '--dev',
    pair.nsIf,
    '--conf',
    config,
    '--cpus',
    '1',
    '-n',
    String(PACKETS),
    '-q',
  ]);
  const [trafgenCode] = await once(trafgen, 'exit');
  assert.equal(trafgenCode, 0);
  const offered = counterDelta(before, await waitForQuiet(pair.hostIf, 200));
  agent.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, stderr);

  let packets = 0;
  for (const line of readFileSync(flowsPath, 'utf8').split('\n')) {
    if (line) packets += (JSON.parse(line) as { Packets: number }).Packets;
  }
  assert.ok(offered.rxPackets >= PACKETS, `${offered.rxPackets} packets received`);
  assert.equal(packets, offered.rxPackets + offered.txPackets, 'every packet is in the file');
  const health = stoppedHealth(stderr);
  assert.deepEqual(
    health.exporters.map((e) => [e.name, e['queue-full'], e.stopped, e.flowsFailed]),
    [
      ['json', 0, 0, 0],
      ['store', 0, 0, 0],
    ],
  );
  assert.equal(health.ringBufferLost, 0);
});

interface StoppedHealth {
  ringBufferLost: number;
  exporters: Array<{ name: string; flowsFailed: number; 'queue-full': number; stopped: number }>;
}

/** The agent's counters from its `agent stopped` log line. */
function stoppedHealth(stderr: string): StoppedHealth {
  const line = stderr.split('\n').find((l) => l.includes('"msg":"agent stopped"'));
  assert.ok(line, `no "agent stopped" log: ${stderr}`);
  return (JSON.parse(line) as { health: StoppedHealth }).health;
}

/** Waits until `check()` holds, re-checking every 50 ms; fails when `child` exits or after 30 s. */
async function until(check: () => boolean, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline || child.exitCode !== null)
      assert.fail(`the agent did not attach: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function killIfRunning(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
