/**
 * Network namespaces and veth pairs for kernel tests. Every name starts with the caller's prefix
 * (each suite has its own: `fte` eBPF, `fta` agent, `ftp` pcap), so suites never share an interface
 * or a namespace, and leftovers of a crashed run are recognised and removed. Only interfaces the
 * tests create are ever touched.
 *
 *   host side  <prefix>0  (root namespace)   <->   <prefix>1  in namespace <prefix>-ns
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const MAX_PREFIX_LENGTH = 12; // interface names are at most 15 characters

/** Runs `cmd args` and returns its stdout; rejects with its stderr on failure. */
export async function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Byte and packet counters of an interface (/sys/class/net/NAME/statistics). */
export interface InterfaceCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

/** The counters of `ifName` in the root namespace, now. */
export function readInterfaceCounters(ifName: string): InterfaceCounters {
  const read = (name: string) => Number(readFileSync(`/sys/class/net/${ifName}/statistics/${name}`, 'utf8'));
  return {
    rxPackets: read('rx_packets'),
    rxBytes: read('rx_bytes'),
    txPackets: read('tx_packets'),
    txBytes: read('tx_bytes'),
  };
}

/** `after - before`, field by field. */
export function counterDelta(before: InterfaceCounters, after: InterfaceCounters): InterfaceCounters {
  return {
    rxPackets: after.rxPackets - before.rxPackets,
    rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets,
    txBytes: after.txBytes - before.txBytes,
  };
}

/**
 * Waits until `ifName` has seen no packet for `quietMs` (neighbour discovery and MLD done) and
 * returns its counters; throws if it stays busy until `deadlineMs`.
 */
export async function waitForQuiet(
  ifName: string,
  quietMs = 300,
  deadlineMs = 15_000,
): Promise<InterfaceCounters> {
  const start = Date.now();
  let last = readInterfaceCounters(ifName);
  let quietSince = Date.now();
  while (Date.now() - start < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = readInterfaceCounters(ifName);
    if (now.rxPackets !== last.rxPackets || now.txPackets !== last.txPackets) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) {
      return now;
    }
  }
  throw new Error(`${ifName} did not go quiet within ${deadlineMs} ms`);
}

/** A veth pair with one end in its own namespace, addressed for IPv4 and (optionally) IPv6. */
export interface VethPair {
  /** Namespace holding `nsIf`. */
  readonly ns: string;
  /** Host-side interface (root namespace). */
  readonly hostIf: string;
  /** Namespace-side interface. */
  readonly nsIf: string;
  /** IPv4 address of `hostIf`. */
  readonly hostAddr4: string;
  /** IPv4 address of `nsIf`. */
  readonly nsAddr4: string;
  /** IPv6 address of `hostIf` ('' without IPv6). */
  readonly hostAddr6: string;
  /** IPv6 address of `nsIf` ('' without IPv6). */
  readonly nsAddr6: string;
  /** MAC address of `hostIf`. */
  readonly hostMac: string;
  /** MAC address of `nsIf`. */
  readonly nsMac: string;
  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Starts a command inside the namespace; the caller waits for or kills it (by pid). */
  spawn(cmd: string, args: readonly string[]): ReturnType<typeof spawn>;
  /** Removes the namespace and both interfaces; safe to call twice and after a failed setup. */
  cleanup(): Promise<void>;
}

function subnetByte(prefix: string): number {
  let h = 0;
  for (const c of prefix) h = (h * 31 + c.charCodeAt(0)) & 0xff;
  return h;
}

async function removeLeftovers(ns: string, hostIf: string): Promise<void> {
  await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  await run('ip', ['link', 'del', hostIf]).catch(() => undefined);
}

async function sysctl(nsExec: string[] | null, settings: readonly string[]): Promise<void> {
  const args = ['-qw', ...settings];
  if (nsExec) await run('ip', [...nsExec, 'sysctl', ...args]);
  else await run('sysctl', args);
}

const CARRIER_WAIT_MS = 5000;
const CARRIER_POLL_MS = 20;

/**
 * Waits (bounded) until both ends report carrier and, with IPv6, the namespace has its prefix
 * route: the kernel applies carrier changes from a deferred worker, and IPv6 installs the routes
 * of `nodad` addresses only then, so a connect right after `link set up` can fail ENETUNREACH.
 */
async function waitForCarrier(pair: VethPair, inNs: string[], ipv6: boolean): Promise<void> {
  const deadline = Date.now() + CARRIER_WAIT_MS;
  for (;;) {
    const host = readFileSync(`/sys/class/net/${pair.hostIf}/operstate`, 'utf8').trim();
    const ns = (await run('ip', [...inNs, 'cat', `/sys/class/net/${pair.nsIf}/operstate`])).trim();
    const routed =
      !ipv6 || (await run('ip', [...inNs, 'ip', '-6', 'route', 'show', 'dev', pair.nsIf])).includes('/64');
    if (host === 'up' && ns === 'up' && routed) return;
    if (Date.now() > deadline) {
      throw new Error(
        `veth ${pair.hostIf}/${pair.nsIf} not ready after ${CARRIER_WAIT_MS} ms (${host}/${ns})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, CARRIER_POLL_MS));
  }
}

/**
 * Creates `<prefix>0` in the root namespace and `<prefix>1` in namespace `<prefix>-ns`, up and
 * addressed (IPv4 10.251.X.1/.2, IPv6 fd00:f7e:X::1/::2 without DAD), removing leftovers of the
 * same names first. With `ipv6: false` IPv6 is disabled on both ends, so no neighbour discovery,
 * router solicitation or MLD packet ever crosses the pair.
 */
export async function createVethPair(prefix: string, options: { ipv6?: boolean } = {}): Promise<VethPair> {
  if (!/^ft[a-z][a-z0-9]*$/.test(prefix) || prefix.length > MAX_PREFIX_LENGTH) {
    throw new Error(
      `veth prefix ${prefix} must match ft[a-z][a-z0-9]* and be at most ${MAX_PREFIX_LENGTH} characters`,
    );
  }
  const ipv6 = options.ipv6 ?? false;
  const ns = `${prefix}-ns`;
  const hostIf = `${prefix}0`;
  const nsIf = `${prefix}1`;
  const x = subnetByte(prefix);
  const hex = x.toString(16);
  const inNs = ['netns', 'exec', ns];
  const pair: VethPair = {
    ns,
    hostIf,
    nsIf,
    hostAddr4: `10.251.${x}.1`,
    nsAddr4: `10.251.${x}.2`,
    hostAddr6: ipv6 ? `fd00:f7e:${hex}::1` : '',
    nsAddr6: ipv6 ? `fd00:f7e:${hex}::2` : '',
    hostMac: '',
    nsMac: '',
    exec: (cmd, args, timeoutMs) => run('ip', [...inNs, cmd, ...args], timeoutMs),
    spawn: (cmd, args) => spawn('ip', [...inNs, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    cleanup: () => removeLeftovers(ns, hostIf),
  };
  await removeLeftovers(ns, hostIf);
  try {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns]);
    const v6Host = ipv6
      ? [
          'accept_dad=0',
          'router_solicitations=0',
          'mldv1_unsolicited_report_interval=1',
          'mldv2_unsolicited_report_interval=1',
        ]
      : ['disable_ipv6=1'];
    await sysctl(
      null,
      v6Host.map((s) => `net.ipv6.conf.${hostIf}.${s}`),
    );
    await sysctl(
      inNs,
      v6Host.map((s) => `net.ipv6.conf.${nsIf}.${s}`),
    );
    await run('ip', ['addr', 'add', `${pair.hostAddr4}/24`, 'dev', hostIf]);
    await run('ip', [...inNs, 'ip', 'addr', 'add', `${pair.nsAddr4}/24`, 'dev', nsIf]);
    if (ipv6) {
      await run('ip', ['addr', 'add', `${pair.hostAddr6}/64`, 'dev', hostIf, 'nodad']);
      await run('ip', [...inNs, 'ip', 'addr', 'add', `${pair.nsAddr6}/64`, 'dev', nsIf, 'nodad']);
    }
    await run('ip', ['link', 'set', hostIf, 'up']);
    await run('ip', [...inNs, 'ip', 'link', 'set', nsIf, 'up']);
    await run('ip', [...inNs, 'ip', 'link', 'set', 'lo', 'up']);
    await waitForCarrier(pair, inNs, ipv6);
    const hostMac = readFileSync(`/sys/class/net/${hostIf}/address`, 'utf8').trim();
    const nsMac = (await run('ip', [...inNs, 'cat', `/sys/class/net/${nsIf}/address`])).trim();
    return { ...pair, hostMac, nsMac };
  } catch (err) {
    await pair.cleanup();
    throw err;
  }
}
