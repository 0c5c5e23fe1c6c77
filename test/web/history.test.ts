import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { DropReasonNames } from '../../src/model/drop-reasons.ts';
import type { FlowHealth } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { queriesOfFile } from '../../src/store/store-reader.ts';
import { chartStepSeconds, historySnapshot, parseHistoryWindow } from '../../src/web/history.ts';
import { NO_FILTER } from '../../src/web/snapshot.ts';
import { makeFlow } from '../helpers/flows.ts';

const T0_MS = 1_700_000_000_000;
const MS_NS = 1_000_000n;
const HOUR_MS = 3_600_000;

/** A flow on eth0 whose last packet is `offsetMs` after T0. */
function flowAt(offsetMs: number, spec: Parameters<typeof makeFlow>[0]) {
  const endNs = BigInt(T0_MS + offsetMs) * MS_NS;
  return makeFlow({ ifIndex: 1, timeFlowStartNs: endNs - 1_000n * MS_NS, timeFlowEndNs: endNs, ...spec });
}

/** `packets` dropped for `cause`, the latest `offsetMs` after T0. */
function drops(packets: number, cause: number, offsetMs: number): FlowHealth {
  return {
    dropPackets: packets,
    dropBytes: packets * 60,
    retransPackets: 0,
    retransBytes: 0,
    latestDrop: { timeNs: BigInt(T0_MS + offsetMs) * MS_NS, cause, tcpFlags: 0x10, tcpState: 1 },
  };
}

const REASONS = new DropReasonNames(
  new Map([
    [2, 'SKB_DROP_REASON_NOT_SPECIFIED'],
    [6, 'SKB_DROP_REASON_NETFILTER_DROP'],
  ]),
);

describe('web view history', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-history-'));
  const file = join(dir, 'flows.duckdb');
  const queries = queriesOfFile(file);
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    const names = new InterfaceRegistry();
    names.set(1, 'eth0');
    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf(
        [
          flowAt(10_000, {
            srcAddr: '10.0.3.7',
            dstAddr: '192.0.2.1',
            srcPort: 40_000,
            dstPort: 443,
            bytes: 9_000,
            packets: 6,
            health: { ...drops(4, 6, 10_000), handshakeRttNs: 3_000_000n },
          }),
          flowAt(20_000, {
            srcAddr: '10.0.3.7',
            dstAddr: '192.0.2.1',
            srcPort: 40_000,
            dstPort: 443,
            bytes: 1_000,
            packets: 1,
            health: { ...drops(1, 2, 20_000), retransPackets: 2, retransBytes: 2_896 },
          }),
          flowAt(30_000, {
            srcAddr: '2001:db8::5',
            dstAddr: 'fd00::1',
            etype: 0x86dd,
            proto: 17,
            srcPort: 53,
            dstPort: 5353,
            bytes: 500,
            packets: 50,
          }),
          // An hour later: outside the window asked for below.
          flowAt(HOUR_MS, { srcAddr: '10.9.9.9', dstAddr: '192.0.2.1', bytes: 1e9, packets: 1e6 }),
        ],
        names,
      ),
    );
    await store.close();
  });

  const window = { fromMs: T0_MS, toMs: T0_MS + 60_000 };

  test('a window holds the top flows and talkers of the stored flows that ended in it, summed', async () => {
    const s = await historySnapshot(queries, window, NO_FILTER, 10, undefined);
    assert.equal(s.timeline, 'history');
    assert.deepEqual(
      s.flows.map((f) => [
        f.interface,
        f.proto,
        f.src,
        f.srcPort,
        f.dst,
        f.dstPort,
        f.bytes,
        f.packets,
        f.records,
      ]),
      [
        ['eth0', 'TCP', '10.0.3.7', 40_000, '192.0.2.1', 443, 10_000, 7, 2],
        ['eth0', 'UDP', '2001:db8::5', 53, 'fd00::1', 5353, 500, 50, 1],
      ],
    );
    assert.deepEqual(
      s.talkers.map((t) => [t.interface, t.address, t.bytes, t.records]),
      [
        ['eth0', '10.0.3.7', 10_000, 2],
        ['eth0', '2001:db8::5', 500, 1],
      ],
    );
    assert.equal(s.matchingFlows, 2);
    assert.deepEqual(s.interfaces, ['eth0']);
  });

  test('a window shows the stored TCP health as the live view does: RTT, retransmissions, drops and who is dropping', async () => {
    const s = await historySnapshot(queries, window, NO_FILTER, 10, undefined, () => REASONS);
    const tcp = s.flows.find((f) => f.proto === 'TCP');
    assert.ok(tcp);
    assert.equal(tcp.rttNs, 3_000_000);
    assert.equal(tcp.rttKind, 'handshake');
    assert.equal(tcp.retrans, 2);
    assert.equal(tcp.drops, 5);
    assert.equal(tcp.dropBytes, 300);
    assert.equal(tcp.dropReason, 'NOT_SPECIFIED', 'the reason of the latest drop');
    const udp = s.flows.find((f) => f.proto === 'UDP');
    assert.equal(udp?.rttNs, undefined);
    assert.equal(udp?.drops, 0);
    assert.deepEqual(
      s.dropping.flows.map((f) => [f.src, f.drops, f.dropReason]),
      [['10.0.3.7', 5, 'NOT_SPECIFIED']],
    );
    assert.deepEqual(
      s.dropping.hosts.map((h) => [h.interface, h.address, h.drops, h.dropReason]),
      [['eth0', '10.0.3.7', 5, 'NOT_SPECIFIED']],
    );
  });

  test('the chart of a window sums each step’s bytes per second and interface direction', async () => {
    const s = await historySnapshot(queries, window, NO_FILTER, 10, undefined);
    assert.equal(s.chartStepSeconds, 1);
    assert.equal(s.chart.length, 1);
    const series = s.chart[0];
    assert.equal(series.bytesPerSecond.length, 60);
    assert.equal(series.bytesPerSecond[10], 9_000);
    assert.equal(series.bytesPerSecond[20], 1_000);
    assert.equal(
      series.bytesPerSecond.reduce((a, b) => a + b, 0),
      10_500,
    );
  });

  test('the page’s filters narrow a window as they narrow the live view', async () => {
    const udp = await historySnapshot(queries, window, { ...NO_FILTER, proto: 17 }, 10, undefined);
    assert.deepEqual(
      udp.flows.map((f) => f.src),
      ['2001:db8::5'],
    );
    const text = await historySnapshot(queries, window, { ...NO_FILTER, text: '443' }, 10, undefined);
    assert.deepEqual(
      text.flows.map((f) => f.dstPort),
      [443],
    );
    const none = await historySnapshot(
      queries,
      window,
      { ...NO_FILTER, interfaceName: 'eth9' },
      10,
      undefined,
    );
    assert.deepEqual(none.flows, []);
    assert.equal(none.matchingFlows, 0);
  });

  test('a window is read from from= and to= and refused when empty or unreadable', () => {
    assert.deepEqual(parseHistoryWindow(new URLSearchParams('from=1000&to=2000')), {
      fromMs: 1000,
      toMs: 2000,
    });
    assert.deepEqual(
      parseHistoryWindow(new URLSearchParams('from=2023-11-14T22:13:20Z&to=2023-11-14T23:13:20Z')),
      {
        fromMs: T0_MS,
        toMs: T0_MS + HOUR_MS,
      },
    );
    assert.match(String(parseHistoryWindow(new URLSearchParams('from=2000&to=1000'))), /empty/);
    assert.match(String(parseHistoryWindow(new URLSearchParams('from=yesterday'))), /from= and to=/);
  });

  test('a day’s chart has coarser steps so it stays a few hundred points', () => {
    assert.equal(chartStepSeconds(60_000), 1);
    assert.equal(chartStepSeconds(24 * HOUR_MS), 144);
  });
});
