/**
 * The agent's own address, written into every flow it exports (pbflow `agent_ip`, JSON `AgentIP`,
 * IPFIX exporterIPv4Address/exporterIPv6Address) so a collector fed by many agents knows which
 * one saw a flow.
 *
 * `AGENT_IP` names it; otherwise it is the source address the kernel picks for the default
 * route, found as the reference finds it: a UDP socket is connected (no packet is sent) to a
 * public address and its local address read back. That asks the routing code itself, so route
 * metrics, several default routes, policy rules and a route's preferred source (`src`) are all
 * honoured, which parsing /proc/net/route and matching interface addresses would have to redo
 * (and /proc/net/route knows no IPv6). `AGENT_IP_TYPE` picks the family: `ipv4`, `ipv6`, or
 * `any` (the reference's default: IPv4, and flowtap goes on to IPv6 when there is no IPv4 route).
 * A host with no route of the wanted family gets the unspecified address and one warning.
 */
import { createSocket } from 'node:dgram';
import { IP_BYTES, parseIp } from '../model/ip.ts';
import type { Logger } from './logger.ts';

/** `AGENT_IP_TYPE`: which family the discovered address is of. */
export const AGENT_IP_TYPES = ['any', 'ipv4', 'ipv6'] as const;
/** One `AGENT_IP_TYPE`. */
export type AgentIpType = (typeof AGENT_IP_TYPES)[number];

/** How the agent IP is chosen. */
export interface AgentIpSettings {
  /** `AGENT_IP`, already checked to be an address; undefined = discover it. */
  readonly address: string | undefined;
  /** `AGENT_IP_TYPE`. */
  readonly type: AgentIpType;
}

/**
 * Destinations whose route is looked up: the reference's (a public resolver). Nothing is sent to
 * them; a connected UDP socket only records the route the kernel chose.
 */
export const ROUTE_PROBE_IPV4 = '8.8.8.8';
/** IPv6 destination of the route lookup. */
export const ROUTE_PROBE_IPV6 = '2001:4860:4860::8888';
/** Port of the route lookup (never contacted). */
const ROUTE_PROBE_PORT = 80;

/** Finds the local address the kernel would use to reach `destination`; undefined without a route. */
export type SourceAddressLookup = (family: 4 | 6, destination: string) => Promise<string | undefined>;

/** The kernel's source address for `destination`, via a connected (never used) UDP socket. */
export const kernelSourceAddress: SourceAddressLookup = (family, destination) =>
  new Promise((resolve) => {
    const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
    let done = false;
    const finish = (address: string | undefined) => {
      if (done) return;
      done = true;
      try {
        socket.close();
      } catch {
        // already closed by a failed bind: nothing is left to release
      }
      resolve(address);
    };
    // ENETUNREACH (no route), EADDRNOTAVAIL (no address of the family): there is no answer.
    socket.once('error', () => finish(undefined));
    socket.connect(ROUTE_PROBE_PORT, destination, () => {
      let address: string | undefined;
      try {
        address = socket.address().address;
      } catch {
        address = undefined;
      }
      // A socket the kernel could not route keeps the unspecified address: no answer either.
      finish(address === '::' || address === '0.0.0.0' ? undefined : address);
    });
  });

/** The unspecified address (0.0.0.0, stored IPv4-mapped like every IPv4 address). */
function unspecifiedIpv4(): Uint8Array {
  const out = new Uint8Array(IP_BYTES);
  out[10] = 0xff;
  out[11] = 0xff;
  return out;
}

/**
 * The agent IP as 16 stored bytes (IPv4 mapped): `settings.address` when given, else the default
 * route's source address of the wanted family. Never fails: without a route it warns once on
 * `logger` and returns the unspecified address of the family (0.0.0.0, or :: for `ipv6`).
 */
export async function resolveAgentIp(
  settings: AgentIpSettings,
  logger?: Logger,
  lookup: SourceAddressLookup = kernelSourceAddress,
): Promise<Uint8Array> {
  if (settings.address !== undefined) {
    const given = parseIp(settings.address);
    if (given) return given;
  }
  const families: (4 | 6)[] = settings.type === 'ipv4' ? [4] : settings.type === 'ipv6' ? [6] : [4, 6];
  for (const family of families) {
    const found = await lookup(family, family === 4 ? ROUTE_PROBE_IPV4 : ROUTE_PROBE_IPV6);
    const parsed = found === undefined ? undefined : parseIp(found);
    if (parsed) return parsed;
  }
  logger?.warn(
    { agentIpType: settings.type },
    'no default route to take the agent IP from: flows carry the unspecified address; set AGENT_IP',
  );
  return settings.type === 'ipv6' ? new Uint8Array(IP_BYTES) : unspecifiedIpv4();
}
