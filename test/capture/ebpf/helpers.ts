/** Shared steps of the live-capture tests: open a capture, collect its flows, check for leftovers. */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { type EbpfCaptureOptions, EbpfCapture } from '../../../src/capture/ebpf/capture.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { formatIp } from '../../../src/model/ip.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { run } from '../../net/netns.ts';
import { type TrafficPlan, type TrafficResult, trafficCommand } from '../../net/traffic.ts';
import type { VethPair } from '../../net/netns.ts';

/** A capture and every flow it has handed out so far. */
export interface Collected {
  capture: EbpfCapture;
  flows: Flow[];
  /** Resolves when `batches()` ends (after stop). */
  done: Promise<void>;
}

/** Opens a capture with test defaults, collects its batches, and stops it in `t.after`. */
export async function openCollecting(t: TestContext, opts: Partial<EbpfCaptureOptions> = {}): Promise<Collected> {
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
export function sum(flows: readonly Flow[], pick: (f: Flow) => boolean = () => true): { packets: number; bytes: number } {
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

/** Asserts no program, link, filter or clsact qdisc of flowtap remains on `ifName`, and no flowtap program of this process. */
export async function assertNothingLeft(ifName: string): Promise<void> {
  const qdiscs = await run('tc', ['qdisc', 'show', 'dev', ifName]);
  assert.doesNotMatch(qdiscs, /clsact/, `no clsact qdisc left on ${ifName}`);
  const net = JSON.parse(await run('bpftool', ['net', 'show', 'dev', ifName, '--json'])) as unknown;
  assert.doesNotMatch(JSON.stringify(net), /flowtap_/, `no flowtap program attached to ${ifName}`);
  const progs = JSON.parse(await run('bpftool', ['prog', 'show', '--json'])) as {
    name?: string;
    pids?: { pid: number }[];
  }[];
  const mine = progs.filter((p) => p.name?.startsWith('flowtap_') && p.pids?.some((x) => x.pid === process.pid));
  assert.deepEqual(mine, [], 'no flowtap program loaded by this process');
  const maps = JSON.parse(await run('bpftool', ['map', 'show', '--json'])) as { name?: string; pids?: { pid: number }[] }[];
  const myMaps = maps.filter((m) => m.name?.startsWith('flowtap_') && m.pids?.some((x) => x.pid === process.pid));
  assert.deepEqual(myMaps, [], 'no flowtap map held by this process');
}
