/**
 * TCP health benchmark: what RTT, retransmissions and drops cost, each off and on, against the
 * datapath without them (the baseline: today's TC pair alone). One line per case.
 *
 * 1. The TC programs' own time per packet with handshake timing off and on (BPF_PROG_TEST_RUN,
 *    median of ROUNDS means over REPEAT runs): a UDP frame (the non-TCP path must not change),
 *    an ACK of an existing flow, a SYN.
 * 2. A TCP transfer through the veth (sender in the namespace, receiver a child process on the
 *    host side, segmentation offload off so each segment is a packet): kernel time per packet
 *    counted (TC pair plus the health programs, BPF_ENABLE_STATS) and flowtap's own CPU time per
 *    packet (capture, drain, pipeline with the health join). Target: all on ≤ 1.3x the
 *    baseline's kernel time, and flowtap ≤ 0.5 µs CPU per packet.
 * 3. The worst case of drops: trafgen floods the veth from the host side with UDP datagrams to a
 *    port of the namespace no socket listens on (the kernel drops every one, reason NO_SOCKET,
 *    after its headers are pulled into the linear data, so every drop is keyed), one flow and a
 *    new flow per packet, drops off and on. With a new flow per packet the health map fills:
 *    the rest are counted as healthMapFull.
 *
 * Needs root, TCX or clsact, ethtool and trafgen (netsniff-ng); the machine is shared, so figures
 * are noisy: compare ratios within one run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pipeline } from '../src/agent/pipeline.ts';
import { EbpfCapture } from '../src/capture/ebpf/capture.ts';
import type { RecordBatch } from '../src/codec/record-batch.ts';
import { HEALTH_OFF, type HealthSettings } from '../src/ebpf/health-hooks.ts';
import { enableProgramStats, FlowObject } from '../src/ebpf/object.ts';
import { HEALTH_SECTION, SectionMaps } from '../src/ebpf/section-maps.ts';
import { InterfaceRegistry } from '../src/model/interfaces.ts';
import { emptySinkStats, type FlowSink } from '../src/sink/flow-sink.ts';
import { createVethPair, readInterfaceCounters, type VethPair, waitForQuiet } from '../test/net/netns.ts';
import { trafficCommand } from '../test/net/traffic.ts';
import { ALL_PACKET_VECTORS } from '../test/vectors/packets.ts';

const TARGET_KERNEL_RATIO = 1.3;
const TARGET_CPU_NS_PER_PACKET = 500;
const TEST_RUN_REPEAT = 1_000_000;
const TEST_RUN_ROUNDS = 5;
const TRANSFER_BYTES = 256 << 20;
const TCP_ROUNDS = 3;
const FLOOD_PACKETS = 2_000_000;
const MAX_FLOWS = 1 << 17;
const DRAIN_INTERVAL_MS = 1000;
const UDP_PAYLOAD_BYTES = 18;
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const PEER = new URL('../test/capture/ebpf/fixtures/tcp-peer.ts', import.meta.url).pathname;

interface Case {
  name: string;
  health: HealthSettings;
}

const OFF: Case = { name: 'health off (baseline)', health: HEALTH_OFF };
const TCP_CASES: Case[] = [
  OFF,
  { name: 'RTT on', health: { ...HEALTH_OFF, rtt: true } },
  { name: 'retransmissions on', health: { ...HEALTH_OFF, retrans: true } },
  { name: 'drops on', health: { ...HEALTH_OFF, drops: true } },
  { name: 'all on', health: { rtt: true, retrans: true, drops: true, hooks: 'auto' } },
];
const FLOOD_CASES: Case[] = [OFF, { name: 'drops on', health: { ...HEALTH_OFF, drops: true } }];

function vectorFrame(name: string): Buffer {
  const vector = ALL_PACKET_VECTORS.find((v) => v.name === name);
  if (!vector) throw new Error(`no packet vector ${name}`);
  return Buffer.from(vector.frame, 'hex');
}

/** Median kernel ns per packet of `frame` through the ingress program, handshake timing on or off. */
function testRunNs(handshake: boolean, frame: Buffer): number {
  const maps = handshake ? SectionMaps.create(HEALTH_SECTION, 1024) : undefined;
  const obj = FlowObject.load({
    sampling: 1,
    maxFlows: 1024,
    ringBufferBytes: 1 << 16,
    mapKind: 'percpu',
    handshake,
    healthMapFd: maps?.outerFd,
  });
  try {
    obj.testRunNsPerPacket('ingress', frame, 1000);
    const runs: number[] = [];
    for (let i = 0; i < TEST_RUN_ROUNDS; i++)
      runs.push(obj.testRunNsPerPacket('ingress', frame, TEST_RUN_REPEAT));
    runs.sort((a, b) => a - b);
    return runs[Math.floor(TEST_RUN_ROUNDS / 2)];
  } finally {
    obj.close();
    maps?.close();
  }
}

function testRunCases(): void {
  console.log(
    `TC pair, kernel time per packet with handshake timing (BPF_PROG_TEST_RUN, median of ${TEST_RUN_ROUNDS} x ${TEST_RUN_REPEAT}):`,
  );
  const frames: Array<[string, Buffer]> = [
    ['udp (not TCP)', vectorFrame('ipv4 udp with payload')],
    ['tcp ACK, flow known', vectorFrame('ipv4 tcp with NS, CWR, ECE and ACK flags')],
    ['tcp SYN', vectorFrame('ipv4 tcp syn with dscp EF')],
  ];
  for (const [name, frame] of frames) {
    const off = testRunNs(false, frame);
    const on = testRunNs(true, frame);
    console.log(
      `${name.padEnd(24)} handshake off ${String(off).padStart(4)} ns/packet, on ${String(on).padStart(4)} ns/packet  ${(on / off).toFixed(2)}x`,
    );
  }
}

/** utime + stime of this process in nanoseconds (fields 14 and 15 of /proc/self/stat). */
function ownCpuNs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e9;
}

/** A sink that only counts: the pipeline's own cost, without an exporter's. */
class CountingSink implements FlowSink {
  readonly name = 'count';
  readonly stats = emptySinkStats();
  rows = 0;
  withHealth = 0;
  export(batch: RecordBatch): boolean {
    this.rows += batch.count;
    for (let i = 0; i < batch.count; i++) if (batch.flow(i).health) this.withHealth++;
    return true;
  }
  async stop(): Promise<void> {}
}

interface Measured {
  packets: number;
  kernelNsPerPacket: number;
  healthNsPerPacket: number;
  cpuNsPerPacket: number;
  line: string;
}

/** Runs `traffic` with a capture of `health` on the host side through the pipeline, and measures. */
async function measure(
  pair: VethPair,
  health: HealthSettings,
  traffic: () => Promise<void>,
): Promise<Measured> {
  const capture = await EbpfCapture.open({
    sampling: 1,
    direction: 'both',
    maxFlows: MAX_FLOWS,
    drainIntervalMs: DRAIN_INTERVAL_MS,
    ringBufferBytes: 1 << 26,
    interfaces: new InterfaceRegistry(),
    health,
  });
  const sink = new CountingSink();
  const pipeline = new Pipeline(
    {
      buffersLength: 50,
      cacheMaxFlows: MAX_FLOWS,
      cacheActiveTimeoutMs: DRAIN_INTERVAL_MS,
      healthJoin: { dedup: true },
    },
    [sink],
  );
  const running = pipeline.run(capture.batches());
  const disableStats = enableProgramStats();
  try {
    await capture.attach(pair.hostIf);
    const cpuBefore = ownCpuNs();
    await traffic();
    await waitForQuiet(pair.hostIf, 200);
    const tc = capture.programRunStats();
    const healthRun = capture.healthRunStats();
    const stats = capture.stats();
    await capture.stop();
    await running;
    const cpuNs = ownCpuNs() - cpuBefore;
    const packets = tc.runs;
    return {
      packets,
      kernelNsPerPacket: (tc.runTimeNs + healthRun.runTimeNs) / packets,
      healthNsPerPacket: healthRun.runTimeNs / packets,
      cpuNsPerPacket: cpuNs / packets,
      line:
        `${packets} packets, health programs ran ${healthRun.runs} times, ${sink.rows} rows (${sink.withHealth} with health), ` +
        `health map full ${stats.healthMapFull ?? 0}, unkeyed drops ${stats.healthUnkeyed ?? 0}`,
    };
  } finally {
    disableStats();
    await capture.stop();
    await running.catch(() => undefined);
  }
}

/** The run of median kernel time per packet. */
function median(runs: Measured[]): Measured {
  const sorted = [...runs].sort((a, b) => a.kernelNsPerPacket - b.kernelNsPerPacket);
  return sorted[Math.floor(sorted.length / 2)];
}

function report(name: string, m: Measured, baseline: Measured): void {
  const ratio = m.kernelNsPerPacket / baseline.kernelNsPerPacket;
  console.log(
    `${name.padEnd(44)} kernel ${m.kernelNsPerPacket.toFixed(0).padStart(4)} ns/pkt (health programs ${m.healthNsPerPacket.toFixed(0)})  ` +
      `${ratio.toFixed(2)}x baseline (target <= ${TARGET_KERNEL_RATIO}x)  ` +
      `flowtap CPU ${m.cpuNsPerPacket.toFixed(0)} ns/pkt (target <= ${TARGET_CPU_NS_PER_PACKET}; ${(m.cpuNsPerPacket / baseline.cpuNsPerPacket).toFixed(2)}x baseline)  ${m.line}`,
  );
}

/** One TCP transfer of TRANSFER_BYTES from the namespace to a receiver on the host side. */
async function tcpTransfer(pair: VethPair): Promise<void> {
  const receiver = spawn('node', ['--import', 'tsx', PEER, pair.hostAddr4, String(TRANSFER_BYTES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      receiver.stdout.once('data', (chunk: Buffer) =>
        resolve((JSON.parse(chunk.toString()) as { port: number }).port),
      );
      receiver.once('exit', (code) => reject(new Error(`receiver exited with ${code}`)));
    });
    const [cmd, ...args] = trafficCommand({ kind: 'tcp', host: pair.hostAddr4, port, bytes: TRANSFER_BYTES });
    await pair.exec(cmd, args, 300_000);
  } finally {
    if (receiver.exitCode === null && receiver.pid !== undefined) process.kill(receiver.pid);
  }
}

/** trafgen floods into the namespace of datagrams no socket takes (dropped by the kernel: NO_SOCKET). */
const FLOODS = [
  { name: 'one flow', field: 'saddr=%SRC%' },
  // Random sources: the namespace has no route back to them, so it answers none.
  { name: 'new flow per packet', field: 'saddr=drnd()' },
];

async function flood(pair: VethPair, dir: string, field: string): Promise<void> {
  const config = join(dir, 'trafgen.cfg');
  const src = field.replace('%SRC%', pair.hostAddr4);
  writeFileSync(
    config,
    `{ eth(da=${pair.nsMac}), ipv4(${src}, daddr=${pair.nsAddr4}), udp(sp=4000, dp=9), fill(0x61, ${UDP_PAYLOAD_BYTES}) }\n`,
  );
  await new Promise<void>((resolve, reject) => {
    // -q: through the qdisc path, so flowtap's egress program sees every frame.
    const child = spawn(
      'trafgen',
      ['--dev', pair.hostIf, '--conf', config, '--cpus', '1', '-n', String(FLOOD_PACKETS), '-q'],
      { stdio: 'ignore' },
    );
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`trafgen exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('health.bench: skipped (needs root)');
    return;
  }
  testRunCases();
  if (
    spawnSync('trafgen', ['-v']).error !== undefined ||
    spawnSync('ethtool', ['--version']).error !== undefined
  ) {
    console.log('health.bench: live cases skipped (need trafgen from netsniff-ng and ethtool)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-health-bench-'));
  const pair = await createVethPair('fthb1');
  try {
    // Each segment its own packet, as on a host without offloads: the most RTT samples per byte.
    await pair.exec('ethtool', ['-K', pair.nsIf, 'tso', 'off', 'gso', 'off']);
    console.log(
      `\nTCP transfer of ${TRANSFER_BYTES >> 20} MiB, segmentation offload off, median of ${TCP_ROUNDS} rounds (shared 2-core machine: noisy):`,
    );
    // Rounds interleave the cases, so a burst of load from another process hits them alike.
    const runs = new Map<Case, Measured[]>(TCP_CASES.map((c) => [c, []]));
    for (let round = 0; round < TCP_ROUNDS; round++) {
      for (const c of TCP_CASES) runs.get(c)?.push(await measure(pair, c.health, () => tcpTransfer(pair)));
    }
    const tcpBaseline = median(runs.get(OFF) ?? []);
    for (const c of TCP_CASES) report(c.name, median(runs.get(c) ?? []), tcpBaseline);

    for (const f of FLOODS) {
      console.log(
        `\ntrafgen flood, ${f.name}, ${FLOOD_PACKETS} datagrams the kernel drops (NO_SOCKET): the worst case of drops`,
      );
      const before = readInterfaceCounters(pair.hostIf);
      const baseline = await measure(pair, OFF.health, () => flood(pair, dir, f.field));
      report(OFF.name, baseline, baseline);
      for (const c of FLOOD_CASES.slice(1))
        report(c.name, await measure(pair, c.health, () => flood(pair, dir, f.field)), baseline);
      const sent = readInterfaceCounters(pair.hostIf).txPackets - before.txPackets;
      console.log(`(interface sent ${sent} frames over the ${FLOOD_CASES.length} runs)`);
    }
  } finally {
    await pair.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
