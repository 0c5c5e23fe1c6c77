/**
 * The DNS exchanges the live and the capture DNS tests both make on a veth pair: the tests' own
 * server on the host side (answers after DELAY_MS; NXDOMAIN, SERVFAIL, silence and a large answer
 * for their names) queried with `dig` from the namespace, then a flood of random ids, so both
 * tests check the same names, codes, latencies and counts.
 */
import { readFileSync } from 'node:fs';
import { DnsTestServer } from '../../helpers/dns-server.ts';
import type { VethPair } from '../../net/netns.ts';

/** The server's delay before each answer. */
export const DELAY_MS = 50;
/** How far past the server's delay a latency may be: scheduling on a shared 2-core machine. */
export const SLACK_MS = 10;
/** Queries of the flood, each with a random id, to names the server never answers. */
export const FLOOD_QUERIES = 10_000;
/** The name whose query and answer, once seen, mean everything sent before was seen too. */
export const MARKER_NAME = 'marker.flowtap.test';

const FLOOD_CLIENT = new URL('./dns-flood-client.mjs', import.meta.url).pathname;

/** The DNS fields of a flow's JSON line these tests read. */
export interface DnsJsonFlow {
  Network: { SrcAddr: string; DstAddr: string };
  Transport: { SrcPort: number; DstPort: number; Proto: string };
  Packets: number;
  DnsId?: number;
  DnsFlags?: number;
  DnsFlagsResponseCode?: string;
  DnsLatencyMs?: number;
  DnsName?: string;
  DnsErrno?: number;
  DnsQueries?: number;
  DnsAnswers?: number;
  DnsUnanswered?: number;
  DnsMalformed?: number;
}

/** Starts the tests' DNS server on the host side of `v`. */
export function startExchangeServer(v: VethPair): Promise<DnsTestServer> {
  return DnsTestServer.start({
    host: v.hostAddr4,
    delayMs: DELAY_MS,
    nxdomain: ['nx.flowtap.test'],
    servfail: ['fail.flowtap.test'],
    silent: ['silent.flowtap.test', 'flood.flowtap.test'],
    large: ['large.flowtap.test'],
  });
}

/** `dig` from the namespace of `v` for `name`'s A record at the server on `port`, one try. */
export function dig(v: VethPair, port: number, name: string, ...options: string[]): Promise<string> {
  return v.exec('dig', [
    `@${v.hostAddr4}`,
    '-p',
    String(port),
    '+tries=1',
    '+timeout=2',
    ...options,
    name,
    'A',
  ]);
}

/**
 * Asks for an answered name, an NXDOMAIN, a SERVFAIL, the large answer (UDP first: truncated,
 * then dig asks again over TCP), a name never answered, then floods; returns the flood's ids in
 * the order sent.
 */
export async function makeExchanges(v: VethPair, port: number): Promise<number[]> {
  await dig(v, port, 'www.flowtap.test');
  await dig(v, port, 'nx.flowtap.test');
  await dig(v, port, 'fail.flowtap.test');
  await dig(v, port, 'large.flowtap.test');
  await dig(v, port, 'silent.flowtap.test', '+timeout=1').catch(() => undefined); // no answer: dig fails
  const sentIds = await v.exec(process.execPath, [
    FLOOD_CLIENT,
    v.hostAddr4,
    String(port),
    String(FLOOD_QUERIES),
    'flood.flowtap.test',
  ]);
  return sentIds.split(',').map(Number);
}

/** Times `text` occurs in `file`. */
export function occurrences(file: string, text: string): number {
  const data = readFileSync(file);
  let n = 0;
  for (let at = data.indexOf(text); at >= 0; at = data.indexOf(text, at + 1)) n++;
  return n;
}
