/**
 * One rule merges two records of a flow, wherever they meet: folded directly, by the accounter's
 * flow table, by the map drain folding per-CPU values, and by a drain followed by the accounter.
 * Fed the same records in every order, every stage gives one answer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Accounter } from '../../src/account/accounter.ts';
import { mergeFlowMetrics } from '../../src/codec/merge-rule.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { rowWords } from '../../src/codec/row-words.ts';
import { TunnelType, V2, V2_KEY_WORDS, V2_METRICS_WORDS, V2_ROW_WORDS } from '../../src/codec/v2-layout.ts';
import { mergePerCpuMetrics } from '../../src/ebpf/flow-map.ts';
import type { CrossedInterface, Flow } from '../../src/model/flow.ts';
import { makeFlow } from '../helpers/flows.ts';

type Metrics = [
  bytes: number,
  packets: number,
  firstNs: bigint,
  lastNs: bigint,
  tcpFlags: number,
  dscp: number,
  tunnelId: number,
  /** The interface that counts (first entry of the crossed list). */
  firstCrossed: string,
  /** Every interface crossed, sorted: the order after the first entry depends on merge order. */
  crossed: string,
];

const tunnel = (id: number) => ({
  type: TunnelType.VXLAN,
  id,
  srcAddr: Buffer.alloc(16, id),
  dstAddr: Buffer.alloc(16, id + 1),
});

const T = 1_700_000_000_000_000_000n;
/** Records of one flow: distinct last-seen times, first-seen times out of step with them, a u64 carry. */
const RECORDS = [
  makeFlow({
    bytes: 2 ** 32 - 1,
    packets: 1,
    timeFlowStartNs: T + 50n,
    timeFlowEndNs: T + 300n,
    tcpFlags: 2,
    dscp: 10,
    tunnel: tunnel(7),
    crossed: [
      { ifIndex: 3, direction: 0 },
      { ifIndex: 4, direction: 1 },
    ],
  }),
  makeFlow({
    bytes: 7,
    packets: 2,
    timeFlowStartNs: T + 10n,
    timeFlowEndNs: T + 20n,
    tcpFlags: 16,
    dscp: 46,
    crossed: [
      { ifIndex: 4, direction: 1 },
      { ifIndex: 5, direction: 1 },
    ],
  }),
  makeFlow({ bytes: 2 ** 40, packets: 3, timeFlowStartNs: T + 400n, timeFlowEndNs: T + 2n ** 33n, dscp: 18 }),
  makeFlow({
    bytes: 1,
    packets: 4,
    timeFlowStartNs: T + 5n,
    timeFlowEndNs: T + 2n ** 32n,
    tcpFlags: 1,
    dscp: 26,
    tunnel: tunnel(7),
    crossed: [{ ifIndex: 9, direction: 0 }],
  }),
  makeFlow({
    bytes: 100,
    packets: 5,
    timeFlowStartNs: T + 90n,
    timeFlowEndNs: T + 90n,
    tcpFlags: 0x100,
    dscp: 34,
  }),
];

const crossedText = (c: CrossedInterface) => `${c.ifIndex}/${c.direction}`;

function metricsOf(flow: Flow): Metrics {
  const crossed = (flow.crossed ?? []).map(crossedText);
  return [
    flow.bytes,
    flow.packets,
    flow.timeFlowStartNs,
    flow.timeFlowEndNs,
    flow.tcpFlags,
    flow.dscp,
    flow.tunnel?.id ?? 0,
    crossed[0] ?? '',
    [...crossed].sort().join(' '),
  ];
}

/** The rule written out plainly, from its definition. */
function expected(records: readonly Flow[]): Metrics {
  const latest = records.reduce((a, b) => (b.timeFlowEndNs >= a.timeFlowEndNs ? b : a));
  const byFirstSeen = [...records].sort((a, b) => (a.timeFlowStartNs < b.timeFlowStartNs ? -1 : 1));
  const withTunnel = records.find((r) => r.tunnel !== undefined);
  const crossed = new Set(records.flatMap((r) => (r.crossed ?? []).map(crossedText)));
  const firstCrossed = byFirstSeen.find((r) => r.crossed !== undefined)?.crossed?.[0];
  return [
    records.reduce((s, r) => s + r.bytes, 0),
    records.reduce((s, r) => s + r.packets, 0),
    [...records].sort((a, b) => (a.timeFlowStartNs < b.timeFlowStartNs ? -1 : 1))[0].timeFlowStartNs,
    latest.timeFlowEndNs,
    records.reduce((f, r) => f | r.tcpFlags, 0),
    latest.dscp,
    withTunnel?.tunnel?.id ?? 0,
    firstCrossed === undefined ? '' : crossedText(firstCrossed),
    [...crossed].sort().join(' '),
  ];
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/** Folds the records one by one into the first with the rule itself. */
function foldDirectly(records: readonly Flow[]): Metrics {
  const batch = recordBatchOf(records);
  const words = rowWords(batch); // a view of the batch's own (aligned) bytes
  for (let i = 1; i < records.length; i++) {
    mergeFlowMetrics(words, V2_KEY_WORDS, words, i * V2_ROW_WORDS + V2_KEY_WORDS);
  }
  return metricsOf(batch.flow(0));
}

/** Lays the records out as one flow's per-CPU map values (an idle CPU between them) and drains them into one row. */
function drainPerCpu(records: readonly Flow[]): Flow {
  const rows = rowWords(recordBatchOf(records));
  const cpus = records.length + 1;
  const values = new Int32Array(cpus * V2_METRICS_WORDS);
  records.forEach((_, i) => {
    const cpu = i < 1 ? i : i + 1; // CPU 1 saw no packet of this flow
    const from = i * V2_ROW_WORDS + V2_KEY_WORDS;
    values.set(rows.subarray(from, from + V2_METRICS_WORDS), cpu * V2_METRICS_WORDS);
  });
  const drained = recordBatchOf([records[0]]);
  const row = rowWords(drained);
  mergePerCpuMetrics(values, 0, cpus, row, V2_KEY_WORDS);
  return drained.flow(0);
}

async function account(batches: RecordBatch[]): Promise<Flow[]> {
  const accounter = new Accounter({ maxEntries: 10, evictBufferLen: 4, evictTimeoutMs: 60_000 });
  async function* input() {
    yield* batches;
  }
  const out: Flow[] = [];
  for await (const batch of accounter.account(input())) out.push(...batch.flows());
  return out;
}

describe('the merge rule', () => {
  const want = expected(RECORDS);

  test('folding the records directly gives one answer in every order', () => {
    for (const order of permutations(RECORDS)) assert.deepEqual(foldDirectly(order), want);
  });

  test('the accounter gives the same answer in every order, in one batch or one batch per record', async () => {
    for (const order of permutations(RECORDS)) {
      const together = await account([recordBatchOf(order)]);
      const apart = await account(order.map((r) => recordBatchOf([r])));
      assert.deepEqual([together.length, apart.length], [1, 1]);
      assert.deepEqual(metricsOf(together[0]), want);
      assert.deepEqual(metricsOf(apart[0]), want);
    }
  });

  test('the map drain folding per-CPU values gives the same answer in every order', () => {
    for (const order of permutations(RECORDS)) assert.deepEqual(metricsOf(drainPerCpu(order)), want);
  });

  test('two drains then the accounter give the same answer in every order', async () => {
    for (const order of permutations(RECORDS)) {
      const drained = [drainPerCpu(order.slice(0, 2)), drainPerCpu(order.slice(2))];
      const [flow] = await account([recordBatchOf(drained)]);
      assert.deepEqual(metricsOf(flow), want);
    }
  });

  test('a record without a tunnel never clears one, and of two tunnels the later-seen record wins', () => {
    const a = makeFlow({ timeFlowStartNs: T, timeFlowEndNs: T + 5n, tunnel: tunnel(1) });
    const b = makeFlow({ timeFlowStartNs: T, timeFlowEndNs: T + 9n, tunnel: tunnel(2) });
    const none = makeFlow({ timeFlowStartNs: T, timeFlowEndNs: T + 20n });
    assert.equal(foldDirectly([a, none])[6], 1);
    assert.equal(foldDirectly([none, a])[6], 1);
    assert.equal(foldDirectly([a, b])[6], 2);
    assert.equal(foldDirectly([b, a])[6], 2);
  });

  test('a record listing the one interface its flow lists leaves a list the union would write unchanged', () => {
    const one = [{ ifIndex: 3, direction: 0 }];
    const stored = makeFlow({ timeFlowStartNs: T + 5n, timeFlowEndNs: T + 5n, crossed: one });
    const cases: Array<[string, Flow, string[]]> = [
      ['later', makeFlow({ timeFlowStartNs: T + 9n, timeFlowEndNs: T + 9n, crossed: one }), ['3/0']],
      ['older', makeFlow({ timeFlowStartNs: T + 1n, timeFlowEndNs: T + 1n, crossed: one }), ['3/0']],
      [
        'other direction',
        makeFlow({ timeFlowStartNs: T + 9n, timeFlowEndNs: T + 9n, crossed: [{ ifIndex: 3, direction: 1 }] }),
        ['3/0', '3/1'],
      ],
      [
        'older, other interface',
        makeFlow({ timeFlowStartNs: T + 1n, timeFlowEndNs: T + 1n, crossed: [{ ifIndex: 4, direction: 0 }] }),
        ['4/0', '3/0'],
      ],
    ];
    for (const [name, record, want] of cases) {
      const batch = recordBatchOf([stored, record]);
      const words = rowWords(batch);
      mergeFlowMetrics(words, V2_KEY_WORDS, words, V2_ROW_WORDS + V2_KEY_WORDS);
      assert.deepEqual(batch.flow(0).crossed?.map(crossedText), want, name);
    }
  });

  test('a stored list with stray entries past its count is written anew by a record of its one interface', () => {
    const one = [{ ifIndex: 3, direction: 0 }];
    const batch = recordBatchOf([
      makeFlow({ timeFlowEndNs: T + 5n, crossed: one }),
      makeFlow({ timeFlowEndNs: T + 9n, crossed: one }),
    ]);
    batch.bytes.writeUInt32LE(77, V2.CROSSED_IF_INDEX + 4); // past the count of 1: a damaged row
    const words = rowWords(batch);
    mergeFlowMetrics(words, V2_KEY_WORDS, words, V2_ROW_WORDS + V2_KEY_WORDS);
    assert.equal(batch.bytes.readUInt32LE(V2.CROSSED_IF_INDEX + 4), 0);
    assert.deepEqual(batch.flow(0).crossed?.map(crossedText), ['3/0']);
  });

  test('records last seen at the same nanosecond keep the DSCP of the later arrival in every stage', async () => {
    const early = makeFlow({ timeFlowStartNs: T, timeFlowEndNs: T + 5n, dscp: 10 });
    const late = makeFlow({ timeFlowStartNs: T + 1n, timeFlowEndNs: T + 5n, dscp: 46 });
    assert.equal(foldDirectly([early, late])[5], 46);
    assert.equal(foldDirectly([late, early])[5], 10);
    assert.equal((await account([recordBatchOf([early, late])]))[0].dscp, 46);
    assert.equal((await account([recordBatchOf([late, early])]))[0].dscp, 10);
    assert.equal(drainPerCpu([early, late]).dscp, 46);
    assert.equal(drainPerCpu([late, early]).dscp, 10);
  });
});
