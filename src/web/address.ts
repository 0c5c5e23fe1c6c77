/** The `--web [addr]` value: where the web view listens. */
import { ConfigError } from '../errors.ts';

/** Where the web view listens. */
export interface WebAddress {
  readonly host: string;
  readonly port: number;
}

/** Where `--web` given alone listens: loopback, since the page is unauthenticated. */
export const DEFAULT_WEB_ADDRESS: WebAddress = Object.freeze({ host: '127.0.0.1', port: 9800 });

const ACCEPTED = 'host:port, [ipv6]:port or a port alone (0-65535; 0 picks a free port)';

/**
 * Reads the value of `--web`: `true` (the flag alone) is the default address; `host:port`,
 * `[ipv6]:port` or a port alone (on loopback). Throws ConfigError naming `--web` otherwise.
 */
export function parseWebAddress(value: string | boolean): WebAddress {
  if (value === true) return DEFAULT_WEB_ADDRESS;
  const text = String(value).trim();
  const m =
    /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65_535) throw new ConfigError('--web', text, ACCEPTED);
  return { host: m[1] || m[2] || DEFAULT_WEB_ADDRESS.host, port };
}
