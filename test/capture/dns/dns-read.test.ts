/**
 * DNS tracking of a real exchange: the tests' own DNS server (test/helpers/dns-server.ts) answers
 * on the host side of a veth pair after a set delay, NXDOMAIN, SERVFAIL, never, or too large for
 * UDP; dig queries it from the namespace and a script floods it with 10 000 queries of random
 * ids; tcpdump captures the veth; `flowtap read --dns-tracking` of the capture gives each name
 * its response code and a latency within the delay + 10 ms, counts the unanswered query, and
 * never holds more than the pending bound. Needs root, tcpdump and dig.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DnsLimit } from '../../../src/codec/v2-layout.ts';
import { runCli } from '../../helpers/cli.ts';
import type { DnsTestServer } from '../../helpers/dns-server.ts';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair, type VethPair } from '../../net/netns.ts';
import { killTcpdump, startTcpdump, stopTcpdump } from '../../net/tcpdump.ts';
import {
  DELAY_MS,
  type DnsJsonFlow,
  dig,
  FLOOD_QUERIES,
  MARKER_NAME,
  makeExchanges,
  occurrences,
  SLACK_MS,
  startExchangeServer,
} from './dns-exchanges.ts';

const skip = skipUnlessKernel('capture DNS with tcpdump on a veth pair in a network namespace');

const WAIT_LIMIT_MS = 20_000;

/** Waits until `file` holds `text` `times` times: tcpdump wrote everything sent before it. */
async function waitFor(file: string, text: string, times: number): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (occurrences(file, text) < times) {
    if (Date.now() > deadline) throw new Error(`${file} never held ${text} ${times} times`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('flowtap read --dns-tracking of a capture of real DNS exchanges', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-dns-read-'));
  const capture = join(dir, 'dns.pcap');
  let pair: VethPair | undefined;
  let server: DnsTestServer | undefined;
  let tcpdump: ChildProcess | undefined;
  let flows: DnsJsonFlow[] = [];
  let summary = '';
  /** The flood's ids in the order sent. */
  let floodIds: number[] = [];

  before(async () => {
    pair = await createVethPair('ftdns');
    const v = pair;
    server = await startExchangeServer(v);
    const port = server.port;
    tcpdump = await startTcpdump(['-B', '16384', '-i', v.hostIf, '-w', capture, `port ${port}`]);
    floodIds = await makeExchanges(v, port);
    await dig(v, port, MARKER_NAME);
    await waitFor(capture, 'marker', 2);
    await stopTcpdump(tcpdump);
    const read = await runCli(
      ['read', capture, '--dns-tracking', '--dns-tracking-port', String(port), '--output', 'json'],
      { timeoutMs: 60_000 },
    );
    assert.equal(read.code, 0, read.stderr);
    summary = read.stderr;
    flows = read.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as DnsJsonFlow);
  });

  after(async () => {
    killTcpdump(tcpdump);
    await server?.close();
    await pair?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The flows from the server (responses) carrying `name`. */
  const responses = (name: string, proto = 'UDP') =>
    flows.filter(
      (f) => f.DnsName === name && f.Transport.SrcPort === server?.port && f.Transport.Proto === proto,
    );

  test('an answered query shows its name, NoError and a latency within the delay and 10 ms more', () => {
    const [flow] = responses('www.flowtap.test');
    assert.ok(flow, 'the response flow carries the name');
    assert.equal(flow.DnsFlagsResponseCode, 'NoError');
    assert.equal(flow.DnsAnswers, 1);
    const latency = flow.DnsLatencyMs ?? -1;
    assert.ok(latency >= DELAY_MS - 1 && latency <= DELAY_MS + SLACK_MS, `latency ${latency} ms`);
  });

  test('NXDOMAIN and SERVFAIL answers carry their response codes', () => {
    assert.equal(responses('nx.flowtap.test')[0]?.DnsFlagsResponseCode, 'NXDomain');
    assert.equal(responses('fail.flowtap.test')[0]?.DnsFlagsResponseCode, 'ServFail');
  });

  test('a large answer is truncated over UDP and answered whole over TCP, as one answer in several segments', () => {
    const [udp] = responses('large.flowtap.test');
    assert.ok(((udp?.DnsFlags ?? 0) & 0x0200) !== 0, 'the UDP answer has TC set');
    const [tcp] = responses('large.flowtap.test', 'TCP');
    assert.ok(tcp, 'the TCP response flow carries the name');
    assert.equal(tcp.DnsFlagsResponseCode, 'NoError');
    assert.equal(tcp.DnsAnswers, 1);
    assert.equal(tcp.DnsMalformed, undefined, 'its continuation segments are not messages');
    assert.ok(tcp.Packets > 2, `the answer crossed in several segments (${tcp.Packets} packets)`);
    const latency = tcp.DnsLatencyMs ?? -1;
    assert.ok(latency >= DELAY_MS - 1 && latency <= DELAY_MS + SLACK_MS, `latency ${latency} ms`);
  });

  test('a query never answered is counted unanswered on its flow', () => {
    const silent = flows.filter((f) => f.DnsName === 'silent.flowtap.test');
    assert.equal(
      silent.reduce((n, f) => n + (f.DnsUnanswered ?? 0), 0),
      1,
    );
  });

  test('10 000 queries with random ids are all counted, never more than the pending bound waiting', () => {
    const flood = flows.filter((f) => f.DnsName === 'flood.flowtap.test');
    assert.equal(
      flood.reduce((n, f) => n + (f.DnsQueries ?? 0), 0),
      FLOOD_QUERIES,
    );
    const waiting = /at most (\d+) queries waiting at once/.exec(summary);
    assert.ok(waiting, summary);
    assert.ok(Number(waiting[1]) <= DnsLimit.PENDING_MAX, summary);
    assert.ok(Number(waiting[1]) > 0, summary);
    // Every query waited but those repeating the id of one still waiting (a retransmission to
    // the tracker): with the pending bound, the ids that started a wait are these.
    const waitingIds = new Set<number>();
    const order: number[] = [];
    let waits = 0;
    for (const id of floodIds) {
      if (waitingIds.has(id)) continue;
      if (waitingIds.size >= DnsLimit.PENDING_MAX) waitingIds.delete(order.shift() as number);
      waitingIds.add(id);
      order.push(id);
      waits++;
    }
    assert.equal(floodIds.length, FLOOD_QUERIES);
    assert.equal(
      flood.reduce((n, f) => n + (f.DnsUnanswered ?? 0), 0),
      waits,
      'each wait ended unanswered: pushed out, or still waiting when the capture ended',
    );
  });
});
