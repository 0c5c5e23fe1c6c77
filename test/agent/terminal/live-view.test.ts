import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { stripVTControlCharacters } from 'node:util';
import { createLogger } from '../../../src/agent/logger.ts';
import { renderLiveScreen } from '../../../src/agent/terminal/live-screen.ts';
import { LiveView } from '../../../src/agent/terminal/live-view.ts';
import { recordBatchOf } from '../../../src/codec/record-batch.ts';
import { InterfaceRegistry } from '../../../src/model/interfaces.ts';
import type { HealthSnapshot } from '../../../src/web/health.ts';
import { makeFlow } from '../../helpers/flows.ts';

/** A terminal that keeps what is written and plays keys. */
class FakeTerminal extends EventEmitter {
  text = '';
  columns = 120;
  rows = 30;
  raw: boolean | undefined;
  write(text: string): boolean {
    this.text += text;
    return true;
  }
  setRawMode(raw: boolean): void {
    this.raw = raw;
  }
  resume(): void {}
  pause(): void {}
  /** The last frame drawn, escapes removed. */
  lastFrame(): string {
    const frames = this.text.split('\x1b[H');
    return stripVTControlCharacters(frames[frames.length - 1]);
  }
}

const NOW_MS = Date.UTC(2026, 0, 1, 12, 0, 0);
const HEALTH: HealthSnapshot = {
  attachedInterfaces: ['veth0'],
  cachedFlows: 2,
  ringBufferLost: 3,
  packetsSeen: 30,
  bytesSeen: 3000,
  warnings: [],
};

function startView(t: { after: (fn: () => unknown) => void }) {
  const terminal = new FakeTerminal();
  const stderr = { text: '', write: (s: string) => (stderr.text += s) };
  let quits = 0;
  let nowMs = NOW_MS;
  const view = new LiveView({
    out: terminal,
    keys: terminal,
    colour: false,
    stderr,
    onQuit: () => quits++,
    nowMs: () => nowMs,
  });
  t.after(() => view.stop());
  const names = new InterfaceRegistry();
  names.set(3, 'veth0');
  const endNs = BigInt(NOW_MS + 10_000) * 1_000_000n;
  view.start(() => HEALTH);
  nowMs += 10_000;
  view.export(
    recordBatchOf(
      [
        makeFlow({ ifIndex: 3, dstPort: 443, bytes: 100_000, packets: 100, timeFlowEndNs: endNs }),
        makeFlow({
          ifIndex: 3,
          proto: 1,
          srcPort: 0,
          dstPort: 0,
          icmpType: 8,
          bytes: 980,
          packets: 10,
          timeFlowEndNs: endNs,
        }),
      ],
      names,
    ),
  );
  return { view, terminal, stderr, quits: () => quits };
}

test('the live view draws totals and the top flows and talkers by rate, with service names', (t) => {
  const { view, terminal } = startView(t);
  view.draw();
  const frame = terminal.lastFrame();
  assert.match(frame, /veth0 {2}rates over 10s, sorted by bytes\/s/);
  assert.match(frame, /9\.86 KiB\/s {2}11 pkt\/s {2}2 flows {2}3 drops/);
  const rows = frame.split('\n');
  const https = rows.findIndex((l) =>
    /out\s+TCP\s+https\s+10\.0\.0\.1:1234\s+10\.0\.0\.2:443\s+9\.77 KiB\/s\s+10\s+veth0/.test(l),
  );
  const ping = rows.findIndex((l) =>
    /out\s+ICMP\s+echo-request\s+10\.0\.0\.1\s+10\.0\.0\.2\s+98\/s\s+1\s+veth0/.test(l),
  );
  assert.ok(https > 0 && ping > https, frame);
  assert.match(frame, /TALKER\s+RATE\s+PKT\/S\s+INTERFACE\n10\.0\.0\.1\s+9\.86 KiB\/s\s+11\s+veth0/);
});

test('s sorts the tables by packets, p pauses the screen, q asks to quit', (t) => {
  const { view, terminal, quits } = startView(t);
  terminal.emit('data', 's');
  assert.match(terminal.lastFrame(), /sorted by packets\/s/);
  terminal.emit('data', 'p');
  assert.match(terminal.lastFrame(), /PAUSED/);
  const before = terminal.text;
  view.draw();
  assert.equal(terminal.text, before, 'a paused screen is not redrawn by the clock');
  terminal.emit('data', 'q');
  assert.equal(quits(), 1);
});

test('log lines go to the pane, never between rows, and to stderr once the view stops', async (t) => {
  const { view, terminal, stderr } = startView(t);
  const logger = createLogger('info', 'json', view.logStream);
  logger.warn({ interface: 'eth9' }, 'interface eth9 does not exist: waiting for it to appear');
  await new Promise((resolve) => setImmediate(resolve));
  view.draw();
  const frame = terminal.lastFrame().split('\n');
  const rule = frame.findIndex((l) => l.startsWith('─ log'));
  assert.ok(rule > 0, 'a log pane below the tables');
  assert.match(
    frame[rule + 1],
    /WARN {2}interface eth9 does not exist: waiting for it to appear interface=eth9/,
  );
  assert.equal(terminal.raw, true);
  await view.stop();
  assert.equal(terminal.raw, false, 'the keyboard is given back');
  assert.ok(terminal.text.endsWith('\x1b[?25h\x1b[?1049l'), 'the normal screen and the cursor are back');
  assert.match(stderr.text, /WARN {2}interface eth9 does not exist/);
  assert.match(stderr.text, /flowtap: 2 flows, 30 packets, 2\.93 KiB bytes seen\n$/);
});

test('without colours the frame has no escape codes, and no line is wider than the terminal', () => {
  const lines = renderLiveScreen({
    columns: 40,
    rows: 20,
    colour: false,
    paused: false,
    sort: 'bytes',
    windowSeconds: 10,
    totals: {
      packetsPerSecond: 1,
      bytesPerSecond: 100,
      flows: 1,
      drops: 0,
      attachedInterfaces: [],
      warnings: ['no interface attached yet'],
    },
    flows: [],
    talkers: [],
    logLines: [],
  });
  assert.ok(lines.every((l) => !l.includes('\x1b') && l.length <= 40));
  assert.ok(lines.includes('! no interface attached yet'));
});

test('a view stopped before it started prints the log lines it held and no summary', async () => {
  const terminal = new FakeTerminal();
  const stderr = { text: '', write: (s: string) => (stderr.text += s) };
  const view = new LiveView({ out: terminal, colour: false, stderr, onQuit: () => {} });
  createLogger('info', 'json', view.logStream).error('loading the datapath needs CAP_BPF');
  await new Promise((resolve) => setImmediate(resolve));
  await view.stop();
  assert.equal(terminal.text, '', 'the screen was never taken');
  assert.match(stderr.text, /ERROR loading the datapath needs CAP_BPF\n$/);
});
