/**
 * flowtap against tools it did not write: tcpdump captures known TCP, UDP and ICMP traffic over
 * IPv4 and IPv6 on a veth (Ethernet) and on `any` (Linux cooked SLL and SLL2), editcap converts
 * the Ethernet capture to pcapng and nanosecond pcap, and tshark's conversation tables on each
 * file are the expected per-flow packets and bytes. Needs root, tcpdump, tshark and editcap.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, run, type VethPair } from '../../net/netns.ts';
import { startTcpdump, stopTcpdump } from '../../net/tcpdump.ts';
import { type TrafficPlan, trafficCommand } from '../../net/traffic.ts';
import {
  assertSameConversations,
  type ConvKind,
  type JsonFlow,
  tsharkConversations,
} from './tshark-conversations.ts';

const skip = skipUnlessKernel('capture with tcpdump on veths in network namespaces');

const CLI = new URL('../../../src/cli.ts', import.meta.url).pathname;
const MARKER = 'ftpemark';
const MARKER_HEX = Buffer.from(MARKER).toString('hex');
const WAIT_STEP_MS = 20;
const WAIT_LIMIT_MS = 15_000;
/** The 16-byte SLL and 20-byte SLL2 headers replace the 14-byte Ethernet header flowtap counts. */
const COOKED_EXTRA_BYTES = { 'sll.pcap': 2, 'sll2.pcap': 6 } as Record<string, number>;

function occurrences(file: string, text: string): number {
  const data = readFileSync(file);
  let n = 0;
  for (let at = data.indexOf(text); at >= 0; at = data.indexOf(text, at + 1)) n++;
  return n;
}

/** Waits until `file` holds the marker ping's request and reply, i.e. tcpdump wrote all before it. */
async function waitForMarker(file: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (occurrences(file, MARKER) < 2) {
    if (Date.now() > deadline) throw new Error(`${file} never received the marker ping`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
  }
}

function listenTcp(host: string): Promise<Server> {
  const server = createServer((socket) => {
    socket.resume();
    socket.on('end', () => socket.end(Buffer.alloc(500, 0x72)));
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server));
  });
}

function listenUdp(host: string): Promise<UdpSocket> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('message', (msg, peer) => socket.send(msg.subarray(0, 50), peer.port, peer.address));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve(socket));
  });
}

function portOf(server: Server | UdpSocket): number {
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

async function sendFromNamespace(plan: TrafficPlan): Promise<void> {
  await run('ip', ['netns', 'exec', vethPair().ns, ...trafficCommand(plan)]);
}

async function flowtapFlows(file: string, extraArgs: string[] = []): Promise<JsonFlow[]> {
  const { code, stdout, stderr } = await runCli(['read', ...extraArgs, file]);
  assert.equal(code, 0, stderr);
  assert.match(stderr, /packets read/);
  assert.doesNotMatch(stderr, /skipped/, `no packet of a tcpdump capture is skipped: ${stderr}`);
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as JsonFlow);
}

/** The suite's veth pair (prefix `ftp`), made in `before` and removed in `after`. */
let pair: VethPair | undefined;

function vethPair(): VethPair {
  if (!pair) throw new Error('the ftp veth pair is made in before()');
  return pair;
}

describe('flowtap read agrees with tshark on captures made by tcpdump and editcap', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-pcap-tools-'));
  const file = (name: string) => join(dir, name);
  const captures = ['eth.pcap', 'eth.pcapng', 'eth-nsec.pcap', 'sll.pcap', 'sll2.pcap'];
  const closers: (() => Promise<void> | void)[] = [];

  before(async () => {
    pair = await createVethPair('ftp', { ipv6: true });
    const v = pair;
    // The test's own traffic only: ARP and neighbour discovery come when the kernel decides (a probe
    // may land while one capture runs and another has stopped), so all three leave them out.
    const filter =
      `(host ${v.hostAddr4} or host ${v.nsAddr4} or host ${v.hostAddr6} or host ${v.nsAddr6})` +
      ' and not arp and not (icmp6 and ip6[40] >= 133 and ip6[40] <= 137)';
    const dumps: ChildProcess[] = [];
    for (const args of [
      ['-i', v.hostIf, '-w', file('eth.pcap'), filter],
      ['-i', 'any', '-y', 'LINUX_SLL', '-w', file('sll.pcap'), filter],
      ['-i', 'any', '-y', 'LINUX_SLL2', '-w', file('sll2.pcap'), filter],
    ]) {
      const dump = await startTcpdump(args);
      dumps.push(dump);
      closers.push(() => stopTcpdump(dump));
    }
    const tcp4 = await listenTcp(v.hostAddr4);
    const tcp6 = await listenTcp(v.hostAddr6);
    const udp4 = await listenUdp(v.hostAddr4);
    const udp6 = await listenUdp(v.hostAddr6);
    closers.push(
      () => void tcp4.close(),
      () => void tcp6.close(),
      () => void udp4.close(),
      () => void udp6.close(),
    );
    await sendFromNamespace({ kind: 'tcp', host: v.hostAddr4, port: portOf(tcp4), bytes: 3000 });
    await sendFromNamespace({ kind: 'tcp', host: v.hostAddr6, port: portOf(tcp6), bytes: 2000 });
    await sendFromNamespace({
      kind: 'udp',
      host: v.hostAddr4,
      port: portOf(udp4),
      count: 4,
      payloadBytes: 200,
      flows: 2,
    });
    await sendFromNamespace({
      kind: 'udp',
      host: v.hostAddr6,
      port: portOf(udp6),
      count: 3,
      payloadBytes: 300,
      flows: 2,
    });
    const inNs = ['netns', 'exec', v.ns];
    await run('ip', [...inNs, 'ping', '-c', '3', '-i', '0.2', v.hostAddr4]);
    await run('ip', [...inNs, 'ping', '-6', '-c', '3', '-i', '0.2', v.hostAddr6]);
    // 24 bytes of payload: the 16-byte timestamp, then the 8-byte pattern exactly once per packet.
    await run('ip', [...inNs, 'ping', '-c', '1', '-s', '24', '-p', MARKER_HEX, v.hostAddr4]);
    for (const name of ['eth.pcap', 'sll.pcap', 'sll2.pcap']) await waitForMarker(file(name));
    for (const dump of dumps) await stopTcpdump(dump);
    await run('editcap', ['-F', 'pcapng', file('eth.pcap'), file('eth.pcapng')]);
    await run('editcap', ['-F', 'nsecpcap', file('eth.pcap'), file('eth-nsec.pcap')]);
  });

  after(async () => {
    for (const close of closers) await close();
    await pair?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const name of captures) {
    test(`per-conversation packets and bytes equal tshark's conversation tables on ${name}`, async () => {
      const flows = await flowtapFlows(file(name));
      const extraPerFrame = COOKED_EXTRA_BYTES[name] ?? 0;
      const seen: Record<ConvKind, number> = { tcp: 0, udp: 0, ip: 0, ipv6: 0 };
      const tables = await tsharkConversations(file(name));
      for (const kind of ['tcp', 'udp', 'ip', 'ipv6'] as const) {
        seen[kind] = assertSameConversations(tables[kind], flows, kind, extraPerFrame);
      }
      // The traffic sent: 2 TCP connections, 4 UDP flows with replies, pings over both families.
      assert.ok(seen.tcp >= 12, `tcp frames ${seen.tcp}`);
      assert.ok(seen.udp >= 28, `udp frames ${seen.udp}`);
      assert.ok(seen.ip > seen.tcp / 2 && seen.ipv6 > 6, JSON.stringify(seen));
      // Three 98-byte IPv4 echo requests and the 66-byte marker, counted as Ethernet frames.
      const requests = flows.filter((f) => f.Transport.Proto === 'ICMP' && f.IcmpType === 8);
      assert.deepEqual(
        requests.reduce((sum, f) => [sum[0] + f.Packets, sum[1] + f.Bytes], [0, 0]),
        [4, 3 * 98 + 66],
      );
    });
  }

  test('cooked captures count each flow with the same packets and bytes as the Ethernet capture', async () => {
    const key = (f: JsonFlow) =>
      `${f.Etype}|${f.Network.SrcAddr}|${f.Network.DstAddr}|${f.Transport.Proto}|${f.Transport.SrcPort}|${f.Transport.DstPort}|${f.IcmpType ?? 0}`;
    const summed = (flows: JsonFlow[]) => {
      const m = new Map<string, string>();
      for (const f of flows) {
        const [p, b] = (m.get(key(f)) ?? '0/0').split('/').map(Number);
        m.set(key(f), `${p + f.Packets}/${b + f.Bytes}`);
      }
      return m;
    };
    const eth = summed(await flowtapFlows(file('eth.pcap')));
    for (const name of ['sll.pcap', 'sll2.pcap']) {
      const cooked = summed(await flowtapFlows(file(name)));
      assert.ok(cooked.size > 10, `${name} has flows`);
      for (const [k, v] of cooked) assert.equal(v, eth.get(k), `${name} ${k}`);
    }
  });

  test('cooked captures mark what the host sent EGRESS, as --local-net does on the Ethernet capture', async () => {
    const v = vethPair();
    const directions = (flows: JsonFlow[]) =>
      new Set(flows.map((f) => `${f.Network.SrcAddr}|${f.Direction}`));
    const eth = directions(
      await flowtapFlows(file('eth.pcap'), ['--local-net', `${v.hostAddr4}/32,${v.hostAddr6}/128`]),
    );
    assert.ok(eth.has(`${v.hostAddr4}|EGRESS`) && eth.has(`${v.nsAddr4}|INGRESS`), [...eth].join(' '));
    for (const name of ['sll.pcap', 'sll2.pcap']) {
      const cooked = directions(await flowtapFlows(file(name)));
      for (const entry of cooked) {
        assert.ok(eth.has(entry), `${name}: ${entry}`);
      }
      assert.ok(
        cooked.has(`${v.hostAddr4}|EGRESS`) && cooked.has(`${v.nsAddr6}|INGRESS`),
        [...cooked].join(' '),
      );
    }
  });

  test('a capture piped from tcpdump -w - into stdin gives the same flows as the file', async () => {
    const fromFile = await runCli(['read', file('eth.pcap')]);
    const tcpdump = spawn('tcpdump', ['-r', file('eth.pcapng'), '-w', '-'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const cli = spawn(process.execPath, ['--import', 'tsx', CLI, 'read', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    tcpdump.stdout?.pipe(cli.stdin);
    let stdout = '';
    cli.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    const [code] = await once(cli, 'exit');
    assert.equal(code, 0);
    assert.ok(fromFile.stdout.length > 0);
    assert.equal(stdout, fromFile.stdout);
  });
});
