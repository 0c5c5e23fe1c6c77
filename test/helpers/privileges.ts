/**
 * Whether this process may do what kernel tests do (network namespaces, veths, tc, eBPF maps and
 * programs), and the `skip` value that says why not. Every test that needs the kernel asks here,
 * so `npm test` as a normal user passes with those tests skipped and each skip names its reason;
 * as root every test runs.
 */
import { readFileSync } from 'node:fs';

/** Capability bit numbers in /proc/self/status CapEff (linux/capability.h). */
const CAPABILITY_BITS = { CAP_NET_ADMIN: 12, CAP_NET_RAW: 13, CAP_SYS_ADMIN: 21 } as const;
type Capability = keyof typeof CAPABILITY_BITS;

/** What kernel tests do: namespaces and mounts (SYS_ADMIN), links, tc and eBPF (NET_ADMIN, SYS_ADMIN). */
const KERNEL_TEST_CAPABILITIES: readonly Capability[] = ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'];
/** What capturing packets with tshark or tcpdump takes. */
const PACKET_CAPTURE_CAPABILITIES: readonly Capability[] = ['CAP_NET_RAW'];

function effectiveCapabilities(): bigint {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return hex === undefined ? 0n : BigInt(`0x${hex}`);
  } catch {
    // Not Linux, or no /proc: no test can reach the kernel features they need.
    return 0n;
  }
}

const EFFECTIVE = effectiveCapabilities();

/** Those of `needed` this process lacks; empty when it has them all. */
export function missingCapabilities(needed: readonly Capability[]): Capability[] {
  return needed.filter((name) => (EFFECTIVE & (1n << BigInt(CAPABILITY_BITS[name]))) === 0n);
}

function skipUnless(needed: readonly Capability[], what: string): string | false {
  const missing = missingCapabilities(needed);
  if (missing.length === 0) return false;
  return `needs root (${missing.join(', ')}) to ${what}; run npm test as root to include it`;
}

/**
 * The `skip` option of a test that needs root's kernel privileges to `what` (e.g. `attach TC
 * programs to veths`): false when this process has them, else the reason, which node:test prints
 * beside the skipped test.
 */
export function skipUnlessKernel(what: string): string | false {
  return skipUnless(KERNEL_TEST_CAPABILITIES, what);
}

/** The `skip` option of a test that captures packets (tshark, tcpdump) to `what`; see skipUnlessKernel. */
export function skipUnlessPacketCapture(what: string): string | false {
  return skipUnless(PACKET_CAPTURE_CAPABILITIES, what);
}
