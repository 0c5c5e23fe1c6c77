/**
 * One veth pair for the capture tests: `ftp0` in the root namespace (10.252.77.1, fd00:f7a::1)
 * and `ftp1` in namespace `ftp-ns1` (10.252.77.2, fd00:f7a::2). test/net/netns.ts only accepts
 * `fte` prefixes, and this suite owns the `ftp` names, so it keeps its own small helper; it
 * reuses that module's `run`. Leftovers of a crashed run are removed first; eth0 is never touched.
 */
import { run } from '../../net/netns.ts';

/** The pair's fixed names and addresses. */
export const FTP_VETH = {
  ns: 'ftp-ns1',
  hostIf: 'ftp0',
  nsIf: 'ftp1',
  hostAddr4: '10.252.77.1',
  nsAddr4: '10.252.77.2',
  hostAddr6: 'fd00:f7a::1',
  nsAddr6: 'fd00:f7a::2',
} as const;

/** Removes the namespace and the host interface; safe to call when they do not exist. */
export async function removeFtpVeth(): Promise<void> {
  await run('ip', ['netns', 'del', FTP_VETH.ns]).catch(() => undefined);
  await run('ip', ['link', 'del', FTP_VETH.hostIf]).catch(() => undefined);
}

/** Creates the pair, up and addressed (IPv6 without DAD, router solicitations off). */
export async function createFtpVeth(): Promise<void> {
  const v = FTP_VETH;
  const inNs = ['netns', 'exec', v.ns];
  await removeFtpVeth();
  try {
    await run('ip', ['netns', 'add', v.ns]);
    await run('ip', ['link', 'add', v.hostIf, 'type', 'veth', 'peer', 'name', v.nsIf, 'netns', v.ns]);
    const ipv6Settings = (ifName: string) =>
      ['accept_dad=0', 'router_solicitations=0'].map((s) => `net.ipv6.conf.${ifName}.${s}`);
    await run('sysctl', ['-qw', ...ipv6Settings(v.hostIf)]);
    await run('ip', [...inNs, 'sysctl', '-qw', ...ipv6Settings(v.nsIf)]);
    await run('ip', ['addr', 'add', `${v.hostAddr4}/24`, 'dev', v.hostIf]);
    await run('ip', ['addr', 'add', `${v.hostAddr6}/64`, 'dev', v.hostIf, 'nodad']);
    await run('ip', [...inNs, 'ip', 'addr', 'add', `${v.nsAddr4}/24`, 'dev', v.nsIf]);
    await run('ip', [...inNs, 'ip', 'addr', 'add', `${v.nsAddr6}/64`, 'dev', v.nsIf, 'nodad']);
    await run('ip', ['link', 'set', v.hostIf, 'up']);
    await run('ip', [...inNs, 'ip', 'link', 'set', v.nsIf, 'up']);
    await run('ip', [...inNs, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await removeFtpVeth();
    throw err;
  }
}
