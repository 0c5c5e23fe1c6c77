/**
 * Offline capture benchmark: packets/s and peak RSS of `flowtap read` as a process (printing JSON
 * lines) side by side with softflowd (`-r FILE`, NetFlow to a local port) on the same generated
 * classic pcaps, plus flowtap's CaptureDecoder in process and `tshark -q -z conv,ip`:
 * - snapped: 1 M Ethernet packets of 20 000 mixed IPv4/IPv6 TCP/UDP flows over 10 s, 96-byte
 *   snap length as `tcpdump -s 96` writes;
 * - full: 1 M whole packets of about 150 bytes in 10 000 flows;
 * - 10M: the snapped capture ten times over (10 M packets, 100 s), flowtap only, to show that
 *   memory is bounded by the flow cache, not by the input.
 * Ratios are to softflowd (target ≥ 1.5x packets/s; peak RSS target ≤ 80 MB); softflowd is driven
 * through its control socket (see softflowdRun). Peak RSS is the process's VmHWM, polled.
 * softflowd and `read` run 3 times on each 1 M-packet capture: the fastest run's time and the
 * highest peak RSS are printed.
 * `read` runs as users run it (TCP analysis on), and again with it off. Both cores are shared with
 * other work: figures are noisy, compare ratios within one run. Needs softflowd and tshark; a
 * missing tool's case is skipped. FLOWTAP_BENCH_CAPTURE_DIR=DIR keeps the captures in DIR.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureDecoder } from '../src/capture/pcap/capture-decoder.ts';

const START_SECONDS = 1_700_000_000;
const READ_CHUNK_BYTES = 1 << 20;
const RSS_POLL_MS = 20;
// The built CLI, as users run it (`npm run build` first): tsx would add its own start-up and transpiling.
const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;

/** One generated capture. */
interface CaptureSpec {
  name: string;
  packets: number;
  flows: number;
  /** Snap length; 0 keeps whole packets. */
  snapBytes: number;
  /** Wire length of a packet: its headers plus random payload, or about 150 bytes in all. */
  fullSize: boolean;
  packetSpacingUs: number;
  /** Times the packet sequence is written (each repetition later in time). */
  repeats: number;
}

const CAPTURES: readonly CaptureSpec[] = [
  {
    name: 'snapped',
    packets: 1_000_000,
    flows: 20_000,
    snapBytes: 96,
    fullSize: false,
    packetSpacingUs: 10,
    repeats: 1,
  },
  {
    name: 'full',
    packets: 1_000_000,
    flows: 10_000,
    snapBytes: 0,
    fullSize: true,
    packetSpacingUs: 10,
    repeats: 1,
  },
];
const TEN_MILLION: CaptureSpec = { ...CAPTURES[0], name: '10M', repeats: 10 };

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
function generateCapture(path: string, spec: CaptureSpec): number {
  const fd = openSync(path, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(spec.snapBytes || 262_144, 16);
  header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  let size = header.length;
  const flows = Array.from({ length: spec.flows }, (_, i) => flowHeaders(i));
  // Each TCP flow's next sequence number: segments follow one another as in real traffic, so the
  // TCP analysis `read` runs by default finds the retransmissions there are (none), not one per
  // segment of a stream stuck at sequence 0.
  const nextSeq = new Uint32Array(spec.flows);
  const payload = Buffer.alloc(256, 0x5a);
  const chunk = Buffer.alloc(4 << 20);
  let at = 0;
  for (let round = 0; round < spec.repeats; round++) {
    let random = 12345;
    for (let i = 0; i < spec.packets; i++) {
      random = (Math.imul(random, 1103515245) + 12345) >>> 0;
      // Skewed flow choice: a few heavy flows and a long tail, as real traffic.
      const flow = Math.floor(((random >>> 8) / 16_777_216) ** 2 * spec.flows);
      const headers = flows[flow];
      const wire = spec.fullSize
        ? Math.max(headers.length, 140 + ((random >>> 4) % 21))
        : headers.length + ((random >>> 4) % 1400);
      const captured = spec.fullSize ? wire : Math.min(wire, spec.snapBytes, headers.length);
      if (at + 16 + captured > chunk.length) {
        writeSync(fd, chunk, 0, at);
        size += at;
        at = 0;
      }
      const us = (round * spec.packets + i) * spec.packetSpacingUs;
      chunk.writeUInt32LE(START_SECONDS + Math.floor(us / 1e6), at);
      chunk.writeUInt32LE(us % 1e6, at + 4);
      chunk.writeUInt32LE(captured, at + 8);
      chunk.writeUInt32LE(wire, at + 12);
      headers.copy(chunk, at + 16, 0, Math.min(captured, headers.length));
      if (captured > headers.length)
        payload.copy(chunk, at + 16 + headers.length, 0, captured - headers.length);
      // Length fields agree with the wire length, so every tool parses the packet as valid.
      const ipAt = at + 16 + 14;
      const v6 = headers[12] === 0x86;
      const ipHeaderBytes = v6 ? 40 : 20;
      chunk.writeUInt16BE(v6 ? wire - 14 - ipHeaderBytes : wire - 14, ipAt + (v6 ? 4 : 2));
      if (headers[14 + (v6 ? 6 : 9)] === 17)
        chunk.writeUInt16BE(wire - 14 - ipHeaderBytes, ipAt + ipHeaderBytes + 4);
      else {
        chunk.writeUInt32BE(nextSeq[flow], ipAt + ipHeaderBytes + 4);
        nextSeq[flow] = (nextSeq[flow] + wire - 14 - ipHeaderBytes - 20) >>> 0;
      }
      at += 16 + captured;
    }
  }
  writeSync(fd, chunk, 0, at);
  closeSync(fd);
  return size + at;
}

function decoderSeconds(path: string, packets: number): number {
  const data = readFileSync(path);
  const started = process.hrtime.bigint();
  const decoder = new CaptureDecoder();
  let rows = 0;
  for (let at = 0; at < data.length; at += READ_CHUNK_BYTES) {
    const batch = decoder.push(data.subarray(at, at + READ_CHUNK_BYTES));
    if (batch === undefined) continue;
    rows += batch.count;
    decoder.recycle(batch); // as `read` does once the accounter has read it
  }
  decoder.end();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (rows !== packets) throw new Error(`decoder counted ${rows} of ${packets} packets`);
  return seconds;
}

/** Time and peak resident memory of one run. */
interface RunFigures {
  seconds: number;
  peakRssBytes: number | undefined;
}

/** The peak resident set (VmHWM) of process `pid` so far, or undefined once it is gone. */
function peakRssBytes(pid: number): number | undefined {
  try {
    const kib = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/** Runs `cmd args` to the end with stdout discarded, polling its peak RSS. */
async function processRun(cmd: string, args: string[]): Promise<RunFigures | undefined> {
  const started = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  let peak: number | undefined;
  const poll = setInterval(() => {
    peak = peakRssBytes(child.pid ?? 0) ?? peak;
  }, RSS_POLL_MS);
  const [code] = (await once(child, 'exit').catch((err: Error) => [err])) as [number | Error];
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(poll);
  if (code !== 0) {
    console.log(`${cmd}: skipped (${code instanceof Error ? code.message : stderr.trim().slice(0, 200)})`);
    return undefined;
  }
  return { seconds, peakRssBytes: peak };
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
async function softflowdRun(dir: string, file: string, packets: number): Promise<RunFigures | undefined> {
  const socketPath = join(dir, 'sf.ctl');
  const started = process.hrtime.bigint();
  // A relative path: softflowd keeps only the first 16 characters of the file name it prints.
  const child = spawn(
    'softflowd',
    ['-r', file, '-n', '127.0.0.1:9', '-d', '-6', '-p', join(dir, 'sf.pid'), '-c', socketPath],
    { cwd: dir, stdio: 'ignore' },
  );
  const exited = once(child, 'exit').catch((err: Error) => [err]);
  const spawned = await Promise.race([once(child, 'spawn').then(() => true), exited.then(() => false)]);
  if (!spawned) {
    console.log('softflowd: skipped (not installed)');
    return undefined;
  }
  try {
    let processed = 0;
    for (let asks = 0; processed < packets; asks++) {
      if (asks > packets / 1000) throw new Error(`softflowd stalled at ${processed} packets`);
      const reply = await softflowctl(socketPath, 'statistics').catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 5)); // socket not bound yet
        return '';
      });
      processed = Number(/Packets processed: (\d+)/.exec(reply)?.[1] ?? 0);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { seconds, peakRssBytes: peakRssBytes(child.pid ?? 0) };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Runs of each tool on the 1 M-packet captures: the machine is shared, the best one is kept. */
const RUNS = 3;

/** The fastest of {@link RUNS} runs, with the highest peak RSS of them; undefined if one was skipped. */
async function bestOf(run: () => Promise<RunFigures | undefined>): Promise<RunFigures | undefined> {
  let best: RunFigures | undefined;
  let peak: number | undefined;
  for (let r = 0; r < RUNS; r++) {
    const figures = await run();
    if (figures === undefined) return undefined;
    if (best === undefined || figures.seconds < best.seconds) best = figures;
    if (figures.peakRssBytes !== undefined) peak = Math.max(peak ?? 0, figures.peakRssBytes);
  }
  return best === undefined ? undefined : { seconds: best.seconds, peakRssBytes: peak };
}

function mb(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Prints one case: packets/s and its ratio to the baseline's, peak RSS and its ratio. */
function report(
  name: string,
  packets: number,
  run: RunFigures | undefined,
  baseline: RunFigures | undefined,
): void {
  if (run === undefined) return;
  const rate = packets / run.seconds;
  const ratio = baseline === undefined ? 'n/a' : `${(baseline.seconds / run.seconds).toFixed(2)}x softflowd`;
  let line = `${name}: ${Math.round(rate).toLocaleString('en')} packets/s (${run.seconds.toFixed(2)} s), ${ratio}`;
  if (run.peakRssBytes !== undefined) {
    line += `; peak RSS ${mb(run.peakRssBytes)}`;
    if (baseline?.peakRssBytes !== undefined)
      line += ` (${(run.peakRssBytes / baseline.peakRssBytes).toFixed(1)}x softflowd)`;
  }
  console.log(line);
}

// FLOWTAP_BENCH_CAPTURE_DIR keeps the generated captures there, to profile `read` on them.
const keptDir = process.env.FLOWTAP_BENCH_CAPTURE_DIR;
const dir = keptDir ?? mkdtempSync(join(tmpdir(), 'flowtap-pcap-bench-'));
mkdirSync(dir, { recursive: true });
try {
  for (const spec of CAPTURES) {
    const path = join(dir, `${spec.name}.pcap`);
    const bytes = generateCapture(path, spec);
    console.log(
      `capture ${spec.name}: ${spec.packets} packets, ${spec.flows} flows, ${(bytes / 2 ** 20).toFixed(0)} MiB (machine shared: figures noisy)`,
    );
    const baseline = await bestOf(() => softflowdRun(dir, `${spec.name}.pcap`, spec.packets));
    report(`${spec.name}: softflowd -r FILE -d -6`, spec.packets, baseline, baseline);
    report(
      `${spec.name}: flowtap CaptureDecoder, in process`,
      spec.packets,
      { seconds: decoderSeconds(path, spec.packets), peakRssBytes: undefined },
      baseline,
    );
    report(
      `${spec.name}: flowtap read FILE > /dev/null (process)`,
      spec.packets,
      await bestOf(() => processRun(process.execPath, [CLI, 'read', path])),
      baseline,
    );
    report(
      `${spec.name}: flowtap read --no-rtt --no-tcp-retrans FILE (TCP analysis off)`,
      spec.packets,
      await bestOf(() => processRun(process.execPath, [CLI, 'read', '--no-rtt', '--no-tcp-retrans', path])),
      baseline,
    );
    if (spec.name === 'snapped') {
      report(
        `${spec.name}: tshark -q -z conv,ip -r FILE`,
        spec.packets,
        await processRun('tshark', ['-q', '-z', 'conv,ip', '-r', path]),
        baseline,
      );
    }
    if (keptDir === undefined) rmSync(path);
  }
  const path = join(dir, 'ten.pcap');
  const bytes = generateCapture(path, TEN_MILLION);
  const packets = TEN_MILLION.packets * TEN_MILLION.repeats;
  console.log(`capture 10M: ${packets} packets, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
  report(
    '10M: flowtap read FILE > /dev/null (process)',
    packets,
    await processRun(process.execPath, [CLI, 'read', path]),
    undefined,
  );
} finally {
  if (keptDir === undefined) rmSync(dir, { recursive: true, force: true });
}
