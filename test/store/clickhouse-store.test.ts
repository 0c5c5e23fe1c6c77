/**
 * The ClickHouse store against Debian's clickhouse-server (18.16) started for this file: RowBinary
 * rows read back as the flows they came from, days as partitions, and every named question
 * answering exactly what the DuckDB store answers for the same flows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import type { Flow, FlowDns, FlowHealth } from '../../src/model/flow.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { formatIp, parseIp } from '../../src/model/ip.ts';
import { writeClickHouseResult } from '../../src/store/clickhouse-query.ts';
import { RowBinaryWriter } from '../../src/store/clickhouse-rows.ts';
import { ClickHouseStore, dialectOf, parseClickHouseUrl } from '../../src/store/clickhouse-store.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { QUESTIONS, type QuestionOptions, questionSql, TIMELINE_KEYS } from '../../src/store/questions.ts';
import { writeQueryResult } from '../../src/store/run-query.ts';
import { FIRST_SCHEMA4_COLUMN, STORE_COLUMNS } from '../../src/store/schema.ts';
import { openStoreReader } from '../../src/store/store-reader.ts';
import { type ClickHouseServer, clickhouseAvailable, startClickHouse } from '../helpers/clickhouse.ts';
import { makeFlow, seededRandom } from '../helpers/flows.ts';

/** Addresses whose text each engine builds differently unless the dialect is right. */
const ADDRESSES = [
  '10.0.0.1',
  '10.0.0.2',
  '192.168.1.200',
  '0.0.0.0',
  '::1',
  '::',
  '::a00:1',
  '::1:2',
  '::ffff:10.1.2.3',
  'fd00::1',
  '2001:db8::1:0:0:1',
  '2001:db8:0:0:1::1',
  'fe80::1234:5678:9abc:def0',
  '1:2:3:4:5:6:7:8',
];
const T0_NS = 1_764_669_600_000_000_000n; // 2025-12-02T10:00:00Z

function names(): InterfaceRegistry {
  const registry = new InterfaceRegistry();
  registry.set(1, 'eth0');
  registry.set(2, 'veth-ü');
  return registry;
}

/** Seeded varied flows over two days, both families, with fractions of seconds and names. */
function variedFlows(seed: number, count: number): Flow[] {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  return Array.from({ length: count }, (_, i) => {
    const src = pick(ADDRESSES);
    const dst = pick(ADDRESSES);
    const etype = src.includes(':') || dst.includes(':') ? 0x86dd : 0x0800;
    const start =
      T0_NS +
      BigInt(Math.floor(random() * 2 * 86_400_000)) * 1_000_000n +
      BigInt(Math.floor(random() * 3) * 250_000);
    return makeFlow({
      etype,
      direction: Math.floor(random() * 2),
      srcAddr: etype === 0x86dd && !src.includes(':') ? `::ffff:${src}` : src,
      dstAddr: etype === 0x86dd && !dst.includes(':') ? `::ffff:${dst}` : dst,
      srcPort: pick([80, 443, 53, 40_000]),
      dstPort: pick([80, 443, 53, 8080]),
      proto: pick([6, 17, 1, 58, 200]),
      ifIndex: Math.floor(random() * 3),
      bytes: 1 + Math.floor(random() * 1e6),
      packets: 1 + Math.floor(random() * 1000),
      timeFlowStartNs: start,
      timeFlowEndNs: start + BigInt(Math.floor(random() * 5_000_000_000)),
      tcpFlags: Math.floor(random() * 512),
      dscp: Math.floor(random() * 64),
      srcMac: '02:00:00:00:00:01',
      dstMac: 'aa:bb:cc:dd:ee:ff',
      ...(random() < 0.5 && { health: randomHealth(random) }),
      ...(i % 3 === 0 && { dns: variedDns(i, start) }),
    });
  });
}

/** DNS of every third flow: responses with latencies and names, queries without (by `i`). */
function variedDns(i: number, atNs: bigint): FlowDns {
  const response = i % 2 === 0;
  return {
    queries: response ? 0 : 1,
    answers: response ? 1 : 0,
    unanswered: i % 9 === 3 ? 1 : 0,
    malformed: 0,
    latestNs: atNs,
    header: { id: i & 0xffff, flags: response ? 0x8180 | (i % 4) : 0x0100 },
    name: `n${i}.ex\u00e4mple`,
    ...(response && { latencyNs: BigInt(1_000 * (i + 1)) }),
  };
}

/** TCP health with some parts measured, small values so groups tie and the order's tie-breaks matter. */
function randomHealth(random: () => number): FlowHealth {
  const count = () => (random() < 0.5 ? 0 : 1 + Math.floor(random() * 4));
  const dropPackets = count();
  const rttNs = () => BigInt(1_000 * (1 + Math.floor(random() * 50)));
  const rtt =
    random() < 0.5 ? [rttNs(), rttNs(), rttNs()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : undefined;
  return {
    ...(rtt && { rtt: { minNs: rtt[0], lastNs: rtt[1], maxNs: rtt[2], samples: 3 } }),
    ...(random() < 0.3 && { handshakeRttNs: rttNs() }),
    dropBytes: dropPackets * 60,
    dropPackets,
    retransBytes: 0,
    retransPackets: count(),
    ...(dropPackets > 0 && {
      latestDrop: { timeNs: 1n, cause: 2 + Math.floor(random() * 8), tcpFlags: 0x10, tcpState: 1 },
    }),
  };
}

/** The flows of `batch` in the order `ORDER BY time_start, time_end, bytes` reads them back. */
function sortedFlows(batch: RecordBatch): Flow[] {
  return [...batch.flows()].sort((a, b) =>
    a.timeFlowStartNs !== b.timeFlowStartNs
      ? Number(a.timeFlowStartNs - b.timeFlowStartNs)
      : a.timeFlowEndNs !== b.timeFlowEndNs
        ? Number(a.timeFlowEndNs - b.timeFlowEndNs)
        : a.bytes - b.bytes,
  );
}

class TextSink extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('ClickHouse store', { skip: !clickhouseAvailable() && 'clickhouse-server is not installed' }, () => {
  let server: ClickHouseServer;
  let store: ClickHouseStore;
  let batch: RecordBatch;
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-ch-duckdb-'));
  const duckFile = join(dir, 'flows.duckdb');
  /** Run after the suite, last registered first (hooks registered inside `before` would run at once). */
  const cleanups: (() => unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  before(async () => {
    server = await startClickHouse({ after: (fn) => cleanups.push(fn) });
    store = new ClickHouseStore(parseClickHouseUrl('--store', server.storeUrl('flowtap_test')));
    cleanups.push(() => store.close());
    await store.ensureSchema();
    batch = recordBatchOf(variedFlows(7, 3_000), names());
    const writer = new RowBinaryWriter(1024);
    writer.append(batch, 0, 1_000);
    writer.append(batch, 1_000, batch.count);
    await store.insertRowBinary(writer.take());
    const duck = await FlowStore.open(duckFile);
    await duck.append(batch);
    await duck.close();
  });

  test('rows inserted as RowBinary read back as the flows they came from', async () => {
    const result = await store.query(
      `SELECT time_start, time_end, etype, direction, proto, src_port, dst_port, if_index, interface, bytes,
        packets, tcp_flags, dscp, src_mac, dst_mac, src_ip_hi, src_ip_lo FROM flowtap_test.flows
        ORDER BY time_start, time_end, bytes`,
    );
    const flows = sortedFlows(batch);
    assert.equal(result.rows.length, flows.length);
    for (let i = 0; i < flows.length; i++) {
      const f = flows[i];
      const row = result.rows[i].map(String);
      const hi = Buffer.from(f.srcAddr).readBigUInt64BE(0);
      const lo = Buffer.from(f.srcAddr).readBigUInt64BE(8);
      assert.deepEqual(row, [
        String(f.timeFlowStartNs),
        String(f.timeFlowEndNs),
        String(f.etype),
        String(f.direction),
        String(f.proto),
        String(f.srcPort),
        String(f.dstPort),
        String(f.ifIndex),
        f.interface,
        String(f.bytes),
        String(f.packets),
        String(f.tcpFlags),
        String(f.dscp),
        String(0x020000000001),
        String(0xaabbccddeeff),
        String(hi),
        String(lo),
      ]);
    }
  });

  test('health columns read back as the flows measured them, 0 where nothing was', async () => {
    const result = await store.query(
      `SELECT rtt_last_ns, rtt_min_ns, rtt_max_ns, handshake_rtt_ns, drop_bytes, drop_packets, drop_latest_cause,
        drop_latest_flags, drop_latest_state, retrans_bytes, retrans_packets FROM flowtap_test.flows
        ORDER BY time_start, time_end, bytes`,
    );
    const flows = sortedFlows(batch);
    assert.ok(flows.filter((f) => f.health).length > 1_000);
    for (let i = 0; i < flows.length; i++) {
      const h = flows[i].health;
      const drop = h?.dropPackets ? h.latestDrop : undefined;
      assert.deepEqual(
        result.rows[i].map(String),
        [
          h?.rtt?.lastNs ?? 0,
          h?.rtt?.minNs ?? 0,
          h?.rtt?.maxNs ?? 0,
          h?.handshakeRttNs ?? 0,
          h?.dropBytes ?? 0,
          h?.dropPackets ?? 0,
          drop?.cause ?? 0,
          drop?.tcpFlags ?? 0,
          drop?.tcpState ?? 0,
          h?.retransBytes ?? 0,
          h?.retransPackets ?? 0,
        ].map(String),
        `row ${i}`,
      );
    }
  });

  test('DNS columns read back as the flows carried them, 0 and empty where they had none', async () => {
    const result = await store.query(
      `SELECT dns_id, dns_flags, dns_latency_ns, dns_name, dns_errno, dns_queries, dns_answers,
        dns_unanswered, dns_malformed, dns_record_flags FROM flowtap_test.flows
        ORDER BY time_start, time_end, bytes`,
    );
    const flows = sortedFlows(batch);
    assert.ok(flows.filter((f) => f.dns).length > 500);
    for (let i = 0; i < flows.length; i++) {
      const d = flows[i].dns;
      assert.deepEqual(
        result.rows[i].map(String),
        [
          d?.header?.id ?? 0,
          d?.header?.flags ?? 0,
          d?.latencyNs ?? 0,
          d?.name ?? '',
          d?.errno ?? 0,
          d?.queries ?? 0,
          d?.answers ?? 0,
          d?.unanswered ?? 0,
          d?.malformed ?? 0,
          d ? 1 | 2 | (d.latencyNs === undefined ? 0 : 8) : 0,
        ].map(String),
        `row ${i}`,
      );
    }
  });

  test('a flows table of an older flowtap gains the missing columns, its rows reading 0', async () => {
    const old = new ClickHouseStore(parseClickHouseUrl('--store', server.storeUrl('flowtap_old')));
    cleanups.push(() => old.close());
    const v3 = STORE_COLUMNS.slice(
      0,
      STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA4_COLUMN),
    );
    await server.query('CREATE DATABASE flowtap_old');
    await server.query(
      `CREATE TABLE flowtap_old.flows (${v3.map((c) => `${c.name} ${c.clickhouse}`).join(', ')})
        ENGINE = MergeTree() ORDER BY time_end`,
    );
    await server.query('INSERT INTO flowtap_old.flows (time_end, bytes) VALUES (1, 7)');
    await old.ensureSchema();
    await old.ensureSchema();
    const writer = new RowBinaryWriter();
    writer.append(
      recordBatchOf([
        makeFlow({ timeFlowEndNs: 2n, health: { ...randomHealth(seededRandom(1)), retransPackets: 5 } }),
      ]),
    );
    await old.insertRowBinary(writer.take());
    const result = await old.query('SELECT bytes, retrans_packets FROM flowtap_old.flows ORDER BY time_end');
    assert.deepEqual(
      result.rows.map((r) => r.map(String)),
      [
        ['7', '0'],
        ['100', '5'],
      ],
    );
  });

  test('flows are partitioned by the UTC day of their last packet', async () => {
    const text = await server.query(
      "SELECT DISTINCT partition FROM system.parts WHERE database = 'flowtap_test' AND active ORDER BY partition",
    );
    const days = [
      ...new Set(
        [...batch.flows()].map((f) =>
          new Date(Number(f.timeFlowEndNs / 1_000_000n)).toISOString().slice(0, 10).replaceAll('-', ''),
        ),
      ),
    ].sort();
    assert.deepEqual(text.trim().split('\n'), days);
  });

  test('every address prints as formatIp prints it for its flow', async () => {
    const result = await store.query(
      `SELECT DISTINCT ${dialectOf(store.target).ipText('src_ip_hi', 'src_ip_lo', 'etype')} AS text, src_ip_hi, src_ip_lo, etype FROM flowtap_test.flows`,
    );
    for (const [text, hi, lo, etype] of result.rows as [string, string, string, number][]) {
      const bytes = Buffer.alloc(16);
      bytes.writeBigUInt64BE(BigInt(hi), 0);
      bytes.writeBigUInt64BE(BigInt(lo), 8);
      assert.equal(text, formatIp(bytes, 0, Number(etype)));
    }
  });

  const windowStartMs = Number(T0_NS / 1_000_000n) + 3_600_000;
  const cases: [string, QuestionOptions][] = [
    ['no filter', { limit: 10, by: 'total', stepMs: 3_600_000 }],
    [
      'a window',
      { limit: 5, by: 'total', stepMs: 600_000, sinceMs: windowStartMs, untilMs: windowStartMs + 86_400_000 },
    ],
    ['an IPv4 host', { limit: 50, by: 'total', stepMs: 3_600_000, host: parseIp('10.0.0.1') }],
    [
      'an IPv6 host and a port',
      { limit: 50, by: 'total', stepMs: 3_600_000, host: parseIp('fd00::1'), port: 443 },
    ],
  ];
  for (const question of QUESTIONS) {
    for (const [what, options] of cases) {
      const byKeys = question === 'timeline' ? TIMELINE_KEYS : (['total'] as const);
      for (const by of byKeys) {
        test(`${question}${question === 'timeline' ? ` by ${by}` : ''} with ${what} answers as the DuckDB store does`, async () => {
          const o = { ...options, by };
          const duckOut = new TextSink();
          const reader = await openStoreReader(duckFile);
          try {
            await writeQueryResult(reader, duckFile, questionSql(question, o), duckOut, 'json');
          } finally {
            reader.close();
          }
          const chOut = new TextSink();
          await writeClickHouseResult(
            store,
            questionSql(question, o, dialectOf(store.target)),
            chOut,
            'json',
          );
          assert.ok(duckOut.text.length > 0);
          assert.equal(chOut.text, duckOut.text);
        });
      }
    }
  }
});
