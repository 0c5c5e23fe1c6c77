/** The interfaces of this network namespace as /sys/class/net shows them now. */
import { readdirSync, readFileSync } from 'node:fs';

/** Where the kernel lists the interfaces of the namespace this process runs in. */
export const SYS_CLASS_NET = '/sys/class/net';

const IFF_UP = 0x1;

/** One interface: its index and whether it can carry traffic now. */
export interface InterfaceState {
  /** Kernel interface index. */
  ifIndex: number;
  /** Administratively up (IFF_UP) and operationally up (operstate `up`, or `unknown` for lo/tun). */
  up: boolean;
}

/**
 * Reads every interface under `root` (name → state). An interface that vanishes while it is read
 * is left out: the next read or link event reports its removal anyway.
 */
export function readInterfaces(root = SYS_CLASS_NET): Map<string, InterfaceState> {
  const found = new Map<string, InterfaceState>();
  for (const name of readdirSync(root)) {
    try {
      const dir = `${root}/${name}`;
      const ifIndex = Number(readFileSync(`${dir}/ifindex`, 'utf8'));
      const flags = Number.parseInt(readFileSync(`${dir}/flags`, 'utf8'), 16);
      const operstate = readFileSync(`${dir}/operstate`, 'utf8').trim();
      if (!Number.isInteger(ifIndex) || ifIndex <= 0) continue;
      const up = (flags & IFF_UP) !== 0 && (operstate === 'up' || operstate === 'unknown');
      found.set(name, { ifIndex, up });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENODEV') throw err;
    }
  }
  return found;
}
