/** Shared steps of the live-capture tests: open a capture, collect its flows, check for leftovers. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EbpfCapture, type EbpfCaptureOptions } from '../../../src/capture/ebpf/capture.ts';
import { attachedProgramNames } from '../../../src/ebpf/attach.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { formatIp } from '../../../src/model/ip.ts';
import type { VethPair } from '../../net/netns.ts';
import { run } from '../../net/netns.ts';
import { type TrafficPlan, type TrafficResult, trafficCommand } from '../../net/traffic.ts';

/** A capture and every flow it has handed out so far. */
export interface Collected {
  capture: EbpfCapture;
  flows: Flow[];
  /** Resolves when `batches()` ends (after stop). */
  done: Promise<void>;
}

/** Opens a capture with test defaults, collects its batches, and stops it in `t.after`. */
export async function openCollecting(
  t: TestContext,
  opts: Partial<EbpfCaptureOptions> = {},
): Promise<Collected> {
  const capture = await EbpfCapture.open({
    sampling: 1,
    direction: 'both',
    maxFlows: 4096,
    drainIntervalMs: 200,
    interfaces: new InterfaceRegistry(),
    ...opts,
  });
  t.after(() => capture.stop());
  const flows: Flow[] = [];
  const done = (async () => {
    for await (const batch of capture.batches()) for (const flow of batch.flows()) flows.push(flow);
  })();
  return { capture, flows, done };
}

/** Runs `plan` inside the pair's namespace and returns what it used. */
export async function sendTraffic(pair: VethPair, plan: TrafficPlan): Promise<TrafficResult> {
  const [cmd, ...args] = trafficCommand(plan);
  return JSON.parse(await pair.exec(cmd, args, 60_000)) as TrafficResult;
}

/** Packets and bytes of `flows` that match `pick`. */
export function sum(
  flows: readonly Flow[],
  pick: (f: Flow) => boolean = () => true,
): { packets: number; bytes: number } {
  let packets = 0;
  let bytes = 0;
  for (const f of flows) {
    if (!pick(f)) continue;
    packets += f.packets;
    bytes += f.bytes;
  }
  return { packets, bytes };
}

/** Predicate: a flow of `direction` (0 ingress, 1 egress) on `ifIndex` between these ports and addresses. */
export function flowOf(
  direction: number,
  proto: number,
  src: string,
  dst: string,
  srcPort: number,
  dstPort: number,
): (f: Flow) => boolean {
  return (f) =>
    f.direction === direction &&
    f.proto === proto &&
    f.srcPort === srcPort &&
    f.dstPort === dstPort &&
    formatIp(f.srcAddr, 0, f.etype) === src &&
    formatIp(f.dstAddr, 0, f.etype) === dst;
}

/** `tc filter show` of one clsact direction of `ifName`; '' when there is no clsact qdisc. */
export function tcFilters(ifName: string, direction: 'ingress' | 'egress'): Promise<string> {
  return run('tc', ['filter', 'show', 'dev', ifName, direction]).catch(() => '');
}

/** Number of eBPF programs, maps and links this process holds open (its /proc/self/fd). */
export function bpfFdCount(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/^anon_inode:bpf[-_](prog|map|link)/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // the fd of the directory listing itself is gone by now
    }
  }
  return n;
}

/**
 * Asserts flowtap left nothing on `ifName`: no program attached (TCX or its tc slot), no clsact
 * qdisc (unless `qdiscExpected`, one flowtap did not create), and that this process holds no more
 * eBPF fds than `bpfFdsBefore`.
 */
export async function assertNothingLeft(
  ifName: string,
  bpfFdsBefore: number,
  qdiscExpected = false,
): Promise<void> {
  const qdiscs = await run('tc', ['qdisc', 'show', 'dev', ifName]);
  if (qdiscExpected) assert.match(qdiscs, /clsact/, `the clsact qdisc on ${ifName} is kept`);
  else assert.doesNotMatch(qdiscs, /clsact/, `no clsact qdisc left on ${ifName}`);
  const filters = (await tcFilters(ifName, 'ingress')) + (await tcFilters(ifName, 'egress'));
  assert.doesNotMatch(filters, /flowtap_/, `no flowtap tc filter left on ${ifName}`);
  const ifIndex = Number(readFileSync(`/sys/class/net/${ifName}/ifindex`, 'utf8'));
  assert.deepEqual(attachedProgramNames(ifIndex), [], `no program attached to ${ifName}`);
  assert.equal(bpfFdCount(), bpfFdsBefore, 'every program, map and link fd is closed');
}

const FIXTURE = fileURLToPath(new URL('./fixtures/open-capture.ts', import.meta.url));

/**
 * Runs the capture fixture (another flowtap process) in a child; `firstLine` resolves once it
 * printed READY (or its error line). Closing its stdin stops it cleanly.
 */
export function startFixture(options: object, ifName: string, as?: { uid: number; gid: number }) {
  const child = spawn('node', ['--import', 'tsx', FIXTURE, JSON.stringify(options), ifName], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...as,
  });
  const firstLine = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before a line: ${out}`)));
  });
  return { child, firstLine };
}

/** Resolves once `child` has exited. */
export function waitForExit(child: ReturnType<typeof spawn>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
