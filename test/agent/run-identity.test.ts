/**
 * `flowtap run` end to end with issue 13's user-space fields: a TCP transfer between the root
 * namespace and a test namespace (veths prefixed ftid) seen with --bidirectional gives one record
 * whose forward and reverse counters equal the interface's own tx and rx counters, and every
 * record carries the agent IP (given, or the default route's source address). Needs root.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { type TestContext, test } from 'node:test';
import { counterDelta, createVethPair, run, type VethPair, waitForQuiet } from '../net/netns.ts';
import { type JsonFlow, sendUdp, startFlowtap } from './live.ts';

const REQUEST_BYTES = 20_000;
const REPLY_BYTES = 300_000;
const SERVER_PORT = 5001;

/** A JSON line with the fields of issue 13. */
interface IdentityFlow extends JsonFlow {
  AgentIP?: string;
  RevBytes?: number;
  RevPackets?: number;
  TimeFlowStart: string;
  RevTimeFlowStart?: string;
}

/** A veth pair with static neighbours, so no ARP crosses it while counters are compared. */
async function quietPair(t: TestContext, prefix: string): Promise<VethPair> {
  const pair = await createVethPair(prefix);
  t.after(() => pair.cleanup());
  await run('ip', [
    'neigh',
    'replace',
    pair.nsAddr4,
    'lladdr',
    pair.nsMac,
    'dev',
    pair.hostIf,
    'nud',
    'permanent',
  ]);
  await pair.exec('ip', [
    'neigh',
    'replace',
    pair.hostAddr4,
    'lladdr',
    pair.hostMac,
    'dev',
    pair.nsIf,
    'nud',
    'permanent',
  ]);
  return pair;
}

/** A TCP server in the namespace that reads a request to its end, then answers REPLY_BYTES and closes. */
async function startServer(t: TestContext, pair: VethPair): Promise<void> {
  const script = `
    const server = require('node:net').createServer((socket) => {
      socket.on('data', () => {});
      socket.on('end', () => socket.end(Buffer.alloc(${REPLY_BYTES}, 0x72)));
      socket.on('error', () => {});
    });
    server.listen(${SERVER_PORT}, ${JSON.stringify(pair.nsAddr4)}, () => console.log('listening'));
    setTimeout(() => process.exit(0), 60000);`;
  const child = pair.spawn(process.execPath, ['-e', script]);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

/** Sends the request from the root namespace, reads the whole reply; resolves with the local port once closed. */
function transfer(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: SERVER_PORT });
    let received = 0;
    socket.on('error', reject);
    socket.on('connect', () => socket.end(Buffer.alloc(REQUEST_BYTES, 0x71)));
    socket.on('data', (d: Buffer) => {
      received += d.length;
    });
    const port = () => socket.localPort ?? 0;
    let localPort = 0;
    socket.on('connect', () => {
      localPort = port();
    });
    socket.on('close', () => {
      if (received !== REPLY_BYTES) reject(new Error(`received ${received} of ${REPLY_BYTES} bytes`));
      else resolve(localPort);
    });
  });
}

test('a TCP transfer seen with --bidirectional is one record whose counters are the interface counters of each direction', async (t) => {
  const pair = await quietPair(t, 'ftid2');
  await startServer(t, pair);
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--bidirectional', '--cache-active-timeout', '10m'], {
    AGENT_IP: '192.0.2.77',
  });
  await flowtap.untilLog('attached', pair.hostIf);
  const before = await waitForQuiet(pair.hostIf);
  const clientPort = await transfer(pair.nsAddr4);
  const after = await waitForQuiet(pair.hostIf);
  const sent = counterDelta(before, after);
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);

  const flows = flowtap.flows as IdentityFlow[];
  const conversation = flows.filter(
    (f) =>
      f.Transport.Proto === 'TCP' &&
      [f.Transport.SrcPort, f.Transport.DstPort].includes(clientPort) &&
      [f.Transport.SrcPort, f.Transport.DstPort].includes(SERVER_PORT),
  );
  assert.equal(conversation.length, 1, `one record for both directions: ${JSON.stringify(conversation)}`);
  const [record] = conversation;
  // The client's SYN was seen first: forward is client → server, leaving the host on hostIf.
  assert.deepEqual(
    [record.Network.SrcAddr, record.Transport.SrcPort, record.Direction, record.Interface],
    [pair.hostAddr4, clientPort, 'EGRESS', pair.hostIf],
  );
  assert.deepEqual(
    {
      packets: record.Packets,
      bytes: record.Bytes,
      revPackets: record.RevPackets,
      revBytes: record.RevBytes,
    },
    { packets: sent.txPackets, bytes: sent.txBytes, revPackets: sent.rxPackets, revBytes: sent.rxBytes },
  );
  assert.ok(record.RevTimeFlowStart !== undefined && record.RevTimeFlowStart >= record.TimeFlowStart);
  for (const flow of flows) assert.equal(flow.AgentIP, '192.0.2.77');
});

test('without AGENT_IP every record carries the source address of the default route', async (t) => {
  const route = JSON.parse(await run('ip', ['-j', 'route', 'get', '8.8.8.8'])) as { prefsrc?: string }[];
  const expected = route[0]?.prefsrc;
  if (expected === undefined) return t.skip('this host has no IPv4 default route');
  const pair = await quietPair(t, 'ftid3');
  const flowtap = startFlowtap(t, ['-i', pair.hostIf, '--cache-active-timeout', '200ms'], { AGENT_IP: '' });
  await flowtap.untilLog('attached', pair.hostIf);
  const srcPort = await sendUdp(pair.nsAddr4, 9, 5, 50);
  await flowtap.until(() => flowtap.flows.some((f) => f.Transport.SrcPort === srcPort), 'the datagrams');
  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);
  for (const flow of flowtap.flows as IdentityFlow[]) assert.equal(flow.AgentIP, expected);
});
