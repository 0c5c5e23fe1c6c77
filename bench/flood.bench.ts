/**
 * Flood at the defaults: `flowtap run` (the built CLI, default settings) counts a veth while
 * hping3 in a namespace sends TCP SYNs as fast as it can for FLOOD_SECONDS, the source port
 * changing every packet (a new flow per packet until the 65 536 ports wrap; the host answers each
 * SYN with a RST, another flow on egress). Once delivery has caught up (nothing new for 6 s, at
 * most 2 min) SIGTERM, and every packet the interface counted must be in the flows delivered,
 * once per exporter: JSON lines to a file, gRPC to `flowtap
 * collect` (its JSON lines to a file) and Kafka to librdkafka's mock cluster (kcat). One line per
 * exporter: packets delivered against the interface counters (lost, lost %), flows the agent
 * dropped or failed to send (its own counters), and the agent's peak RSS (VmHWM), against the
 * targets 0 lost and 250 MB. Needs root, hping3 and kcat; the machine is shared, so rates vary.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fromBinary } from '@bufbuild/protobuf';
import { RecordSchema } from '../src/export/pbflow/gen/flow_pb.ts';
import { startKafkaPeer } from '../test/export/kafka-helpers.ts';
import { counterDelta, createVethPair, type VethPair, waitForQuiet } from '../test/net/netns.ts';

const CLI = new URL('../dist/src/cli.js', import.meta.url).pathname;
const FLOOD_SECONDS = Number(process.env.FLOWTAP_FLOOD_SECONDS ?? 10);
const TARGET_PEAK_RSS_MB = 250;
const KAFKA_TOPIC = 'flowtap-flood';
/** How long the agent may take to start, and to stop after SIGTERM. */
const AGENT_TIMEOUT_MS = 60_000;
const RSS_POLL_MS = 100;
/** After the flood: how long delivery must pause to count as caught up, and the longest wait. */
const CAUGHT_UP_QUIET_MS = 6_000;
const CAUGHT_UP_MAX_MS = 120_000;
/** Extra agent flags from the environment, e.g. `--cache-max-flows 1000` to compare with the old default. */
const EXTRA_ARGS = (process.env.FLOWTAP_FLOOD_ARGS ?? '').split(' ').filter((a) => a !== '');

/** Where one exporter's flows end up, and how to count their packets once the agent stopped. */
interface Sink {
  /** Agent flags and environment that select the exporter. */
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Where the agent's stdout goes (a file for JSON, ignored otherwise). */
  stdoutPath?: string;
  /** A figure that grows while flows are delivered (bytes written, messages consumed). */
  progress(): number;
  /** Flows and packets delivered, read after the agent has exited. */
  count(): Promise<{ flows: number; packets: number }>;
  stop(): Promise<void>;
}

/** Flows and the sum of their `Packets` in a file of JSON lines. */
async function countJsonLines(path: string): Promise<{ flows: number; packets: number }> {
  let flows = 0;
  let packets = 0;
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    const m = /"Packets":(\d+)/.exec(line);
    if (!m) continue;
    flows++;
    packets += Number(m[1]);
  }
  return { flows, packets };
}

async function jsonFileSink(dir: string): Promise<Sink> {
  const path = join(dir, 'flows.jsonl');
  return {
    args: ['--export', 'json'],
    env: {},
    stdoutPath: path,
    progress: () => sizeOf(path),
    count: () => countJsonLines(path),
    stop: async () => {},
  };
}

async function grpcSink(dir: string): Promise<Sink> {
  const path = join(dir, 'collected.jsonl');
  const fd = openSync(path, 'w');
  const collector = spawn(process.execPath, [CLI, 'collect', '--port', '0'], {
    stdio: ['ignore', fd, 'pipe'],
  });
  closeSync(fd);
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    collector.stderr?.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
      const m = /"port":(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    collector.once('exit', (code) => reject(new Error(`flowtap collect exited (${code}): ${stderr}`)));
  });
  return {
    args: ['--export', 'grpc', '--target', `127.0.0.1:${port}`],
    env: {},
    progress: () => sizeOf(path),
    count: () => countJsonLines(path),
    stop: () => stopChild(collector),
  };
}

async function kafkaSink(): Promise<Sink> {
  const peer = await startKafkaPeer(KAFKA_TOPIC);
  return {
    args: ['--export', 'kafka'],
    env: { KAFKA_BROKERS: peer.brokers.join(','), KAFKA_TOPIC },
    progress: () => peer.messages.length,
    count: async () => {
      // The agent has exited: what it sent is acknowledged; let kcat consume all of it.
      let seen = -1;
      while (seen !== peer.messages.length) {
        seen = peer.messages.length;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      let packets = 0;
      for (const message of peer.messages) {
        if (message.value) packets += Number(fromBinary(RecordSchema, message.value).packets);
      }
      return { flows: peer.messages.length, packets };
    },
    stop: () => peer.stop(),
  };
}

function sizeOf(path: string): number {
  return statSync(path).size;
}

/**
 * Waits until `sink` has delivered nothing new for CAUGHT_UP_QUIET_MS (the agent has sent what
 * the flood left queued), at most CAUGHT_UP_MAX_MS: the stop that follows then has only the last
 * active timeout's flows to flush, as a stop at any quiet moment would.
 */
async function waitCaughtUp(sink: Sink): Promise<void> {
  const deadline = Date.now() + CAUGHT_UP_MAX_MS;
  let last = sink.progress();
  let quietSince = Date.now();
  while (Date.now() < deadline && Date.now() - quietSince < CAUGHT_UP_QUIET_MS) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = sink.progress();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    }
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** The agent's counters from its last log line (`agent stopped`, with `health`). */
interface StoppedHealth {
  ringBufferLost: number;
  exporters: Array<{ name: string; flowsFailed: number; 'queue-full': number; stopped: number }>;
}

async function runCase(name: string, pair: VethPair, sink: Sink): Promise<void> {
  const stdout = sink.stdoutPath ? openSync(sink.stdoutPath, 'w') : 'ignore';
  const agent = spawn(process.execPath, [CLI, 'run', '-i', pair.hostIf, ...sink.args, ...EXTRA_ARGS], {
    env: { ...process.env, ...sink.env },
    stdio: ['ignore', stdout, 'pipe'],
  });
  if (typeof stdout === 'number') closeSync(stdout);
  let stderr = '';
  let peakRssKb = 0;
  const pollRss = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'));
      if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
    } catch {
      // the agent has exited; the last reading stands
    }
  }, RSS_POLL_MS);
  const exited = once(agent, 'exit');
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not attach: ${stderr}`)), AGENT_TIMEOUT_MS);
      agent.stderr?.setEncoding('utf8').on('data', (text: string) => {
        stderr += text;
        if (stderr.includes('"msg":"attached"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`agent exited: ${stderr}`)));
    });
    const before = await waitForQuiet(pair.hostIf, 200);
    const startRssKb = peakRssKb;
    const flood = pair.spawn('hping3', ['-S', '-p', '80', '--flood', '-q', pair.hostAddr4]);
    const floodEnded = once(flood, 'exit');
    await new Promise((resolve) => setTimeout(resolve, FLOOD_SECONDS * 1000));
    flood.kill('SIGINT');
    await floodEnded;
    await waitForQuiet(pair.hostIf, 200);
    await waitCaughtUp(sink);
    // Read last: the host's neighbour probes while the agent catches up are counted too.
    const offered = counterDelta(before, await waitForQuiet(pair.hostIf, 200));
    agent.kill('SIGTERM');
    const timer = setTimeout(() => agent.kill('SIGKILL'), AGENT_TIMEOUT_MS);
    const [code] = await exited;
    clearTimeout(timer);
    const delivered = await sink.count();
    const health = lastHealth(stderr);
    if (process.env.FLOWTAP_FLOOD_LOGS) process.stderr.write(stderr);
    const expected = offered.rxPackets + offered.txPackets;
    const lost = expected - delivered.packets;
    const sum = (count: (e: StoppedHealth['exporters'][number]) => number) =>
      health.exporters.reduce((n, e) => n + count(e), 0);
    const dropped = `queue-full ${sum((e) => e['queue-full'])}, stopped ${sum((e) => e.stopped)}, failed ${sum((e) => e.flowsFailed)}`;
    const rssMb = (peakRssKb * 1024) / 1e6;
    console.log(
      `${name.padEnd(22)} ${(offered.rxPackets / FLOOD_SECONDS / 1e3).toFixed(0)} k SYN/s  ` +
        `packets ${delivered.packets}/${expected} (lost ${lost}, ${((lost / expected) * 100).toFixed(2)} %)  ` +
        `flows ${delivered.flows} (not delivered: ${dropped}), ring lost ${health.ringBufferLost}  ` +
        `peak RSS ${rssMb.toFixed(0)} MB (${((startRssKb * 1024) / 1e6).toFixed(0)} MB before the flood) (x${(rssMb / TARGET_PEAK_RSS_MB).toFixed(2)} of ${TARGET_PEAK_RSS_MB} MB)  exit ${code}`,
    );
  } finally {
    clearInterval(pollRss);
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGKILL');
      await exited;
    }
    await sink.stop();
  }
}

function lastHealth(stderr: string): StoppedHealth {
  for (const line of stderr.trim().split('\n').reverse()) {
    if (!line.includes('"msg":"agent stopped"')) continue;
    return (JSON.parse(line) as { health: StoppedHealth }).health;
  }
  throw new Error(`the agent logged no "agent stopped": ${stderr.slice(-2000)}`);
}

async function main(): Promise<void> {
  const only = process.env.FLOWTAP_FLOOD_EXPORTERS?.split(',');
  if (process.getuid?.() !== 0 || spawnSync('hping3', ['--version']).error !== undefined) {
    console.log('flood.bench: skipped (needs root and hping3)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-flood-bench-'));
  const pair = await createVethPair('ftfb');
  try {
    console.log(
      `flood: hping3 SYNs, new source port per packet, ${FLOOD_SECONDS} s, agent at defaults ${EXTRA_ARGS.join(' ')} ` +
        `(shared 2-core machine)`,
    );
    const cases: Array<[string, () => Promise<Sink>]> = [
      ['json to a file', () => jsonFileSink(dir)],
      ['grpc to collect', () => grpcSink(dir)],
      ['kafka to mock cluster', () => kafkaSink()],
    ];
    for (const [name, sink] of cases) {
      if (only && !only.some((o) => name.startsWith(o))) continue;
      if (name.startsWith('kafka') && spawnSync('kcat', ['-V']).error !== undefined) {
        console.log(`${name}: skipped (needs kcat)`);
        continue;
      }
      await runCase(name, pair, await sink());
    }
  } finally {
    await pair.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
