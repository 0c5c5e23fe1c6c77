/**
 * `flowtap read FILE --web` in a browser, at 1400x900: a 6-minute capture shows from its first
 * minute, says "file", zooms on a drag and resets, keeps totals, top talkers and health in sight,
 * and logs no console error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { launchChromium } from '../helpers/browser.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const WAIT_MS = 20_000;
const T0 = 1_700_000_000;
const CAPTURE_SECONDS = 360;

function frameOf(name: string): Buffer {
  const vector = PACKET_VECTORS.find((v) => v.name === name);
  assert.ok(vector, name);
  return Buffer.from(vector.frame, 'hex');
}

test('read --web of a 6-minute capture shows its first minute, a zoomed range and the file badge, without console errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-web-page-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // UDP in the first minute only, TCP every 10 s to the end: the UDP flow is the first minute's.
  const udp = frameOf('ipv4 udp with payload');
  const tcp = frameOf('ipv4 tcp syn with dscp EF');
  const packets = [];
  for (let s = 0; s <= CAPTURE_SECONDS; s += 10) {
    if (s < 60) packets.push({ frame: udp, seconds: T0 + s, fraction: 0 });
    packets.push({ frame: tcp, seconds: T0 + s, fraction: 500_000 });
  }
  const file = join(dir, 'six-minutes.pcap');
  writeFileSync(file, classicPcap(packets));

  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'read', file, '--web', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.goto(url);

  // The first minute's UDP flow is in the table: the whole capture is in view, not its last minute.
  await page.locator('#flows tbody tr', { hasText: 'UDP' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#flows tbody tr').count(), 2);
  await page.waitForSelector('#chart .uplot', { timeout: WAIT_MS });
  assert.equal(await page.textContent('#status'), 'file');
  assert.match((await page.textContent('#totals')) ?? '', /2 flows/);

  // Totals, top talkers and health in sight at 1400x900, without scrolling.
  for (const selector of ['#totals', '#talkers tbody tr', '#health-panel h2', '#flows tbody tr']) {
    const box = await page.locator(selector).first().boundingBox();
    assert.ok(
      box && box.y >= 0 && box.y + box.height <= 900,
      `${selector} is visible: ${JSON.stringify(box)}`,
    );
  }

  // Drag across the middle of the chart: it zooms into that range, and Reset zoom undoes it.
  const over = await page.locator('#chart .u-over').boundingBox();
  assert.ok(over);
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.5, over.y + over.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.locator('#zoom-reset').waitFor({ state: 'visible', timeout: WAIT_MS });
  const zoomed = /zoomed: (\S+) to (\S+)/.exec((await page.textContent('#zoom-range')) ?? '');
  assert.ok(zoomed, 'the zoomed range is named');
  const [fromMs, toMs] = [Date.parse(zoomed[1]), Date.parse(zoomed[2])];
  assert.ok(fromMs > T0 * 1000 && toMs < (T0 + CAPTURE_SECONDS) * 1000 && toMs - fromMs < 120_000, zoomed[0]);
  await page.click('#zoom-reset');
  await page.locator('#zoom-reset').waitFor({ state: 'hidden', timeout: WAIT_MS });
  assert.equal(await page.textContent('#zoom-range'), '', 'reset shows the whole capture again');
  assert.deepEqual(problems, []);
  child.kill('SIGTERM');
  await exited;
});
