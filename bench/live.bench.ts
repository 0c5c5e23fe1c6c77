/**
 * Live datapath benchmark: trafgen floods a veth from a namespace (bounded packet counts) while an
 * EbpfCapture counts the host side, in two shapes (one flow; a new flow per packet) and with
 * both flow-map kinds (per-CPU hash; one shared hash with atomic adds). One line per case:
 * packets/s offered, packets counted vs the interface counter (lost), flowtap's own CPU time
 * (/proc/self/stat) per packet and per flow handed out, and the kernel program's time per packet
 * (BPF_ENABLE_STATS). Target: zero lost and ≤ 0.5 µs flowtap CPU per packet (reference ~5 µs,
 * one ring-buffer record per packet). Needs root, TCX/clsact and trafgen (netsniff-ng); the
 * machine is shared, so figures are noisy: compare ratios within one run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EbpfCapture } from '../src/capture/ebpf/capture.ts';
import { enableProgramStats, type FlowMapKind } from '../src/ebpf/object.ts';
import { InterfaceRegistry } from '../src/model/interfaces.ts';
import { createVethPair, readInterfaceCounters, type VethPair, waitForQuiet } from '../test/net/netns.ts';

const TARGET_CPU_NS_PER_PACKET = 500;
const REFERENCE_CPU_NS_PER_PACKET = 5000;
const PACKETS_PER_RUN = 4_000_000;
const MAX_FLOWS = 1 << 17;
const RING_BUFFER_BYTES = 1 << 26;
const DRAIN_INTERVAL_MS = 1000;
const UDP_PAYLOAD_BYTES = 18;
const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

interface Shape {
  name: string;
  /** trafgen threads: 2 makes both cores run the datapath at once (map contention). */
  cpus: number;
  /** trafgen packet description; `%SRC%` is replaced by the namespace address. */
  config: string;
}

const SHAPES: Shape[] = [
  {
    name: 'one flow',
    cpus: 2,
    config: `{ eth(da=02:00:00:00:00:99), ipv4(saddr=%SRC%, daddr=10.99.0.1), udp(sp=4000, dp=9), fill(0x61, ${UDP_PAYLOAD_BYTES}) }`,
  },
  {
    // Random 32-bit sources: ~0.05 % of 4 M packets repeat a source, so nearly every packet is a new flow.
    name: 'new flow per packet',
    cpus: 1,
    config: `{ eth(da=02:00:00:00:00:99), ipv4(saddr=drnd(), daddr=10.99.0.1), udp(sp=4000, dp=9), fill(0x61, ${UDP_PAYLOAD_BYTES}) }`,
  },
];

/** utime + stime of this process in nanoseconds (fields 14 and 15 of /proc/self/stat). */
function ownCpuNs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S) * 1e9;
}

async function runCase(pair: VethPair, dir: string, shape: Shape, mapKind: FlowMapKind): Promise<void> {
  const configPath = join(dir, 'trafgen.cfg');
  writeFileSync(configPath, `${shape.config.replace('%SRC%', pair.nsAddr4)}\n`);
  const capture = await EbpfCapture.open({
    sampling: 1,
    direction: 'ingress',
    maxFlows: MAX_FLOWS,
    drainIntervalMs: DRAIN_INTERVAL_MS,
    ringBufferBytes: RING_BUFFER_BYTES,
    interfaces: new InterfaceRegistry(),
    mapKind,
  });
  let packets = 0;
  let rows = 0;
  const consumed = (async () => {
    for await (const batch of capture.batches()) {
      rows += batch.count;
      for (let i = 0; i < batch.count; i++) packets += batch.packetsAt(i);
    }
  })();
  const disableStats = enableProgramStats();
  try {
    await capture.attach(pair.hostIf);
    const before = readInterfaceCounters(pair.hostIf);
    const cpuBefore = ownCpuNs();
    const started = process.hrtime.bigint();
    // Asynchronous, so the capture's timers keep draining while trafgen runs.
    await new Promise<void>((resolve, reject) => {
      const child = pair.spawn('trafgen', [
        '--dev',
        pair.nsIf,
        '--conf',
        configPath,
        '--cpus',
        String(shape.cpus),
        '-n',
        String(PACKETS_PER_RUN),
        '-q',
      ]);
      child.once('error', reject);
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`trafgen exited with ${code}`)),
      );
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = await waitForQuiet(pair.hostIf, 200);
    const kernel = capture.programRunStats();
    await capture.stop();
    await consumed;
    const cpuNs = ownCpuNs() - cpuBefore;
    const offered = after.rxPackets - before.rxPackets;
    const stats = capture.stats();
    const nsPerPacket = cpuNs / offered;
    console.log(
      `${`${shape.name}, ${shape.cpus} CPU, ${mapKind} map`.padEnd(40)} ${(offered / seconds / 1e6).toFixed(2)} Mpps offered  ` +
        `counted ${packets}/${offered} (lost ${offered - packets}, ring-buffer fallbacks ${stats.ringBufferFallbacks}, ring lost ${stats.ringBufferLost})  ` +
        `flowtap CPU ${nsPerPacket.toFixed(1)} ns/pkt (x${(TARGET_CPU_NS_PER_PACKET / nsPerPacket).toFixed(1)} vs target ${TARGET_CPU_NS_PER_PACKET} ns, ` +
        `x${(REFERENCE_CPU_NS_PER_PACKET / nsPerPacket).toFixed(0)} vs reference), ${(cpuNs / Math.max(rows, 1)).toFixed(0)} ns/flow row (${rows} rows)  ` +
        `kernel ${(kernel.runTimeNs / Math.max(kernel.runs, 1)).toFixed(0)} ns/pkt`,
    );
  } finally {
    disableStats();
    await capture.stop();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || spawnSync('trafgen', ['-v']).error !== undefined) {
    console.log('live.bench: skipped (needs root and trafgen from netsniff-ng)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-live-bench-'));
  const pair = await createVethPair('fteb1');
  try {
    console.log(
      `live datapath: ${PACKETS_PER_RUN} packets per run, ` +
        `map ${MAX_FLOWS} flows, ring ${RING_BUFFER_BYTES >> 20} MiB, drain ${DRAIN_INTERVAL_MS} ms (shared 2-core machine: noisy)`,
    );
    for (const shape of SHAPES) {
      for (const mapKind of ['percpu', 'shared'] as const) await runCase(pair, dir, shape, mapKind);
    }
  } finally {
    await pair.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
