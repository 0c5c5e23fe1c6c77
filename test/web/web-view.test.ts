/**
 * The web view in a real browser (playwright-core driving Debian's chromium): the page fills from
 * the event stream, filters and sorting work, health shows, and the stream survives a server
 * restart. The view is fed in-process with known flows; no agent or capture is involved.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { get } from 'node:http';
import { after, before, type TestContext, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { DropReasonNames } from '../../src/model/drop-reasons.ts';
import type { Flow } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import type { HealthSnapshot } from '../../src/web/health.ts';
import { startWebView, type WebView, type WebViewOptions } from '../../src/web/web-view.ts';
import { launchChromium } from '../helpers/browser.ts';
import { type FlowSpec, makeFlow } from '../helpers/flows.ts';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const WAIT_MS = 15_000;
const T0 = 1_700_000_000;
const NS = 1_000_000_000n;

const NAMES = new InterfaceRegistry();
NAMES.set(1, 'eth0');
NAMES.set(2, 'eth1');

const HEALTH: HealthSnapshot = {
  uptimeSeconds: 42,
  attachedInterfaces: ['eth0', 'eth1'],
  packetsSeen: 1234,
  bytesSeen: 567_890,
  ringBufferLost: 7,
  exporters: [
    {
      name: 'grpc',
      flowsSent: 10,
      flowsFailed: 3,
      batchesFailed: 1,
      'queue-full': 2,
      stopped: 0,
      queuedBatches: 0,
    },
  ],
};

let browser: Browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** One record of a flow on eth0 over the 5 s to `second` (the spec may move it). */
function record(second: number, spec: FlowSpec): Flow {
  return makeFlow({
    ifIndex: 1,
    timeFlowStartNs: BigInt(second - 4) * NS,
    timeFlowEndNs: BigInt(second) * NS,
    ...spec,
  });
}

/** Four known flows over 30 s, each evicted every 5 s as an agent would. */
function knownFlows(): Flow[] {
  const flows: Flow[] = [];
  for (let s = 0; s < 30; s += 5) {
    flows.push(
      record(T0 + s, {
        srcAddr: '10.0.0.1',
        srcPort: 40000,
        dstAddr: '10.0.0.2',
        dstPort: 443,
        bytes: 50_000,
        packets: 40,
      }),
      record(T0 + s, {
        srcAddr: '10.0.0.3',
        srcPort: 5353,
        dstAddr: '224.0.0.251',
        dstPort: 5353,
        proto: 17,
        bytes: 300,
        packets: 200,
      }),
      record(T0 + s, {
        ifIndex: 2,
        direction: 0,
        srcAddr: '192.168.1.10',
        srcPort: 51000,
        dstAddr: '10.0.0.1',
        dstPort: 22,
        bytes: 12_000,
        packets: 100,
      }),
      record(T0 + s, {
        etype: 0x86dd,
        srcAddr: '2001:db8::1',
        srcPort: 33000,
        dstAddr: '2001:db8::2',
        dstPort: 8443,
        bytes: 2_000,
        packets: 10,
      }),
    );
  }
  return flows;
}

async function openView(t: TestContext, options: Partial<WebViewOptions> = {}): Promise<WebView> {
  const view = await startWebView({
    host: '127.0.0.1',
    port: 0,
    timeline: 'records',
    health: () => HEALTH,
    pushIntervalMs: 200,
    ...options,
  });
  t.after(() => view.close());
  return view;
}

/** Opens the page; fails the test on any script error or any request that leaves the view's origin. */
async function openPage(t: TestContext, view: WebView): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  t.after(() => page.close());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith(view.url)) problems.push(`request outside the view: ${req.url()}`);
  });
  t.after(() => assert.deepEqual(problems, []));
  await page.goto(view.url);
  return page;
}

/** Waits until `table` has exactly `n` body rows (no nth(n-1) missing, no nth(n) left). */
async function rowCount(page: Page, table: string, n: number): Promise<void> {
  const rows = page.locator(`#${table} tbody tr`);
  if (n > 0) await rows.nth(n - 1).waitFor({ state: 'attached', timeout: WAIT_MS });
  await rows.nth(n).waitFor({ state: 'detached', timeout: WAIT_MS });
}

/** Text of column `column` (0-based) of every row of `table`. */
function column(page: Page, table: string, column: number): Promise<string[]> {
  return page.$$eval(
    `#${table} tbody tr`,
    (rows, c) => rows.map((r) => r.children[c]?.textContent ?? ''),
    column,
  );
}

test('the page shows the chart, top flows, top talkers and health of known flows, live', async (t) => {
  const view = await openView(t);
  view.export(recordBatchOf(knownFlows(), NAMES));
  const page = await openPage(t, view);
  await rowCount(page, 'flows', 4);
  await rowCount(page, 'talkers', 4);
  assert.deepEqual(await column(page, 'flows', 3), ['10.0.0.1', '192.168.1.10', '2001:db8::1', '10.0.0.3']);
  assert.deepEqual(await column(page, 'flows', 7), ['292.97 KiB', '70.31 KiB', '11.72 KiB', '1.76 KiB']);
  await page.waitForSelector('#chart .uplot', { timeout: WAIT_MS });
  const legend = await page.$$eval('#chart .u-legend .u-series .u-label', (els) =>
    els.map((e) => e.textContent),
  );
  assert.deepEqual(legend.slice(1), ['eth0 egress', 'eth1 ingress']);
  assert.equal(await page.textContent('[data-figure="attached"]'), 'eth0, eth1');
  assert.equal(await page.textContent('[data-figure="ring-lost"]'), '7');
  assert.equal(await page.textContent('[data-figure="export-errors-grpc"]'), '3 flows in 1 batches');
  assert.equal(await page.textContent('[data-figure="export-drops-grpc"]'), '2');
  assert.equal(await page.textContent('#status'), 'file', 'a capture timeline is a file, not live');

  // New flows reach the open page without a reload.
  view.export(recordBatchOf([record(T0 + 31, { srcAddr: '10.9.9.9', dstPort: 9999, bytes: 1 })], NAMES));
  await rowCount(page, 'flows', 5);
  await page.screenshot({ path: `${ARTIFACTS}web-view.png`, fullPage: true });
});

test('filters narrow the tables to the matching flows', async (t) => {
  const view = await openView(t);
  view.export(recordBatchOf(knownFlows(), NAMES));
  const page = await openPage(t, view);
  await rowCount(page, 'flows', 4);
  await page.locator('#filter-interface option').nth(2).waitFor({ state: 'attached', timeout: WAIT_MS });

  await page.selectOption('#filter-interface', 'eth1');
  await rowCount(page, 'flows', 1);
  assert.deepEqual(await column(page, 'flows', 3), ['192.168.1.10']);
  await rowCount(page, 'talkers', 1);

  await page.selectOption('#filter-interface', '');
  await page.selectOption('#filter-proto', 'UDP');
  await rowCount(page, 'flows', 1);
  assert.deepEqual(await column(page, 'flows', 6), ['5353']);

  await page.selectOption('#filter-proto', '');
  await page.fill('#filter-q', '443');
  await rowCount(page, 'flows', 2);
  assert.deepEqual(await column(page, 'flows', 6), ['443', '8443']);
});

test('clicking a column header sorts the table and clicking again reverses it', async (t) => {
  const view = await openView(t);
  view.export(recordBatchOf(knownFlows(), NAMES));
  const page = await openPage(t, view);
  await rowCount(page, 'flows', 4);

  await page.click('#flows th[data-key="packets"] button');
  assert.deepEqual(await column(page, 'flows', 8), ['1,200', '600', '240', '60']);
  assert.equal(await page.getAttribute('#flows th[data-key="packets"]', 'aria-sort'), 'descending');

  await page.click('#flows th[data-key="packets"] button');
  assert.deepEqual(await column(page, 'flows', 8), ['60', '240', '600', '1,200']);

  await page.click('#flows th[data-key="src"] button');
  assert.deepEqual(await column(page, 'flows', 3), ['10.0.0.1', '10.0.0.3', '192.168.1.10', '2001:db8::1']);
});

test('the page reconnects after the server restarts on the same port and shows the new data', async (t) => {
  const first = await openView(t);
  first.export(recordBatchOf([record(T0, { srcAddr: '10.1.1.1' })], NAMES));
  const page = await openPage(t, first);
  await rowCount(page, 'flows', 1);
  const port = Number(new URL(first.url).port);
  await first.close();
  await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: WAIT_MS });

  const second = await openView(t, { port });
  second.export(
    recordBatchOf([record(T0, { srcAddr: '10.2.2.2' }), record(T0, { srcAddr: '10.3.3.3' })], NAMES),
  );
  await rowCount(page, 'flows', 2);
  assert.deepEqual(await column(page, 'flows', 3), ['10.2.2.2', '10.3.3.3']);
  assert.equal(await page.textContent('#status'), 'file', 'a capture timeline is a file, not live');
});

/** The first `data:` event of `/events` at `url`, parsed. */
function firstEvent(url: string): Promise<{ flows: unknown[] }> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        const m = /^data: (.*)$/m.exec(text);
        if (m) {
          req.destroy();
          resolve(JSON.parse(m[1]));
        }
      });
    });
    req.on('error', reject);
  });
}

test('a new event stream gets the current snapshot at once', async (t) => {
  // A push period longer than the test: only the snapshot sent on connect can arrive.
  const view = await openView(t, { pushIntervalMs: 600_000 });
  view.export(recordBatchOf(knownFlows(), NAMES));
  const snapshot = await firstEvent(`${view.url}events?proto=tcp`);
  assert.equal(snapshot.flows.length, 3);
});

test('bad filters, unknown paths and foreign host names are refused', async (t) => {
  const view = await openView(t);
  const status = (path: string, host?: string) =>
    new Promise<number | undefined>((resolve, reject) => {
      get(`${view.url}${path}`, { headers: host ? { host } : {} }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', reject);
    });
  assert.equal(await status('events?proto=bogus'), 400);
  assert.equal(await status('../package.json'), 404);
  assert.equal(await status('snapshot.json', 'attacker.example:9800'), 403);
  assert.equal(await status('vendor/uPlot.iife.min.js', 'localhost'), 200);
  assert.equal(view.serverStats.badRequests, 3);
});

test('the flows table shows RTT, retransmissions and drops, and who is dropping updates live with the reason', async (t) => {
  const reasons = new DropReasonNames(new Map([[6, 'SKB_DROP_REASON_NETFILTER_DROP']]));
  const view = await openView(t, {
    dropReasons: () => reasons,
    health: () => ({ ...HEALTH, tcpHealth: { dropPackets: 17, retransSegments: 3 } }),
  });
  const noHealth = { dropBytes: 0, dropPackets: 0, retransBytes: 0, retransPackets: 0 };
  view.export(
    recordBatchOf(
      [
        record(T0, {
          srcAddr: '10.0.0.1',
          bytes: 9000,
          health: { ...noHealth, handshakeRttNs: 12_500_000n, retransPackets: 3, retransBytes: 4000 },
        }),
        record(T0, { srcAddr: '10.0.0.2', bytes: 100 }),
      ],
      NAMES,
    ),
  );
  const page = await openPage(t, view);
  await rowCount(page, 'flows', 2);
  // Columns: ... bytes 7, packets 8, RTT 9, retransmissions 10, drops 11.
  assert.deepEqual(await column(page, 'flows', 9), ['12.5 ms', '']);
  assert.deepEqual(await column(page, 'flows', 10), ['3', '']);
  assert.equal(
    await page.getAttribute('#flows tbody tr td:nth-child(10)', 'title'),
    'handshake time: 12,500,000 ns',
  );
  assert.equal(await page.textContent('[data-figure="retransmissions"]'), '3');
  assert.equal(await page.textContent('[data-figure="kernel-drops"]'), '17');
  await page.locator('#dropping-empty').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.equal(await page.textContent('#dropping-empty'), 'no packet dropped');

  // Drops arrive after the page opened: the list and the column fill without a reload.
  view.export(
    recordBatchOf(
      [
        record(T0 + 5, {
          srcAddr: '10.0.0.9',
          dstPort: 8080,
          bytes: 50,
          health: {
            ...noHealth,
            dropPackets: 17,
            dropBytes: 1020,
            latestDrop: { timeNs: BigInt(T0 + 5) * NS, cause: 6, tcpFlags: 2, tcpState: 0 },
          },
        }),
      ],
      NAMES,
    ),
  );
  await rowCount(page, 'dropping-hosts', 1);
  assert.deepEqual(await column(page, 'dropping-hosts', 1), ['10.0.0.9']);
  assert.deepEqual(await column(page, 'dropping-hosts', 2), ['17']);
  assert.deepEqual(await column(page, 'dropping-hosts', 3), ['NETFILTER_DROP']);
  await rowCount(page, 'dropping-flows', 1);
  assert.deepEqual(await column(page, 'dropping-flows', 0), ['TCP 10.0.0.9:1234 → 10.0.0.2:8080']);
  assert.deepEqual(await column(page, 'dropping-flows', 2), ['NETFILTER_DROP']);
  assert.ok(await page.locator('#dropping-empty').isHidden());
  await page.click('#flows th[data-key="drops"] button');
  assert.deepEqual(await column(page, 'flows', 11), ['17', '', '']);
  await page.click('#flows th[data-key="rttNs"] button');
  assert.deepEqual(await column(page, 'flows', 9), ['12.5 ms', '', ''], 'flows without an RTT sort last');
  await page.screenshot({ path: `${ARTIFACTS}web-view-health.png`, fullPage: true });
});
