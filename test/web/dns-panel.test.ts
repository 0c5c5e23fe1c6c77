/**
 * The web view's DNS panel: the names of the flows that carried DNS over the top tables' window,
 * the slowest and the failing ones, bounded; and `flowtap read --dns-tracking --web` showing them
 * in a browser.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import type { FlowDns } from '../../src/model/flow.ts';
import { FlowAggregate } from '../../src/web/aggregate.ts';
import { DnsNameWindow } from '../../src/web/dns-window.ts';
import { buildSnapshot, NO_FILTER } from '../../src/web/snapshot.ts';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { launchChromium } from '../helpers/browser.ts';
import { makeFlow } from '../helpers/flows.ts';
import { DNS_EXCHANGES, dnsFrame } from '../vectors/dns.ts';

const T0 = 1_700_000_000;
const at = (second: number) => BigInt(T0 + second) * 1_000_000_000n;

function answered(name: string, flags: number, latencyMs: number): FlowDns {
  return {
    queries: 0,
    answers: 1,
    unanswered: 0,
    malformed: 0,
    latestNs: 1n,
    header: { id: 1, flags },
    name,
    latencyNs: BigInt(latencyMs * 1_000_000),
  };
}

test('the DNS panel lists the slowest names by their largest latency and the failing ones by their failures', () => {
  const aggregate = new FlowAggregate({ timeline: 'records' });
  const flows = [
    makeFlow({ srcPort: 1, timeFlowEndNs: at(1), dns: answered('fast.example', 0x8180, 2) }),
    makeFlow({ srcPort: 2, timeFlowEndNs: at(1), dns: answered('slow.example', 0x8180, 900) }),
    makeFlow({ srcPort: 3, timeFlowEndNs: at(2), dns: answered('slow.example', 0x8180, 100) }),
    makeFlow({ srcPort: 4, timeFlowEndNs: at(2), dns: answered('nx.example', 0x8183, 5) }),
    makeFlow({
      srcPort: 5,
      timeFlowEndNs: at(2),
      dns: { queries: 1, answers: 0, unanswered: 1, malformed: 0, latestNs: 1n, name: 'lost.example' },
    }),
    makeFlow({ srcPort: 6, timeFlowEndNs: at(2) }),
  ];
  aggregate.add(recordBatchOf(flows));
  const dns = buildSnapshot(aggregate, NO_FILTER, 10, undefined).dns;
  assert.ok(dns);
  assert.equal(dns.names, 4);
  assert.deepEqual(
    dns.slowest.map((r) => [r.name, r.maxLatencyMs, r.meanLatencyMs, r.answers]),
    [
      ['slow.example', 900, 500, 2],
      ['nx.example', 5, 5, 1],
      ['fast.example', 2, 2, 1],
    ],
  );
  assert.deepEqual(
    dns.failing.map((r) => [r.name, r.rcode, r.failures, r.unanswered]),
    [
      ['nx.example', 'NXDomain', 1, 0],
      ['lost.example', '', 0, 1],
    ],
  );
});

test('without DNS the snapshot has no DNS panel, and names leave with the window', () => {
  const aggregate = new FlowAggregate({ timeline: 'records', topSegmentSeconds: 10, topSegmentCount: 2 });
  aggregate.add(recordBatchOf([makeFlow({ timeFlowEndNs: at(1) })]));
  assert.equal(buildSnapshot(aggregate, NO_FILTER, 10, undefined).dns, null);
  aggregate.add(recordBatchOf([makeFlow({ timeFlowEndNs: at(2), dns: answered('a.example', 0x8180, 1) })]));
  assert.equal(buildSnapshot(aggregate, NO_FILTER, 10, undefined).dns?.names, 1);
  aggregate.add(recordBatchOf([makeFlow({ timeFlowEndNs: at(100) })]));
  assert.equal(buildSnapshot(aggregate, NO_FILTER, 10, undefined).dns, null);
});

test('a segment holds a bounded number of names; the rest are counted as dropped', () => {
  const window = new DnsNameWindow(10, 2, 3);
  window.advanceTo(T0);
  const batch = recordBatchOf(
    ['a', 'b', 'c', 'd', 'e'].map((name, i) => makeFlow({ srcPort: i, dns: answered(name, 0x8180, 1) })),
  );
  for (let i = 0; i < batch.count; i++) window.addRow(batch.bytes, batch.rowOffset(i), T0);
  assert.equal(window.totals().size, 3);
  assert.equal(window.droppedNames, 2);
});

test('read --dns-tracking --web shows the slowest and the failing names in the DNS panel', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-web-dns-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const packets = DNS_EXCHANGES.filter((e) => e.steps.every((s) => s.transport === 'udp')).flatMap((e, k) =>
    // Each exchange 10 s after the one before: a query never answered times out before the next.
    e.steps.map((step) => ({
      frame: dnsFrame(step),
      seconds: T0 + 10 * k + Math.floor(step.atNs / 1e9),
      fraction: Math.floor((step.atNs % 1e9) / 1000),
    })),
  );
  const file = join(dir, 'dns.pcap');
  writeFileSync(file, classicPcap(packets));
  const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', cli, 'read', file, '--dns-tracking', '--web', '127.0.0.1:0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (/keeps serving/.test(stderr)) resolve(/web view at (http:\/\/\S+)/.exec(stderr)?.[1] ?? '');
    });
    void exited.then(() => reject(new Error(`flowtap exited: ${stderr}`)));
  });
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(err.message));
  await page.goto(url);
  await page.locator('#dns-slowest tbody tr').first().waitFor({ timeout: 20_000 });
  assert.match((await page.textContent('#dns-slowest tbody')) ?? '', /www\.example\.com/);
  assert.match((await page.textContent('#dns-failing tbody')) ?? '', /nx\.flowtap\.test/);
  assert.deepEqual(problems, []);
  child.kill('SIGTERM');
  await exited;
});
