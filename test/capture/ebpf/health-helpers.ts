/**
 * Shared steps of the TCP health tests: the live capture run through the agent's own pipeline
 * (so health is joined into rows as `flowtap run` joins it), a TCP peer inside the namespace, and
 * the kernel's own figures to compare with: `ss -ti` of a socket, nft counters, and drop reason
 * values read from the running kernel's BTF with bpftool.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Pipeline } from '../../../src/agent/pipeline.ts';
import { EbpfCapture, type EbpfCaptureOptions } from '../../../src/capture/ebpf/capture.ts';
import type { HealthSettings } from '../../../src/ebpf/health-hooks.ts';
import type { Flow } from '../../../src/model/flow.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import { RecordingExporter } from '../../agent/fakes.ts';
import { run, type VethPair } from '../../net/netns.ts';

/** A capture whose flows go through the pipeline; `finish()` stops it and returns every row exported. */
export interface HealthRun {
  capture: EbpfCapture;
  finish(): Promise<Flow[]>;
}

/**
 * Opens a capture with `health` and test defaults, runs it through a Pipeline (evicting only at
 * the end, so each flow is one row), and stops it in `t.after`.
 */
export async function openHealthPipeline(
  t: TestContext,
  health: HealthSettings,
  opts: Partial<EbpfCaptureOptions> = {},
): Promise<HealthRun> {
  const capture = await EbpfCapture.open({
    sampling: 1,
    direction: 'both',
    maxFlows: 4096,
    drainIntervalMs: 200,
    interfaces: new InterfaceRegistry(),
    health,
    ...opts,
  });
  t.after(() => capture.stop());
  const sink = new RecordingExporter('test');
  const pipeline = new Pipeline(
    {
      buffersLength: 8,
      cacheMaxFlows: 4096,
      cacheActiveTimeoutMs: 3_600_000,
      healthJoin: { dedup: opts.dedup ?? true },
    },
    [sink],
  );
  const running = pipeline.run(capture.batches());
  return {
    capture,
    async finish() {
      await capture.stop();
      await running;
      await pipeline.stopExporters();
      return sink.flows;
    },
  };
}

const PEER = fileURLToPath(new URL('./fixtures/tcp-peer.ts', import.meta.url));

/**
 * Starts the TCP peer in the pair's namespace on `host` (default `nsAddr4`), answering every
 * `chunkBytes` bytes with one; returns its port.
 */
export async function startPeer(
  t: TestContext,
  pair: VethPair,
  chunkBytes: number,
  host = pair.nsAddr4,
): Promise<number> {
  const child = pair.spawn('node', ['--import', 'tsx', PEER, host, String(chunkBytes)]);
  t.after(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid);
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`tcp peer exited with ${code} before listening`)));
  });
  return (JSON.parse(line) as { port: number }).port;
}

/** A connected TCP socket to `host:port`, destroyed in `t.after`. */
export async function connectTcp(t: TestContext, host: string, port: number): Promise<Socket> {
  const socket = connect({ host, port });
  t.after(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', resolve);
  });
  return socket;
}

/** Writes `bytes` and waits for the peer's one-byte answer. */
export async function exchange(socket: Socket, bytes: number): Promise<void> {
  const answered = new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.write(Buffer.alloc(bytes, 0x61));
  await answered;
}

/** Ends `socket` and waits until it is closed. */
export async function closeTcp(socket: Socket): Promise<void> {
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.end();
  await closed;
}

/** The kernel's own figures for one TCP socket (`ss -ti`). */
export interface TcpInfo {
  /** Smoothed RTT in ms (`rtt:SRTT/VAR`). */
  rttMs: number;
  /** Segments retransmitted over the socket's life (`retrans:NOW/TOTAL`'s TOTAL; 0 when absent). */
  totalRetrans: number;
  /** Payload bytes retransmitted (`bytes_retrans:N`; 0 when absent). */
  bytesRetrans: number;
}

/** `ss -ti` of the socket bound to local port `localPort`, in this process's namespace. */
export async function tcpInfo(localPort: number): Promise<TcpInfo> {
  const out = await run('ss', ['-tinH', `( sport = :${localPort} )`]);
  const rtt = /\brtt:([\d.]+)\//.exec(out);
  assert.ok(rtt, `ss shows the socket of port ${localPort}: ${out}`);
  return {
    rttMs: Number(rtt[1]),
    totalRetrans: Number(/\bretrans:\d+\/(\d+)/.exec(out)?.[1] ?? 0),
    bytesRetrans: Number(/\bbytes_retrans:(\d+)/.exec(out)?.[1] ?? 0),
  };
}

let reasons: Promise<Map<string, number>> | undefined;

/** The value of `SKB_DROP_REASON_<name>` in the running kernel (its BTF, through bpftool). */
export async function dropReason(name: string): Promise<number> {
  reasons ??= run('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], 60_000).then(
    (text) => {
      const values = new Map<string, number>();
      for (const m of text.matchAll(/\bSKB_DROP_REASON_(\w+) = (\d+),/g)) values.set(m[1], Number(m[2]));
      return values;
    },
  );
  const value = (await reasons).get(name);
  assert.ok(value !== undefined, `the kernel has SKB_DROP_REASON_${name}`);
  return value;
}

/** Runs `nft` with `args` inside the pair's namespace (its tables go with the namespace). */
export function nftInNs(pair: VethPair, ...args: string[]): Promise<string> {
  return pair.exec('nft', args);
}

/** Packets and bytes of the first `counter` of nft table `inet <table>` in the pair's namespace. */
export async function nftCounter(pair: VethPair, table: string): Promise<{ packets: number; bytes: number }> {
  const out = await nftInNs(pair, 'list', 'table', 'inet', table);
  const m = /counter packets (\d+) bytes (\d+)/.exec(out);
  assert.ok(m, `table ${table} has a counter: ${out}`);
  return { packets: Number(m[1]), bytes: Number(m[2]) };
}
