/**
 * Captures loopback traffic with tshark into a file and decodes it with tshark's IPFIX (cflow)
 * dissector: the real decoder checks what flowtap sends. Start and end are proven by marker
 * datagrams to a sink socket: the capture is live once tshark reports a probe, and complete once
 * it reports the end marker (loopback packets pass the capture point in send order).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
/** Interval between start probes while tshark is still opening the interface. */
const PROBE_INTERVAL_MS = 100;

/** A running capture on `lo`. */
export interface LoopbackCapture {
  /** Waits until everything sent so far is captured, stops tshark and returns the capture file. */
  stop(): Promise<string>;
}

/** Registers a release to run when the test or suite ends (`t.after`, or a suite's own list). */
export type Cleanup = (release: () => unknown) => void;

async function boundSocket(cleanup: Cleanup): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  cleanup(() => socket.close());
  return socket;
}

/** Starts tshark on `lo` with the BPF `filter` and resolves once it is capturing. */
export async function captureLoopback(cleanup: Cleanup, filter: string): Promise<LoopbackCapture> {
  const dir = await mkdtemp(join(tmpdir(), 'flowtap-tshark-'));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'capture.pcapng');
  const sink = await boundSocket(cleanup);
  const probe = await boundSocket(cleanup);
  const marker = await boundSocket(cleanup);
  const sinkPort = sink.address().port;
  const tshark: ChildProcess = spawn(
    'tshark',
    ['-i', 'lo', '-f', `(${filter}) or (udp dst port ${sinkPort})`, '-w', file, '-P', '-l'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(tshark, 'exit');
  cleanup(() => {
    if (tshark.exitCode === null && tshark.signalCode === null) tshark.kill('SIGKILL');
  });
  let stderr = '';
  tshark.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  // Source ports of the marker datagrams tshark has reported.
  const seenSources = new Set<number>();
  const waiters: { port: number; resolve: () => void }[] = [];
  let pending = '';
  tshark.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const m = /UDP \d+ (\d+) → (\d+) /.exec(line);
      if (!m || Number(m[2]) !== sinkPort) continue;
      const port = Number(m[1]);
      seenSources.add(port);
      for (const w of waiters.filter((w) => w.port === port)) w.resolve();
    }
  });
  const seen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      if (seenSources.has(port)) return resolve();
      waiters.push({ port, resolve });
      exited.then(() => reject(new Error(`tshark exited before capturing: ${stderr}`)));
    });

  const probePort = probe.address().port;
  const timer = setInterval(() => probe.send('probe', sinkPort, '127.0.0.1'), PROBE_INTERVAL_MS);
  probe.send('probe', sinkPort, '127.0.0.1');
  try {
    await seen(probePort);
  } finally {
    clearInterval(timer);
  }

  return {
    async stop() {
      marker.send('end', sinkPort, '127.0.0.1');
      await seen(marker.address().port);
      tshark.kill('SIGINT');
      await exited;
      return file;
    },
  };
}

/**
 * The cflow layer of every IPFIX packet in `file`, with `decodeAs` (e.g. `udp.port==4739,cflow`).
 * With `mergeDuplicateKeys`, a field that appears twice in a record (a forward element and its
 * RFC 5103 reverse, which tshark names alike) becomes an array of both values, in record order.
 */
export async function decodeIpfix(
  file: string,
  decodeAs: string,
  options: { mergeDuplicateKeys?: boolean } = {},
): Promise<Record<string, unknown>[]> {
  const merge = options.mergeDuplicateKeys ? ['--no-duplicate-keys'] : [];
  const { stdout } = await execFileAsync(
    'tshark',
    ['-r', file, '-d', decodeAs, '-Y', 'cflow', '-T', 'json', ...merge, '-J', 'cflow'],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const packets = JSON.parse(stdout) as { _source: { layers: { cflow: unknown } } }[];
  // A TCP segment carrying several messages gives an array of cflow layers.
  return packets.flatMap((p) => {
    const cflow = p._source.layers.cflow;
    return (Array.isArray(cflow) ? cflow : [cflow]) as Record<string, unknown>[];
  });
}

/** Entries of `obj` whose key starts with `prefix` (tshark names subtrees `Set 1 [id=256] ...`, `Flow 1`). */
export function subtrees(obj: Record<string, unknown>, prefix: string): Record<string, unknown>[] {
  return Object.entries(obj)
    .filter(([key]) => key.startsWith(prefix))
    .map(([, value]) => value as Record<string, unknown>);
}

/** Every decoded data record (`Flow N` subtree) of every data set, in order, with its set's template id. */
export function dataRecords(
  messages: Record<string, unknown>[],
): { templateId: number; fields: Record<string, unknown> }[] {
  const records: { templateId: number; fields: Record<string, unknown> }[] = [];
  for (const message of messages) {
    for (const set of subtrees(message, 'Set ')) {
      const templateId = Number(set['cflow.flowset_id']);
      if (templateId < 256) continue;
      for (const fields of subtrees(set, 'Flow ')) records.push({ templateId, fields });
    }
  }
  return records;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** tshark's absolute time text (`Nov 14, 2023 22:13:20.123000000 UTC`) as Unix milliseconds. */
export function tsharkTimeMs(text: string): number {
  const m = /^(\w{3}) +(\d+), (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{9}) UTC$/.exec(text);
  if (!m) throw new Error(`unexpected tshark time ${text}`);
  const seconds = Date.UTC(
    Number(m[3]),
    MONTHS.indexOf(m[1]),
    Number(m[2]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  return seconds + Math.floor(Number(m[7]) / 1e6);
}
