/**
 * Offline capture benchmark: packets/s reading one generated classic pcap (1 M Ethernet packets
 * of 20 000 mixed IPv4/IPv6 TCP/UDP flows over 10 s of capture time, 96-byte snap length as
 * `tcpdump -s 96` writes) by flowtap — the decoder alone, and `flowtap read` as a process
 * printing JSON lines — side by side with softflowd (`-r FILE`, NetFlow to a local port) and
 * `tshark -q -z conv,ip`. Ratios are to softflowd (target ≥ 1.00); softflowd is driven through
 * its control socket (see softflowdSeconds). Both cores are shared with other work: figures are noisy,
 * compare ratios within one run. Needs softflowd and tshark; a missing tool's case is skipped.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureDecoder } from '../src/capture/pcap/capture-decoder.ts';

const PACKETS = 1_000_000;
const FLOWS = 20_000;
const SNAP_BYTES = 96;
const PACKET_SPACING_US = 10;
const START_SECONDS = 1_700_000_000;
const READ_CHUNK_BYTES = 1 << 20;
// The built CLI, as users run it (`npm run build` first): tsx would add its own start-up and transpiling.
const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;

/** The headers of one flow's packets (Ethernet + IP + TCP/UDP), built once. */
function flowHeaders(flow: number): Buffer {
  const v6 = flow % 4 === 3;
  const tcp = flow % 2 === 0;
  const l4Bytes = tcp ? 20 : 8;
  const ipBytes = v6 ? 40 : 20;
  const frame = Buffer.alloc(14 + ipBytes + l4Bytes);
  frame.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0);
  frame.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  const ip = 14;
  if (v6) {
    frame[ip] = 0x60;
    frame[ip + 6] = tcp ? 6 : 17;
    frame[ip + 7] = 64;
    frame.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, flow >>> 8, flow & 0xff], ip + 8);
    frame.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], ip + 24);
  } else {
    frame[ip] = 0x45;
    frame[ip + 8] = 64;
    frame[ip + 9] = tcp ? 6 : 17;
    frame.set([10, 1, flow >>> 8, flow & 0xff], ip + 12);
    frame.set([10, 0, 0, 1], ip + 16);
  }
  const l4 = ip + ipBytes;
  frame.writeUInt16BE(1024 + (flow % 50_000), l4);
  frame.writeUInt16BE(tcp ? 443 : 53, l4 + 2);
  if (tcp) {
    frame[l4 + 12] = 0x50;
    frame[l4 + 13] = 0x18;
  }
  return frame;
}

/** Writes the capture; returns its size in bytes. */
function generateCapture(path: string): number {
  const fd = openSync(path, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(SNAP_BYTES, 16);
  header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  let size = header.length;
  const flows = Array.from({ length: FLOWS }, (_, i) => flowHeaders(i));
  const chunk = Buffer.alloc(4 << 20);
  let at = 0;
  let random = 12345;
  for (let i = 0; i < PACKETS; i++) {
    random = (Math.imul(random, 1103515245) + 12345) >>> 0;
    // Skewed flow choice: a few heavy flows and a long tail, as real traffic.
    const flow = Math.floor(((random >>> 8) / 16_777_216) ** 2 * FLOWS);
    const headers = flows[flow];
    const wire = headers.length + ((random >>> 4) % 1400);
    const captured = Math.min(wire, SNAP_BYTES, headers.length);
    if (at + 16 + captured > chunk.length) {
      writeSync(fd, chunk, 0, at);
      size += at;
      at = 0;
    }
    const us = i * PACKET_SPACING_US;
    chunk.writeUInt32LE(START_SECONDS + Math.floor(us / 1e6), at);
    chunk.writeUInt32LE(us % 1e6, at + 4);
    chunk.writeUInt32LE(captured, at + 8);
    chunk.writeUInt32LE(wire, at + 12);
    headers.copy(chunk, at + 16, 0, captured);
    // Length fields agree with the wire length, so every tool parses the packet as valid.
    const ipAt = at + 16 + 14;
    const v6 = headers[12] === 0x86;
    const ipHeaderBytes = v6 ? 40 : 20;
    chunk.writeUInt16BE(v6 ? wire - 14 - ipHeaderBytes : wire - 14, ipAt + (v6 ? 4 : 2));
    if (headers[14 + (v6 ? 6 : 9)] === 17)
      chunk.writeUInt16BE(wire - 14 - ipHeaderBytes, ipAt + ipHeaderBytes + 4);
    at += 16 + captured;
  }
  writeSync(fd, chunk, 0, at);
  closeSync(fd);
  return size + at;
}

function decoderSeconds(path: string): number {
  const data = readFileSync(path);
  const started = process.hrtime.bigint();
  const decoder = new CaptureDecoder();
  let rows = 0;
  for (let at = 0; at < data.length; at += READ_CHUNK_BYTES) {
    rows += decoder.push(data.subarray(at, at + READ_CHUNK_BYTES))?.count ?? 0;
  }
  decoder.end();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (rows !== PACKETS) throw new Error(`decoder counted ${rows} of ${PACKETS} packets`);
  return seconds;
}

function processSeconds(cmd: string, args: string[]): number | undefined {
  const started = process.hrtime.bigint();
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (result.error || result.status !== 0) {
    console.log(
      `${cmd}: skipped (${result.error?.message ?? result.stderr.toString().trim().slice(0, 200)})`,
    );
    return undefined;
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Sends one softflowctl command over the control socket and returns the reply. */
function softflowctl(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let reply = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
    socket.end(command);
  });
}

/**
 * softflowd 1.1.0 reading a file handles one pcap batch (8192 packets) per control-socket
 * connection and never exits at the end of the file, so the run asks for `statistics` until
 * every packet is processed: its time is from start to that answer.
 */
async function softflowdSeconds(dir: string): Promise<number | undefined> {
  if (spawnSync('softflowd', ['-h']).error) {
    console.log('softflowd: skipped (not installed)');
    return undefined;
  }
  const socketPath = join(dir, 'sf.ctl');
  const started = process.hrtime.bigint();
  // A relative path: softflowd keeps only the first 16 characters of the file name it prints.
  const child = spawn(
    'softflowd',
    ['-r', 'bench.pcap', '-n', '127.0.0.1:9', '-d', '-6', '-p', join(dir, 'sf.pid'), '-c', socketPath],
    { cwd: dir, stdio: 'ignore' },
  );
  const exited = once(child, 'exit');
  try {
    let processed = 0;
    for (let asks = 0; processed < PACKETS; asks++) {
      if (asks > PACKETS / 1000) throw new Error(`softflowd stalled at ${processed} packets`);
      const reply = await softflowctl(socketPath, 'statistics').catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5)); // socket not bound yet
        return '';
      });
      processed = Number(/Packets processed: (\d+)/.exec(reply)?.[1] ?? 0);
    }
    return Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'flowtap-pcap-bench-'));
try {
  const path = join(dir, 'bench.pcap');
  const bytes = generateCapture(path);
  console.log(
    `capture: ${PACKETS} packets, ${FLOWS} flows, ${(bytes / 2 ** 20).toFixed(0)} MiB (machine shared: figures noisy)`,
  );
  const baseline = await softflowdSeconds(dir);
  const cases: [string, number | undefined][] = [
    ['softflowd -r FILE -d -6', baseline],
    ['flowtap CaptureDecoder, in process', decoderSeconds(path)],
    ['flowtap read FILE > /dev/null (process)', processSeconds(process.execPath, [CLI, 'read', path])],
    ['tshark -q -z conv,ip -r FILE', processSeconds('tshark', ['-q', '-z', 'conv,ip', '-r', path])],
  ];
  for (const [name, seconds] of cases) {
    if (seconds === undefined) continue;
    const rate = PACKETS / seconds;
    const ratio = baseline === undefined ? 'n/a' : `${(baseline / seconds).toFixed(2)}x softflowd`;
    console.log(
      `${name}: ${Math.round(rate).toLocaleString('en')} packets/s (${seconds.toFixed(2)} s), ${ratio}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
