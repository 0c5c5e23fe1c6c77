/**
 * The web view's time range in a real browser (playwright-core driving Debian's chromium): a past
 * window of a flow store written beforehand shows its flows, and a view without a store says its
 * history is off. The browser runs in UTC so the custom range's local times are UTC times.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { queriesOfFile } from '../../src/store/store-reader.ts';
import { startWebView, type WebView, type WebViewOptions } from '../../src/web/web-view.ts';
import { launchChromium } from '../helpers/browser.ts';
import { makeFlow } from '../helpers/flows.ts';

const WAIT_MS = 15_000;
/** The past window the store holds flows in: 2023-11-14 22:00 to 23:00 UTC. */
const WINDOW_FROM = '2023-11-14T22:00:00';
const WINDOW_TO = '2023-11-14T23:00:00';
const FLOW_END_NS = BigInt(Date.parse('2023-11-14T22:30:00Z')) * 1_000_000n;

let browser: Browser;
const dir = mkdtempSync(join(tmpdir(), 'flowtap-web-history-'));
const storeFile = join(dir, 'flows.duckdb');

before(async () => {
  const names = new InterfaceRegistry();
  names.set(1, 'eth0');
  const store = await FlowStore.open(storeFile);
  await store.append(
    recordBatchOf(
      [
        { srcAddr: '10.0.3.7', dstAddr: '192.0.2.1', dstPort: 443, bytes: 90_000, packets: 60 },
        {
          srcAddr: '2001:db8::5',
          dstAddr: '2001:db8::6',
          etype: 0x86dd,
          dstPort: 8443,
          bytes: 4_000,
          packets: 8,
        },
      ].map((spec) =>
        makeFlow({
          ifIndex: 1,
          srcPort: 40_000,
          timeFlowStartNs: FLOW_END_NS - 5_000_000_000n,
          timeFlowEndNs: FLOW_END_NS,
          ...spec,
        }),
      ),
      names,
    ),
  );
  await store.close();
  browser = await launchChromium({ TZ: 'UTC' });
});

after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function openView(t: TestContext, options: Partial<WebViewOptions>): Promise<WebView> {
  const view = await startWebView({
    host: '127.0.0.1',
    port: 0,
    timeline: 'wall',
    pushIntervalMs: 200,
    ...options,
  });
  t.after(() => view.close());
  return view;
}

/** Opens the page; fails the test on any script or console error. */
async function openPage(t: TestContext, view: WebView): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  t.after(() => page.close());
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // The browser asks for /favicon.ico on its own; the view has none.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) {
      problems.push(`console error: ${message.text()} (${message.location().url})`);
    }
  });
  t.after(() => assert.deepEqual(problems, []));
  await page.goto(view.url);
  await page.waitForSelector('#status[data-state="live"]', { timeout: WAIT_MS });
  return page;
}

test('selecting a past window of the store shows its flows and talkers', async (t) => {
  const view = await openView(t, { store: queriesOfFile(storeFile) });
  const page = await openPage(t, view);
  assert.equal(await page.locator('#flows tbody tr').count(), 0);

  await page.selectOption('#range', 'custom');
  await page.fill('#range-from', WINDOW_FROM);
  await page.fill('#range-to', WINDOW_TO);
  await page.click('#range-show');

  await page.locator('#flows tbody tr').nth(1).waitFor({ state: 'attached', timeout: WAIT_MS });
  const sources = await page.$$eval('#flows tbody tr', (rows) => rows.map((r) => r.children[3]?.textContent));
  assert.deepEqual(sources, ['10.0.3.7', '2001:db8::5']);
  const talkers = await page.$$eval('#talkers tbody tr', (rows) =>
    rows.map((r) => r.children[1]?.textContent),
  );
  assert.deepEqual(talkers, ['10.0.3.7', '2001:db8::5']);
  assert.equal(await page.textContent('#status'), 'history');
  assert.match((await page.textContent('#flows-note')) ?? '', /2023-11-14T22:00:00Z to 2023-11-14T23:00:00Z/);
  await page.waitForSelector('#chart .uplot', { timeout: WAIT_MS });

  // Back to live: the store's flows are not in the live window.
  await page.selectOption('#range', 'live');
  await page.waitForSelector('#status[data-state="live"]', { timeout: WAIT_MS });
  await page.locator('#flows tbody tr').first().waitFor({ state: 'detached', timeout: WAIT_MS });
});

test('without a flow store the time range says history is off and offers only live', async (t) => {
  const view = await openView(t, {});
  const page = await openPage(t, view);
  await page
    .locator('#range-note', { hasText: 'history is off (no flow store)' })
    .waitFor({ timeout: WAIT_MS });
  const disabled = await page.$$eval('#range option', (options) =>
    options.map((o) => {
      const option = o as unknown as { value: string; disabled: boolean };
      return `${option.value}:${option.disabled}`;
    }),
  );
  assert.deepEqual(disabled, ['live:false', '1h:true', '24h:true', '7d:true', 'custom:true']);
});
