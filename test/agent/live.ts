/**
 * Helpers of the end-to-end tests of `flowtap run`: veth pairs named fta* (this suite's prefix),
 * the CLI as a child process whose JSON lines (stdout) and logs (stderr) the test waits on, and UDP
 * traffic sent from this process through a veth.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createVethPair } from '../net/netns.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

/** A veth pair: `hostIf` in the root namespace, `nsIf` in namespace `ns`; IPv6 off (no stray packets). */
export interface FtaPair {
  ns: string;
  hostIf: string;
  nsIf: string;
  hostAddr: string;
  nsAddr: string;
}

/** Creates `fta<n>0` ↔ `fta<n>1` (in `fta<n>-ns`), IPv4 only, removed in `t.after` even on failure. */
export async function ftaPair(t: TestContext, n: number): Promise<FtaPair> {
  const pair = await createVethPair(`fta${n}`);
  t.after(() => pair.cleanup());
  return {
    ns: pair.ns,
    hostIf: pair.hostIf,
    nsIf: pair.nsIf,
    hostAddr: pair.hostAddr4,
    nsAddr: pair.nsAddr4,
  };
}

/** One flow as `flowtap run` prints it. */
export interface JsonFlow {
  Etype: number;
  Direction: string;
  Network: { SrcAddr: string; DstAddr: string };
  Transport: { SrcPort: number; DstPort: number; Proto: string };
  Bytes: number;
  Packets: number;
  Interface: string;
}

/** One pino log line. */
export interface LogLine {
  msg: string;
  level: number;
  [key: string]: unknown;
}

/** A running `flowtap run` child. */
export interface Flowtap {
  child: ChildProcessWithoutNullStreams;
  flows: JsonFlow[];
  logs: LogLine[];
  stdout: () => string;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
  /** Waits until `check()` holds (re-checked on every output and every 50 ms), failing after `deadlineMs`. */
  until(check: () => boolean, what: string, deadlineMs?: number): Promise<void>;
  /** Waits for a log line with message `msg` (and `interface` when given). */
  untilLog(msg: string, iface?: string): Promise<LogLine>;
}

/**
 * Starts `flowtap run ...args`; killed (by pid) in `t.after` if still running. Its flow store goes
 * to a temporary directory (removed after the test) unless `env` names a STORE_PATH.
 */
export function startFlowtap(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}): Flowtap {
  const storeDir = mkdtempSync(join(tmpdir(), 'flowtap-run-store-'));
  t.after(() => rmSync(storeDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', ...args], {
    env: { ...process.env, STORE_PATH: storeDir, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const flows: JsonFlow[] = [];
  const logs: LogLine[] = [];
  let stdout = '';
  let stderrRest = '';
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const start = stdout.lastIndexOf('\n') + 1;
    stdout += text;
    const complete = stdout.slice(start, stdout.lastIndexOf('\n') + 1);
    for (const line of complete.split('\n')) if (line) flows.push(JSON.parse(line) as JsonFlow);
    notify();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderrRest += text;
    const lines = stderrRest.split('\n');
    stderrRest = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, level: 60 });
      }
    }
    notify();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  void exited.then(notify);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGKILL');
    return exited;
  });
  const until = async (check: () => boolean, what: string, deadlineMs = 15_000) => {
    const deadline = Date.now() + deadlineMs;
    while (!check()) {
      if (Date.now() > deadline || child.exitCode !== null) {
        assert.fail(`timed out waiting for ${what}; logs: ${JSON.stringify(logs.slice(-10))}`);
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50).unref();
      });
    }
  };
  const untilLog = async (msg: string, iface?: string) => {
    const find = () => logs.find((l) => l.msg === msg && (iface === undefined || l.interface === iface));
    await until(() => find() !== undefined, `log "${msg}"${iface ? ` for ${iface}` : ''}`);
    return find() as LogLine;
  };
  return { child, flows, logs, stdout: () => stdout, exited, until, untilLog };
}

/** Sends `count` UDP datagrams of `payloadBytes` to `host:port` from one local port; returns that port. */
export async function sendUdp(
  host: string,
  port: number,
  count: number,
  payloadBytes: number,
): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => resolve());
  });
  const payload = Buffer.alloc(payloadBytes, 0x61);
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) =>
      socket.send(payload, port, host, (err) => (err ? reject(err) : resolve())),
    );
  }
  const localPort = socket.address().port;
  socket.close();
  return localPort;
}

/**
 * Packets and bytes of the flows from local port `srcPort` (to `dstPort`, when given) leaving
 * through `ifName`. A test that sends from other sockets meanwhile gives the destination too: the
 * kernel may hand a later socket the same ephemeral source port once the first is closed.
 */
export function egressFrom(flows: readonly JsonFlow[], ifName: string, srcPort: number, dstPort?: number) {
  let packets = 0;
  let bytes = 0;
  for (const f of flows) {
    if (f.Interface !== ifName || f.Direction !== 'EGRESS' || f.Transport.SrcPort !== srcPort) continue;
    if (dstPort !== undefined && f.Transport.DstPort !== dstPort) continue;
    if (f.Transport.Proto !== 'UDP') continue;
    packets += f.Packets;
    bytes += f.Bytes;
  }
  return { packets, bytes };
}

/** Pids of the direct children of process `pid`. */
export function childPidsOf(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

/** True while process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
