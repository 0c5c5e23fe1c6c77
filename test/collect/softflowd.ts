/**
 * softflowd as an IPFIX exporter for the collector's tests: a classic pcap of known flows
 * (IPv4 and IPv6, UDP, TCP and ICMP, one direction each, or a conversation), replayed by
 * `softflowd -r FILE -v 10 -n HOST:PORT`, and the flows softflowd must report for it.
 *
 * softflowd 1.1.0 reading a file handles one batch of packets per control-socket request and
 * never exits at the end of the file, so the run asks for `statistics` until every packet is
 * processed, then `shutdown`, which expires every flow, exports it and exits.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIp } from '../../src/model/ip.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';

type TestContext = { after: (fn: () => unknown) => void };

/** Unix seconds of the first packet. */
const T0_S = 1_700_000_000;
const CONTROL_RETRY_MS = 20;
const MAX_CONTROL_ASKS = 500;

/** True when softflowd is installed. */
export function softflowdAvailable(): boolean {
  return spawnSync('softflowd', ['-h'], { stdio: 'ignore' }).error === undefined;
}

/** One flow of the capture, as softflowd reports it (bytes are IP bytes: softflowd counts from the IP header). */
export interface SoftflowdFlow {
  etype: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  proto: number;
  packets: number;
  ipBytes: number;
  firstMs: number;
  lastMs: number;
  tcpFlags: number;
  dscp: number;
  icmpType: number;
  icmpCode: number;
}

interface Packet {
  frame: Buffer;
  timeMs: number;
}

function ethernet(etype: number, l3: Buffer): Buffer {
  const head = Buffer.from('020000000002020000000001', 'hex');
  const type = Buffer.alloc(2);
  type.writeUInt16BE(etype);
  return Buffer.concat([head, type, l3]);
}

function ipv4(src: string, dst: string, proto: number, tos: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h[1] = tos;
  h.writeUInt16BE(20 + l4.length, 2);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function ipv6(src: string, dst: string, next: number, l4: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(l4.length, 4);
  h[6] = next;
  h[7] = 64;
  h.set(parseIp(src) as Uint8Array, 8);
  h.set(parseIp(dst) as Uint8Array, 24);
  return Buffer.concat([h, l4]);
}

function udp(srcPort: number, dstPort: number, payloadBytes: number): Buffer {
  const u = Buffer.alloc(8 + payloadBytes, 0x61);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(8 + payloadBytes, 4);
  u.writeUInt16BE(0, 6);
  return u;
}

function tcp(srcPort: number, dstPort: number, flags: number, payloadBytes: number): Buffer {
  const t = Buffer.alloc(20 + payloadBytes, 0x62);
  t.writeUInt16BE(srcPort, 0);
  t.writeUInt16BE(dstPort, 2);
  t[12] = 5 << 4;
  t[13] = flags;
  t.writeUInt16BE(65_535, 14);
  return t;
}

function icmpEcho(type: number): Buffer {
  const i = Buffer.alloc(16, 0x63);
  i[0] = type;
  i[1] = 0;
  return i;
}

/**
 * The capture's flows and packets: UDP and TCP over IPv4 with a DSCP, UDP over IPv6, an ICMP
 * echo; each one way, `packets` packets 10 ms apart, flows interleaved.
 */
export function softflowdCapture(): { flows: SoftflowdFlow[]; pcap: Buffer } {
  const specs = [
    {
      kind: 'udp4',
      src: '10.20.0.1',
      dst: '10.20.0.2',
      srcPort: 40_001,
      dstPort: 53,
      packets: 5,
      payload: 100,
    },
    {
      kind: 'udp4',
      src: '10.20.0.3',
      dst: '10.20.0.2',
      srcPort: 40_002,
      dstPort: 123,
      packets: 3,
      payload: 48,
    },
    {
      kind: 'tcp4',
      src: '10.20.0.1',
      dst: '10.20.0.9',
      srcPort: 40_003,
      dstPort: 443,
      packets: 6,
      payload: 200,
    },
    {
      kind: 'udp6',
      src: 'fd00:20::1',
      dst: 'fd00:20::2',
      srcPort: 40_004,
      dstPort: 5353,
      packets: 4,
      payload: 60,
    },
    { kind: 'icmp4', src: '10.20.0.4', dst: '10.20.0.2', srcPort: 0, dstPort: 0, packets: 2, payload: 0 },
  ] as const;
  const packets: Packet[] = [];
  const flows: SoftflowdFlow[] = [];
  specs.forEach((spec, f) => {
    const flow: SoftflowdFlow = {
      etype: spec.kind === 'udp6' ? 0x86dd : 0x0800,
      src: spec.src,
      dst: spec.dst,
      srcPort: spec.srcPort,
      dstPort: spec.dstPort,
      proto: spec.kind === 'tcp4' ? 6 : spec.kind === 'icmp4' ? 1 : 17,
      packets: spec.packets,
      ipBytes: 0,
      firstMs: 0,
      lastMs: 0,
      tcpFlags: 0,
      dscp: spec.kind === 'tcp4' ? 10 : 0,
      icmpType: spec.kind === 'icmp4' ? 8 : 0,
      icmpCode: 0,
    };
    for (let k = 0; k < spec.packets; k++) {
      const timeMs = T0_S * 1000 + f * 3 + k * 10;
      let l3: Buffer;
      if (spec.kind === 'udp4')
        l3 = ipv4(spec.src, spec.dst, 17, 0, udp(spec.srcPort, spec.dstPort, spec.payload));
      else if (spec.kind === 'udp6')
        l3 = ipv6(spec.src, spec.dst, 17, udp(spec.srcPort, spec.dstPort, spec.payload));
      else if (spec.kind === 'icmp4') l3 = ipv4(spec.src, spec.dst, 1, 0, icmpEcho(8));
      else {
        // SYN first, ACK|PSH after, FIN|ACK last.
        const flags = k === 0 ? 0x02 : k === spec.packets - 1 ? 0x11 : 0x18;
        flow.tcpFlags |= flags;
        l3 = ipv4(
          spec.src,
          spec.dst,
          6,
          flow.dscp << 2,
          tcp(spec.srcPort, spec.dstPort, flags, k === 0 ? 0 : spec.payload),
        );
      }
      flow.ipBytes += l3.length;
      if (k === 0) flow.firstMs = timeMs;
      flow.lastMs = timeMs;
      packets.push({ frame: ethernet(flow.etype, l3), timeMs });
    }
    flows.push(flow);
  });
  packets.sort((a, b) => a.timeMs - b.timeMs);
  const pcap = classicPcap(
    packets.map((p) => ({
      frame: p.frame,
      seconds: Math.floor(p.timeMs / 1000),
      fraction: (p.timeMs % 1000) * 1000,
    })),
  );
  return { flows, pcap };
}

/** Asks softflowd's control socket `command` and returns the reply ('' while it is not up yet). */
function control(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    let reply = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
    });
    socket.on('error', () => resolve(''));
    socket.on('close', () => resolve(reply));
    socket.end(command);
  });
}

/**
 * Replays `pcap` through softflowd to `host:port` with the extra `args` (e.g. `-P tcp`), waits
 * until it has processed `packets` packets, shuts it down (exporting every flow) and resolves once
 * it exited. Killed by pid in `t.after` if the test ends first.
 */
export async function runSoftflowd(
  t: TestContext,
  pcap: Buffer,
  packets: number,
  target: string,
  args: readonly string[],
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-softflowd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'replay.pcap'), pcap);
  const socketPath = join(dir, 'ctl');
  const child: ChildProcess = spawn(
    'softflowd',
    [
      '-r',
      'replay.pcap',
      '-v',
      '10',
      '-n',
      target,
      '-d',
      '-6',
      '-p',
      join(dir, 'pid'),
      '-c',
      socketPath,
      ...args,
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
    }
  });
  for (let asks = 0; ; asks++) {
    if (asks > MAX_CONTROL_ASKS) throw new Error('softflowd never processed the whole capture');
    const reply = await control(socketPath, 'statistics');
    if (Number(/Packets processed: (\d+)/.exec(reply)?.[1] ?? -1) >= packets) break;
    await new Promise((resolve) => setTimeout(resolve, CONTROL_RETRY_MS));
  }
  await control(socketPath, 'shutdown');
  await exited;
}
