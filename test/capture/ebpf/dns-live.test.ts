/**
 * DNS tracking in the live datapath, end to end: the tests' own DNS server (test/helpers/dns-server.ts)
 * answers on the host side of a veth pair after a set delay, NXDOMAIN, SERVFAIL, never, or too
 * large for UDP; dig queries it from the namespace and a script floods it with 10 000 queries of
 * random ids; `flowtap run --dns-tracking` watches the host side while tcpdump captures it.
 * Each query's flow shows its name, response code and a latency within the delay + 10 ms, the
 * silent query is counted unanswered, the pending map never holds more than its bound, and
 * `flowtap read --dns-tracking` of the capture gives the same names, codes and latencies (± the
 * capture's microsecond timestamps and the two clocks' moments). Needs root, tcpdump and dig.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DnsLimit } from '../../../src/codec/v2-layout.ts';
import { type Flowtap, startFlowtap } from '../../agent/live.ts';
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
} from '../dns/dns-exchanges.ts';

const skip = skipUnlessKernel('track DNS with the TC programs on a veth pair in a network namespace');

/** How far the live and the capture's latency of one answer may differ: two clocks, read at two hooks. */
const CLOCKS_MS = 2;
const WAIT_LIMIT_MS = 30_000;

async function waitUntil(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('flowtap run --dns-tracking on real DNS exchanges', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-dns-live-'));
  const capture = join(dir, 'dns.pcap');
  let pair: VethPair | undefined;
  let server: DnsTestServer | undefined;
  let tcpdump: ChildProcess | undefined;
  let live: DnsJsonFlow[] = [];
  let offline: DnsJsonFlow[] = [];
  let pendingPeak = 0;
  let flowtap: Flowtap | undefined;
  /** Cleanups of the flowtap process (startFlowtap registers them with a test context's `after`). */
  const cleanups: Array<() => unknown> = [];
  const context = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as Parameters<
    typeof startFlowtap
  >[0];

  before(async () => {
    pair = await createVethPair('ftdk');
    const v = pair;
    server = await startExchangeServer(v);
    const port = server.port;
    const running = startFlowtap(context, [
      '-i',
      v.hostIf,
      '--dns-tracking',
      '--dns-tracking-port',
      String(port),
      '--cache-active-timeout',
      '300ms',
      '--metrics',
      '127.0.0.1:0',
    ]);
    flowtap = running;
    await running.untilLog('attached', v.hostIf);
    const metricsAt = (await running.untilLog('metrics listening on /metrics')) as { address?: string };
    tcpdump = await startTcpdump(['-B', '16384', '-i', v.hostIf, '-w', capture, `port ${port}`]);
    await makeExchanges(v, port);
    // The pending map at its fullest: read at the first drain after the flood, while its queries
    // still wait (their timeout is 5 s).
    const pending = async () => {
      const metrics = await fetch(`http://${metricsAt.address}/metrics`).then((r) => r.text());
      return Number(/^flowtap_dns_pending_queries (\d+)/m.exec(metrics)?.[1] ?? 0);
    };
    const deadline = Date.now() + 3000;
    while (pendingPeak === 0 && Date.now() < deadline) {
      pendingPeak = await pending();
      if (pendingPeak === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The marker's query and answer in the capture, and its query's flow out of flowtap: everything
    // sent before was seen by both. (Its answer may find no query: the flood can have filled the
    // pending map again since the latest drain.)
    await dig(v, port, MARKER_NAME);
    await waitUntil(() => occurrences(capture, 'marker') >= 2, 'the marker in the capture');
    await waitUntil(
      () =>
        running.flows.some(
          (f) => (f as DnsJsonFlow).DnsName === MARKER_NAME && ((f as DnsJsonFlow).DnsQueries ?? 0) >= 1,
        ),
      'the marker query',
    );
    await stopTcpdump(tcpdump);
    running.child.kill('SIGTERM');
    assert.equal(await running.exited, 0);
    live = running.flows as DnsJsonFlow[];
    const read = await runCli(
      ['read', capture, '--dns-tracking', '--dns-tracking-port', String(port), '--output', 'json'],
      { timeoutMs: 60_000 },
    );
    assert.equal(read.code, 0, read.stderr);
    offline = read.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as DnsJsonFlow);
  });

  after(async () => {
    for (const cleanup of cleanups) await cleanup();
    killTcpdump(tcpdump);
    if (flowtap && flowtap.child.exitCode === null && flowtap.child.signalCode === null) {
      flowtap.child.kill('SIGKILL');
    }
    await server?.close();
    await pair?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The flows from the server (responses) carrying `name`, merged over their records. */
  const answer = (flows: DnsJsonFlow[], name: string, proto = 'UDP') => {
    const mine = flows.filter(
      (f) => f.DnsName === name && f.Transport.SrcPort === server?.port && f.Transport.Proto === proto,
    );
    return mine.find((f) => f.DnsAnswers === 1) ?? mine[0];
  };
  const total = (flows: DnsJsonFlow[], name: string, field: 'DnsQueries' | 'DnsUnanswered') =>
    flows.filter((f) => f.DnsName === name).reduce((n, f) => n + (f[field] ?? 0), 0);

  test('an answered query shows its name, NoError and a latency within the delay and 10 ms more', () => {
    const flow = answer(live, 'www.flowtap.test');
    assert.ok(flow, 'the response flow carries the name');
    assert.equal(flow.DnsFlagsResponseCode, 'NoError');
    const latency = flow.DnsLatencyMs ?? -1;
    assert.ok(latency >= DELAY_MS - 1 && latency <= DELAY_MS + SLACK_MS, `latency ${latency} ms`);
  });

  test('NXDOMAIN and SERVFAIL answers carry their response codes', () => {
    assert.equal(answer(live, 'nx.flowtap.test')?.DnsFlagsResponseCode, 'NXDomain');
    assert.equal(answer(live, 'fail.flowtap.test')?.DnsFlagsResponseCode, 'ServFail');
  });

  test('a large answer is truncated over UDP and answered whole over TCP, its continuations no DNS', () => {
    assert.ok(
      ((answer(live, 'large.flowtap.test')?.DnsFlags ?? 0) & 0x0200) !== 0,
      'the UDP answer has TC set',
    );
    const tcp = answer(live, 'large.flowtap.test', 'TCP');
    assert.ok(tcp, 'the TCP response flow carries the name');
    assert.equal(tcp.DnsFlagsResponseCode, 'NoError');
    assert.equal(tcp.DnsAnswers, 1);
    assert.equal(tcp.DnsMalformed, undefined, 'its continuation segments are not messages');
    const latency = tcp.DnsLatencyMs ?? -1;
    assert.ok(latency >= DELAY_MS - 1 && latency <= DELAY_MS + SLACK_MS, `latency ${latency} ms`);
  });

  test('a query never answered is counted unanswered on its flow', () => {
    assert.equal(total(live, 'silent.flowtap.test', 'DnsUnanswered'), 1);
  });

  test('10 000 queries with random ids are all counted, the pending map never past its bound', () => {
    assert.equal(total(live, 'flood.flowtap.test', 'DnsQueries'), FLOOD_QUERIES);
    assert.ok(pendingPeak > 0 && pendingPeak <= DnsLimit.PENDING_MAX, `pending ${pendingPeak}`);
    // Every query that waited ends unanswered (expired, or still waiting at the stop): none leaks.
    const unanswered = total(live, 'flood.flowtap.test', 'DnsUnanswered');
    assert.ok(unanswered > 0 && unanswered <= FLOOD_QUERIES, `unanswered ${unanswered}`);
  });

  test('flowtap read of a capture of the same exchanges gives the same names, codes and latencies', () => {
    for (const [name, proto] of [
      ['www.flowtap.test', 'UDP'],
      ['nx.flowtap.test', 'UDP'],
      ['fail.flowtap.test', 'UDP'],
      ['large.flowtap.test', 'UDP'],
      ['large.flowtap.test', 'TCP'],
    ] as const) {
      const a = answer(live, name, proto);
      const b = answer(offline, name, proto);
      assert.ok(a && b, `${name} over ${proto} in both`);
      assert.equal(a.DnsFlagsResponseCode, b.DnsFlagsResponseCode, name);
      assert.equal(a.DnsFlags, b.DnsFlags, name);
      const delta = Math.abs((a.DnsLatencyMs ?? 0) - (b.DnsLatencyMs ?? 0));
      assert.ok(delta <= CLOCKS_MS, `${name} over ${proto}: ${a.DnsLatencyMs} vs ${b.DnsLatencyMs} ms`);
    }
    assert.equal(total(offline, 'silent.flowtap.test', 'DnsUnanswered'), 1);
  });
});
