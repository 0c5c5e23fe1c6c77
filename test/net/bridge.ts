/**
 * Two namespaces behind one bridge of the root namespace, in two subnets, with the host routing
 * between them through the bridge device, for tests of packets that cross several interfaces:
 *
 *   <prefix>-a: <prefix>a1 10.<s>.1.2/24 ── veth ── <prefix>a0 ─┐
 *                                                               <prefix>br 10.<s>.1.1, 10.<s>.2.1
 *   <prefix>-b: <prefix>b1 10.<s>.2.2/24 ── veth ── <prefix>b0 ─┘   (forwarding on, this device only)
 *
 * A frame forwarded at layer 2 between two ports never passes the bridge device's own TC hooks;
 * here every packet from one namespace to the other is addressed to the bridge (the gateway), so it
 * crosses <prefix>a0 (ingress), <prefix>br (ingress, then egress after routing) and <prefix>b0
 * (egress): three interfaces, four hooks. IPv6 is off everywhere so nothing else crosses them.
 * Names follow test/net/netns.ts; everything is removed by `cleanup()`, even after a failed setup.
 */
import { run } from './netns.ts';

/** The topology's names and addresses. */
export interface RoutedBridge {
  /** Namespaces of the two ends. */
  readonly nsA: string;
  readonly nsB: string;
  /** Bridge device in the root namespace. */
  readonly bridge: string;
  /** Host-side veths, bridge ports. */
  readonly portA: string;
  readonly portB: string;
  /** Addresses of the namespace ends. */
  readonly addrA: string;
  readonly addrB: string;
  /** Runs a command in namespace A or B and returns its stdout. */
  execIn(ns: 'a' | 'b', cmd: string, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Removes namespaces, veths and the bridge; safe to call twice. */
  cleanup(): Promise<void>;
}

/** Builds the topology for `prefix` (ft[a-z][a-z0-9]*, at most 10 characters); `subnet` picks 10.<subnet>.{1,2}.0/24. */
export async function createRoutedBridge(prefix: string, subnet: number): Promise<RoutedBridge> {
  if (!/^ft[a-z][a-z0-9]*$/.test(prefix) || prefix.length > 10) {
    throw new Error(`bridge prefix ${prefix} must match ft[a-z][a-z0-9]* and be at most 10 characters`);
  }
  const topo: RoutedBridge = {
    nsA: `${prefix}-a`,
    nsB: `${prefix}-b`,
    bridge: `${prefix}br`,
    portA: `${prefix}a0`,
    portB: `${prefix}b0`,
    addrA: `10.${subnet}.1.2`,
    addrB: `10.${subnet}.2.2`,
    execIn: (ns, cmd, args, timeoutMs) =>
      run('ip', ['netns', 'exec', ns === 'a' ? topo.nsA : topo.nsB, cmd, ...args], timeoutMs),
    cleanup: async () => {
      for (const ns of [topo.nsA, topo.nsB]) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
      for (const dev of [topo.portA, topo.portB, topo.bridge]) {
        await run('ip', ['link', 'del', dev]).catch(() => undefined);
      }
    },
  };
  await topo.cleanup();
  try {
    await run('ip', ['link', 'add', topo.bridge, 'type', 'bridge']);
    await run('sysctl', ['-qw', `net.ipv6.conf.${topo.bridge}.disable_ipv6=1`]);
    for (const [side, ns, port, host] of [
      ['a', topo.nsA, topo.portA, 1],
      ['b', topo.nsB, topo.portB, 2],
    ] as const) {
      const inNs = ['netns', 'exec', ns];
      const peer = `${prefix}${side}1`;
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', peer, 'netns', ns]);
      await run('sysctl', ['-qw', `net.ipv6.conf.${port}.disable_ipv6=1`]);
      // The host sends ICMP redirects (both subnets are on one device); taking one would make the
      // namespaces talk at layer 2, past the bridge device.
      await run('ip', [
        ...inNs,
        'sysctl',
        '-qw',
        `net.ipv6.conf.${peer}.disable_ipv6=1`,
        'net.ipv4.conf.all.accept_redirects=0',
        `net.ipv4.conf.${peer}.accept_redirects=0`,
      ]);
      await run('ip', ['link', 'set', port, 'master', topo.bridge, 'up']);
      await run('ip', [...inNs, 'ip', 'addr', 'add', `10.${subnet}.${host}.2/24`, 'dev', peer]);
      await run('ip', [...inNs, 'ip', 'link', 'set', peer, 'up']);
      await run('ip', [...inNs, 'ip', 'link', 'set', 'lo', 'up']);
      await run('ip', [...inNs, 'ip', 'route', 'add', 'default', 'via', `10.${subnet}.${host}.1`]);
      await run('ip', ['addr', 'add', `10.${subnet}.${host}.1/24`, 'dev', topo.bridge]);
    }
    // Forwarding is decided by the receiving device's setting: only this bridge routes.
    await run('sysctl', ['-qw', `net.ipv4.conf.${topo.bridge}.forwarding=1`]);
    await run('ip', ['link', 'set', topo.bridge, 'up']);
    return topo;
  } catch (err) {
    await topo.cleanup();
    throw err;
  }
}
