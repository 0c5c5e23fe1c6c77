/**
 * `flowtap run` with a filter, end to end on veths of this suite (prefix ftf): only the filtered
 * traffic becomes flows, with counts equal to what nftables counted for that traffic in the
 * peer namespace, while other traffic floods the same veth; SIGHUP replaces the filter without
 * detaching. Needs root; every veth, namespace and child process is removed in t.after.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { createVethPair, type VethPair, waitForQuiet } from '../net/netns.ts';
import { type JsonFlow, sendUdp, startFlowtap } from './live.ts';

const ETHERNET_HEADER_BYTES = 14;
const skip = skipUnlessKernel('attach the agent to veths in network namespaces');
const FILTERED_PORT = 5201;
const OTHER_TCP_PORT = 5202;

async function ftfPair(t: TestContext, n: number): Promise<VethPair> {
  const pair = await createVethPair(`ftf${n}`);
  t.after(() => pair.cleanup());
  return pair;
}

/** TCP servers in the namespace that read and discard everything, on `ports`. */
async function startSinks(t: TestContext, pair: VethPair, ports: number[]): Promise<void> {
  const script = `const net = require('node:net'); let n = 0;
    for (const p of ${JSON.stringify(ports)}) net.createServer((s) => s.resume()).listen(p, '${pair.nsAddr4}', () => { if (++n === ${ports.length}) console.log('listening'); });`;
  const child = pair.spawn('node', ['-e', script]);
  t.after(() => {
    if (child.exitCode === null) process.kill(child.pid as number, 'SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`the TCP sinks exited (${code})`)));
  });
}

/** Sends `bytes` over one TCP connection to `host:port` and waits until both sides closed. */
async function sendTcp(host: string, port: number, bytes: number): Promise<void> {
  const socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => resolve());
  });
  socket.end(Buffer.alloc(bytes, 0x62));
  socket.resume();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
}

/** nftables counters in the namespace of the packets to and from TCP `port`. */
async function countTcpPort(t: TestContext, pair: VethPair, port: number) {
  const table = 'ftf_count';
  const rules = [
    `add table inet ${table}`,
    `add chain inet ${table} in { type filter hook input priority 0; }`,
    `add chain inet ${table} out { type filter hook output priority 0; }`,
    `add rule inet ${table} in tcp dport ${port} counter`,
    `add rule inet ${table} out tcp sport ${port} counter`,
  ];
  for (const rule of rules) await pair.exec('nft', rule.split(' '));
  t.after(() => pair.exec('nft', ['delete', 'table', 'inet', table]).catch(() => undefined));
  return async () => {
    const text = await pair.exec('nft', ['list', 'table', 'inet', table]);
    const counters = [...text.matchAll(/counter packets (\d+) bytes (\d+)/g)].map((m) => ({
      packets: Number(m[1]),
      bytes: Number(m[2]),
    }));
    // The namespace's input is the host interface's egress, its output the host's ingress.
    return { egress: counters[0], ingress: counters[1] };
  };
}

function sumFlows(flows: readonly JsonFlow[], direction: string) {
  let packets = 0;
  let bytes = 0;
  for (const f of flows) {
    if (f.Direction !== direction) continue;
    packets += f.Packets;
    bytes += f.Bytes;
  }
  return { packets, bytes };
}

test('with tcp port 5201 only that port’s flows appear while UDP and other TCP flood the veth, with exact counts', {
  skip,
}, async (t) => {
  const pair = await ftfPair(t, 1);
  await startSinks(t, pair, [FILTERED_PORT, OTHER_TCP_PORT]);
  const nftCounts = await countTcpPort(t, pair, FILTERED_PORT);
  const flowtap = startFlowtap(t, [
    '-i',
    pair.hostIf,
    '--cache-active-timeout',
    '300ms',
    '--metrics',
    '127.0.0.1:0',
    'tcp',
    'port',
    String(FILTERED_PORT),
  ]);
  await flowtap.untilLog('attached', pair.hostIf);
  const metricsLog = await flowtap.untilLog('metrics listening on /metrics');
  await Promise.all([
    sendTcp(pair.nsAddr4, FILTERED_PORT, 300_000),
    sendUdp(pair.nsAddr4, FILTERED_PORT, 2000, 200),
    sendTcp(pair.nsAddr4, OTHER_TCP_PORT, 300_000),
    sendUdp(pair.nsAddr4, 9, 2000, 200),
  ]);
  await waitForQuiet(pair.hostIf);
  const expected = await nftCounts();
  assert.ok(expected.egress.packets > 0 && expected.ingress.packets > 0, 'the filtered connection ran');
  await flowtap.until(
    () =>
      sumFlows(flowtap.flows, 'EGRESS').packets >= expected.egress.packets &&
      sumFlows(flowtap.flows, 'INGRESS').packets >= expected.ingress.packets,
    'the flows of port 5201',
  );
  const metrics = await (await fetch(`http://${metricsLog.address}/metrics`)).text();
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);

  for (const f of flowtap.flows) {
    assert.equal(f.Transport.Proto, 'TCP', JSON.stringify(f));
    assert.ok(
      f.Transport.SrcPort === FILTERED_PORT || f.Transport.DstPort === FILTERED_PORT,
      JSON.stringify(f),
    );
  }
  for (const direction of ['egress', 'ingress'] as const) {
    const counted = sumFlows(flowtap.flows, direction.toUpperCase());
    const nft = expected[direction];
    assert.deepEqual(
      counted,
      { packets: nft.packets, bytes: nft.bytes + ETHERNET_HEADER_BYTES * nft.packets },
      direction,
    );
  }
  const rejected = Number(/^flowtap_filter_packets_total\{verdict="rejected"\} (\d+)$/m.exec(metrics)?.[1]);
  const accepted = Number(/^flowtap_filter_packets_total\{verdict="accepted"\} (\d+)$/m.exec(metrics)?.[1]);
  assert.ok(rejected >= 4000, `the ${rejected} rejected packets include both UDP floods`);
  assert.equal(accepted, expected.egress.packets + expected.ingress.packets);
});

test('SIGHUP re-reads the config file and replaces the filter without detaching', { skip }, async (t) => {
  const pair = await ftfPair(t, 2);
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-filter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'flowtap.yaml');
  writeFileSync(config, 'filter: udp dst port 9\n');
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '200ms', '--config', config]);
  await flowtap.untilLog('attached', pair.hostIf);
  const before9 = await sendUdp(pair.nsAddr4, 9, 30, 50);
  const before10 = await sendUdp(pair.nsAddr4, 10, 30, 50);
  await flowtap.until(() => flowtap.flows.some((f) => f.Transport.SrcPort === before9), 'the port 9 flow');

  writeFileSync(
    config,
    'flowFilterRules:\n  - action: Accept\n    protocol: UDP\n    destination_port: 10\n',
  );
  flowtap.child.kill('SIGHUP');
  const replaced = await flowtap.untilLog('filter replaced');
  assert.equal(replaced.filter, '1 FLOW_FILTER_RULES rule');
  const after9 = await sendUdp(pair.nsAddr4, 9, 30, 50);
  const after10 = await sendUdp(pair.nsAddr4, 10, 30, 50);
  await flowtap.until(() => flowtap.flows.some((f) => f.Transport.SrcPort === after10), 'the port 10 flow');
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);

  const packetsFrom = (port: number) =>
    flowtap.flows.filter((f) => f.Transport.SrcPort === port).reduce((sum, f) => sum + f.Packets, 0);
  assert.deepEqual(
    [packetsFrom(before9), packetsFrom(before10), packetsFrom(after9), packetsFrom(after10)],
    [30, 0, 0, 30],
  );
  assert.equal(flowtap.logs.filter((l) => l.msg === 'attached').length, 1, 'attached once');
  assert.equal(
    flowtap.logs.some((l) => l.msg === 'detached'),
    false,
    'never detached',
  );
});

test('SIGHUP with a config file whose filter does not compile keeps the filter in use', {
  skip,
}, async (t) => {
  const pair = await ftfPair(t, 3);
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-filter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'flowtap.yaml');
  writeFileSync(config, 'filter: udp dst port 9\n');
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '200ms', '--config', config]);
  await flowtap.untilLog('attached', pair.hostIf);
  writeFileSync(config, 'filter: udp dst port 99999\n');
  flowtap.child.kill('SIGHUP');
  const refused = await flowtap.untilLog('SIGHUP: the new settings are not valid; keeping the filter in use');
  assert.match(String(refused.err), /'99999' is not a port/);
  const port = await sendUdp(pair.nsAddr4, 9, 10, 50);
  await flowtap.until(() => flowtap.flows.some((f) => f.Transport.SrcPort === port), 'the port 9 flow');
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);
});
