/** The interfaces of this network namespace as /sys/class/net shows them now. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parseInterfacePattern } from './filter.ts';

/** Where the kernel lists the interfaces of the namespace this process runs in. */
export const SYS_CLASS_NET = '/sys/class/net';

const IFF_UP = 0x1;

/**
 * What sysfs answers for an interface deleted while it is read: the directory is gone (ENOENT,
 * ENOTDIR) or its attributes refuse to read a device that is unregistering (EINVAL, ENODEV, ENXIO).
 */
const VANISHED_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'ENODEV', 'EINVAL', 'ENXIO']);

/** One interface: its index and whether it can carry traffic now. */
export interface InterfaceState {
  /** Kernel interface index. */
  ifIndex: number;
  /** Administratively up (IFF_UP) and operationally up (operstate `up`, or `unknown` for lo/tun). */
  up: boolean;
}

/** How {@link readInterfaces} reads; tests replace the file reader to play a deletion mid-read. */
export interface ReadInterfacesOptions {
  /** Told the name of each interface that vanished while it was read (and was left out). */
  onVanished?: (name: string) => void;
  /** Reads one attribute file as text. */
  readText?: (path: string) => string;
}

const readText = (path: string): string => readFileSync(path, 'utf8');

/**
 * Reads every interface under `root` (name → state). An interface that vanishes while it is read
 * is left out (and named to `onVanished`): the next read or link event reports its removal anyway.
 * Any other failure throws.
 */
export function readInterfaces(
  root = SYS_CLASS_NET,
  options: ReadInterfacesOptions = {},
): Map<string, InterfaceState> {
  const read = options.readText ?? readText;
  const found = new Map<string, InterfaceState>();
  for (const name of readdirSync(root)) {
    try {
      const dir = `${root}/${name}`;
      const ifIndex = Number(read(`${dir}/ifindex`));
      const flags = Number.parseInt(read(`${dir}/flags`), 16);
      const operstate = read(`${dir}/operstate`).trim();
      if (!Number.isInteger(ifIndex) || ifIndex <= 0) continue;
      const up = (flags & IFF_UP) !== 0 && (operstate === 'up' || operstate === 'unknown');
      found.set(name, { ifIndex, up });
    } catch (err) {
      if (!VANISHED_CODES.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      options.onVanished?.(name);
    }
  }
  return found;
}

/**
 * {@link readInterfaces} for the watchers: one warning per listing names every interface that
 * vanished while it was read (a plain message: churn is no failure, so no stack).
 */
export function listInterfaces(
  root: string,
  onWarning: ((message: string) => void) | undefined,
  options: Omit<ReadInterfacesOptions, 'onVanished'> = {},
): Map<string, InterfaceState> {
  const vanished: string[] = [];
  const listing = readInterfaces(root, { ...options, onVanished: (name) => vanished.push(name) });
  if (vanished.length > 0) {
    onWarning?.(
      `skipped ${vanished.length} interface(s) deleted while ${root} was listed: ${vanished.join(', ')}`,
    );
  }
  return listing;
}

/**
 * The exact names (not `/regex/` entries) of `patterns` that name no interface under `root` now:
 * the typo in `-i eht0` that would otherwise leave the agent waiting without a word.
 */
export function missingInterfaceNames(patterns: readonly string[], root = SYS_CLASS_NET): string[] {
  const missing: string[] = [];
  for (const entry of patterns) {
    const pattern = parseInterfacePattern(entry);
    if (pattern.kind === 'name' && !existsSync(`${root}/${pattern.name}`)) missing.push(pattern.name);
  }
  return missing;
}
