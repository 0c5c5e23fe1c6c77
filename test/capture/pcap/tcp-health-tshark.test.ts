/**
 * `flowtap read`'s TCP health against tshark on a capture of real TCP: the test process sends
 * data into a namespace whose input drops one data segment in five at random (nftables `numgen`),
 * while a bulk transfer the other way keeps a `tbf` queue full, so the measured connection's
 * SYN-ACK and ACKs wait tens of milliseconds. tcpdump records it all on the host-side veth (the
 * drops happen after it, so every retransmission repeats a segment the capture holds). Each
 * flow's retransmitted segments and bytes must equal tshark's `tcp.analysis.retransmission` count
 * and length sum in its direction; each client flow's handshake time, read as from the client's
 * host (SYN → SYN-ACK) and as from the server's (SYN-ACK → ACK), must equal tshark's per-stream
 * `tcp.time_delta` of the packet ending it, the two adding up to `tcp.analysis.initial_rtt`.
 * Needs root, nft, tc, ethtool, tcpdump and tshark; run under the kernel lock.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, run, type VethPair } from '../../net/netns.ts';
import { startTcpdump, stopTcpdump } from '../../net/tcpdump.ts';
import { trafficCommand } from '../../net/traffic.ts';

const skip = skipUnlessKernel('capture TCP with tcpdump on veths with tbf and nftables drops');

const MEASURED_PORT = 5201;
const MEASURED_BYTES = 400_000;
const FILLER_BYTES = 1_200_000;
/** Bytes the filler must have delivered before the measured connection opens: its queue is full. */
const FILLER_HEAD_START_BYTES = 150_000;
const MARKER = 'ftthmark';
const MARKER_PINGS = 3;
const WAIT_STEP_MS = 20;
const WAIT_LIMIT_MS = 60_000;

/** The receiver run in the namespace: reads each connection to its end, then closes it. */
const RECEIVER = `
const server = require('node:net').createServer((s) => { s.resume(); s.on('end', () => s.end()); s.on('error', () => s.destroy()); });
server.listen(Number(process.argv[1]), process.argv[2], () => process.stdout.write('listening\\n'));
`;

async function waitFor(what: string, ready: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
  }
}

/** `promise`, or an error naming `what` once WAIT_LIMIT_MS have passed, so a stalled step says which. */
async function bounded<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_LIMIT_MS);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function startAndWaitFor(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  text: string,
): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    child[stream]?.setEncoding('utf8').on('data', (d: string) => {
      seen += d;
      if (seen.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before "${text}": ${seen}`)));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  await exited;
}

/** Seconds with up to 9 decimals (as tshark prints times) → integer nanoseconds, exactly. */
function secondsTextToNs(text: string): number {
  const [whole, fraction = ''] = text.trim().split('.');
  return Number(whole) * 1e9 + Number(fraction.padEnd(9, '0').slice(0, 9));
}

/** The fields of a `flowtap read` JSON line this test reads. */
interface JsonFlow {
  Transport: { SrcPort: number; DstPort: number; Proto: string };
  TimeHandshakeRttNs?: number;
  PktRetransPackets?: number;
  PktRetransBytes?: number;
}

/** `flowtap read` of `file` (with `extra` arguments): its TCP flows, one record each. */
async function readFlows(file: string, extra: string[] = []): Promise<JsonFlow[]> {
  // One record per flow: the active timeout is longer than the capture.
  const { code, stdout, stderr } = await runCli([
    'read',
    '--output',
    'json',
    '--cache-active-timeout',
    '1h',
    ...extra,
    file,
  ]);
  assert.equal(code, 0, stderr);
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as JsonFlow)
    .filter((f) => f.Transport.Proto === 'TCP');
}

/** One TCP packet as tshark analyses it. */
interface TsharkPacket {
  srcPort: number;
  dstPort: number;
  flags: number;
  len: number;
  retransmission: boolean;
  streamDeltaNs: number;
  initialRttNs: number | undefined;
}

async function tsharkPackets(file: string): Promise<TsharkPacket[]> {
  const fields = [
    'tcp.srcport',
    'tcp.dstport',
    'tcp.flags',
    'tcp.len',
    'tcp.analysis.retransmission',
    'tcp.time_delta',
    'tcp.analysis.initial_rtt',
  ];
  const out = await run('tshark', [
    '-r',
    file,
    '-o',
    'tcp.calculate_timestamps:TRUE',
    '-Y',
    'tcp',
    '-T',
    'fields',
    '-E',
    'separator=/t',
    ...fields.flatMap((f) => ['-e', f]),
  ]);
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [src, dst, flags, len, retrans, delta, irtt] = line.split('\t');
      return {
        srcPort: Number(src),
        dstPort: Number(dst),
        flags: Number(flags),
        len: Number(len),
        retransmission: retrans !== '',
        streamDeltaNs: secondsTextToNs(delta),
        initialRttNs: irtt ? secondsTextToNs(irtt) : undefined,
      };
    });
}

const SYN = 0x02;
const ACK = 0x10;

let pair: VethPair | undefined;

/** The whole exchange takes seconds; past this the setup has stalled. */
const BEFORE_TIMEOUT_MS = 180_000;

describe('flowtap read measures TCP health as tshark does', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-tcp-health-'));
  const file = join(dir, 'health.pcap');
  const closers: (() => Promise<void> | void)[] = [];
  /** The capture read as it is (no direction recorded: every SYN arrives, as on its server's host). */
  let flows: JsonFlow[] = [];
  /** The capture read as seen from each client's host. */
  let flowsFromClients: JsonFlow[] = [];
  let packets: TsharkPacket[] = [];
  let measuredClientPort = 0;
  let fillerPort = 0;

  before(
    async () => {
      pair = await createVethPair('ftth');
      const v = pair;
      const inNs = ['netns', 'exec', v.ns];
      // Segments of at most one MTU on the wire, as a NIC would send them, in both directions.
      await run('ethtool', ['-K', v.hostIf, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      await run('ip', [...inNs, 'ethtool', '-K', v.nsIf, 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      // The namespace's way out is slow: the filler keeps its queue full, so the measured
      // connection's SYN-ACK and ACKs wait in it.
      await run('ip', [
        ...inNs,
        'tc',
        'qdisc',
        'add',
        'dev',
        v.nsIf,
        'root',
        'tbf',
        'rate',
        '4mbit',
        'burst',
        '4kb',
        'latency',
        '60ms',
      ]);
      // One data segment in five of the measured connection is dropped on arrival (after the
      // capture point); its SYN is not, so the handshake is the one being timed.
      const ruleset = `table inet ftth {
      chain input {
        type filter hook input priority 0; policy accept;
        tcp dport ${MEASURED_PORT} tcp flags != syn numgen random mod 5 0 drop
      }
    }`;
      const rulesetFile = join(dir, 'drop.nft');
      writeFileSync(rulesetFile, ruleset);
      await run('ip', [...inNs, 'nft', '-f', rulesetFile]);

      const receiver = spawn('ip', [...inNs, 'node', '-e', RECEIVER, String(MEASURED_PORT), v.nsAddr4], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      closers.push(() => stopProcess(receiver));
      await bounded('the receiver to listen', startAndWaitFor(receiver, 'stdout', 'listening'));

      let fillerReceived = 0;
      const fillerServer: Server = createServer((s) => {
        s.on('data', (d: Buffer) => {
          fillerReceived += d.length;
        });
        s.on('end', () => s.end());
        s.on('error', () => s.destroy());
      });
      await new Promise<void>((resolve) => fillerServer.listen(0, v.hostAddr4, resolve));
      closers.push(() => void fillerServer.close());
      fillerPort = (fillerServer.address() as { port: number }).port;

      const dump = await startTcpdump([
        '-i',
        v.hostIf,
        '--time-stamp-precision=nano',
        '-w',
        file,
        `tcp or (icmp and host ${v.nsAddr4})`,
      ]);
      closers.push(() => stopTcpdump(dump));

      const filler = spawn('ip', [
        ...inNs,
        ...trafficCommand({ kind: 'tcp', host: v.hostAddr4, port: fillerPort, bytes: FILLER_BYTES }),
      ]);
      closers.push(() => stopProcess(filler));
      await waitFor('the filler to fill the queue', () => fillerReceived >= FILLER_HEAD_START_BYTES);

      const measured: Socket = connect({ host: v.nsAddr4, port: MEASURED_PORT, localAddress: v.hostAddr4 });
      await bounded('the measured connection to open', once(measured, 'connect'));
      measuredClientPort = measured.localPort ?? 0;
      measured.end(Buffer.alloc(MEASURED_BYTES, 0x6d));
      measured.resume();
      await bounded('the measured connection to close', once(measured, 'close'));
      await bounded('the filler to exit', once(filler, 'exit'));
      // The filler's process ends once its bytes are in its socket, not delivered: until they
      // are, the tbf queue is full and drops what would wait past its latency, the marker too.
      await waitFor('the filler to be delivered', () => fillerReceived >= FILLER_BYTES);

      // Everything before the marker ping is in the file once a request and its reply are. A few
      // requests (ping succeeds on any reply), as a queue may still drop one.
      await run('ip', [
        ...inNs,
        'ping',
        '-c',
        String(MARKER_PINGS),
        '-i',
        '0.2',
        '-s',
        '24',
        '-p',
        Buffer.from(MARKER).toString('hex'),
        v.hostAddr4,
      ]);
      await waitFor('the marker in the capture', () => {
        const data = readFileSync(file);
        return data.indexOf(MARKER) >= 0 && data.indexOf(MARKER, data.indexOf(MARKER) + 1) >= 0;
      });
      await stopTcpdump(dump);

      flows = await readFlows(file);
      // Both addresses local: every packet EGRESS, so each SYN left, as on its client's host.
      flowsFromClients = await readFlows(file, ['--local-net', `${v.hostAddr4}/32,${v.nsAddr4}/32`]);
      packets = await tsharkPackets(file);
      // Bounded: a connection stalled by the random drops fails the suite instead of hanging it.
    },
    { timeout: BEFORE_TIMEOUT_MS },
  );

  after(async () => {
    for (const close of closers) await close();
    await pair?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  function flowOf(srcPort: number, dstPort: number, of = flows): JsonFlow {
    const found = of.filter((f) => f.Transport.SrcPort === srcPort && f.Transport.DstPort === dstPort);
    assert.equal(found.length, 1, `one flow ${srcPort} → ${dstPort}`);
    return found[0];
  }

  test('retransmitted segments and bytes of every flow equal tshark’s tcp.analysis.retransmission', () => {
    const measured = packets.filter((p) => p.srcPort === measuredClientPort && p.retransmission);
    assert.ok(measured.length > 0, 'the drops made the measured connection retransmit');
    for (const flow of flows) {
      const { SrcPort, DstPort } = flow.Transport;
      const own = packets.filter((p) => p.srcPort === SrcPort && p.dstPort === DstPort && p.retransmission);
      const what = `${SrcPort} → ${DstPort}`;
      assert.equal(flow.PktRetransPackets ?? 0, own.length, `segments of ${what}`);
      assert.equal(
        flow.PktRetransBytes ?? 0,
        own.reduce((sum, p) => sum + p.len, 0),
        `bytes of ${what}`,
      );
    }
  });

  test('the client flow gets tshark’s SYN → SYN-ACK seen from the client, SYN-ACK → ACK from the server, adding up to its initial RTT', () => {
    for (const [client, server] of [
      [measuredClientPort, MEASURED_PORT],
      [0, fillerPort],
    ]) {
      const stream = packets.filter(
        (p) =>
          (client === 0 || p.srcPort === client || p.dstPort === client) &&
          (p.srcPort === server || p.dstPort === server),
      );
      const synAck = stream.find((p) => p.srcPort === server && (p.flags & (SYN | ACK)) === (SYN | ACK));
      assert.ok(synAck, `a SYN-ACK from ${server}`);
      const clientPort = synAck.dstPort;
      const handshakeAck = stream.find(
        (p) =>
          p.srcPort === clientPort &&
          (p.flags & (SYN | ACK)) === ACK &&
          stream.indexOf(p) > stream.indexOf(synAck),
      );
      assert.ok(handshakeAck, `the handshake ACK to ${server}`);
      const what = `${clientPort} → ${server}`;
      const fromClient = flowOf(clientPort, server, flowsFromClients).TimeHandshakeRttNs;
      const fromServer = flowOf(clientPort, server).TimeHandshakeRttNs;
      assert.equal(fromClient, synAck.streamDeltaNs, `SYN → SYN-ACK of ${what}`);
      assert.equal(fromServer, handshakeAck.streamDeltaNs, `SYN-ACK → ACK of ${what}`);
      const initialRtt = stream.find((p) => p.initialRttNs !== undefined)?.initialRttNs;
      assert.equal((fromClient ?? 0) + (fromServer ?? 0), initialRtt);
      assert.equal(flowOf(server, clientPort).TimeHandshakeRttNs, undefined, 'the server flow has none');
      assert.equal(flowOf(server, clientPort, flowsFromClients).TimeHandshakeRttNs, undefined);
    }
  });

  test('the measured handshake waited in the tbf queue', () => {
    const slowed = flowOf(measuredClientPort, MEASURED_PORT, flowsFromClients).TimeHandshakeRttNs ?? 0;
    assert.ok(slowed > 5_000_000, `SYN → SYN-ACK took ${slowed} ns`);
  });
});
