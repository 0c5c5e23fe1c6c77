import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { classicPcap } from '../capture/pcap/capture-files.ts';
import { runCli } from '../helpers/cli.ts';
import { PACKET_VECTORS } from '../vectors/packets.ts';

const T0 = 1_700_000_000;

interface JsonFlow {
  Network: { SrcAddr: string };
  Bytes: number;
  Packets: number;
}

function jsonLines<T>(text: string): T[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

describe('flowtap query and export-parquet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-query-'));
  const store = join(dir, 'store');
  const env = { STORE_PATH: store };
  let readFlows: JsonFlow[] = [];
  after(() => rmSync(dir, { recursive: true, force: true }));

  before(async () => {
    // Every test vector, 30 rounds 3 s apart: several flows per key under a 5 s active timeout.
    const packets = [];
    for (let round = 0; round < 30; round++) {
      for (const v of PACKET_VECTORS)
        packets.push({ frame: Buffer.from(v.frame, 'hex'), seconds: T0 + round * 3, fraction: round });
    }
    const capture = join(dir, 'known.pcap');
    writeFileSync(capture, classicPcap(packets));
    const r = await runCli(['read', '--store', capture], { env });
    assert.equal(r.code, 0, r.stderr);
    readFlows = jsonLines<JsonFlow>(r.stdout);
    assert.ok(readFlows.length > 100);
  });

  test('flows of a capture stored by read --store total exactly what read printed', async () => {
    const r = await runCli(
      ['query', 'sql', 'SELECT count(*) AS flows, sum(packets) AS packets, sum(bytes) AS bytes FROM flows'],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(jsonLines(r.stdout), [
      {
        flows: readFlows.length,
        packets: readFlows.reduce((s, f) => s + f.Packets, 0),
        bytes: readFlows.reduce((s, f) => s + f.Bytes, 0),
      },
    ]);
  });

  test('top talkers gives each source’s bytes, packets and flows as read printed them', async () => {
    const expected = new Map<string, { bytes: number; packets: number; flows: number }>();
    for (const f of readFlows) {
      const e = expected.get(f.Network.SrcAddr) ?? { bytes: 0, packets: 0, flows: 0 };
      e.bytes += f.Bytes;
      e.packets += f.Packets;
      e.flows++;
      expected.set(f.Network.SrcAddr, e);
    }
    const r = await runCli(['query', 'top', 'talkers', '--limit', '100', '--output', 'json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const rows = jsonLines<{ address: string; bytes: number; packets: number; flows: number }>(r.stdout);
    assert.deepEqual(new Map(rows.map(({ address, ...totals }) => [address, totals])), expected);
    assert.deepEqual(
      rows.map((row) => row.bytes),
      rows.map((row) => row.bytes).sort((a, b) => b - a),
    );
  });

  test('flows --host lists only flows from or to that address, as CSV with a header', async () => {
    const host = readFlows[0].Network.SrcAddr;
    const r = await runCli(['query', 'flows', '--host', host, '--limit', '1000', '--output', 'csv'], { env });
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trim().split('\n');
    assert.equal(
      header,
      'time_start,time_end,interface,direction,protocol,src_addr,src_port,dst_addr,dst_port,bytes,packets',
    );
    assert.ok(rows.length > 0);
    for (const row of rows) {
      const cells = row.split(',');
      assert.ok(cells[5] === host || cells[7] === host, row);
    }
  });

  test('--since and --until select flows by the time of their last packet', async () => {
    const r = await runCli(
      [
        'query',
        'sql',
        "SELECT count(*) AS n FROM flows WHERE time_end >= TIMESTAMP_NS '2023-11-14 22:13:50'",
      ],
      { env },
    );
    const since = await runCli(['query', 'timeline', '--since', '2023-11-14T22:13:50', '--step', '1h'], {
      env,
    });
    assert.equal(since.code, 0, since.stderr);
    const [{ n }] = jsonLines<{ n: number }>(r.stdout);
    assert.deepEqual(
      jsonLines<{ flows: number }>(since.stdout).map((row) => row.flows),
      [n],
    );
    const none = await runCli(['query', 'top', 'ports', '--until', '2001-01-01'], { env });
    assert.equal(none.stdout, '');
  });

  test('export-parquet writes every stored flow to a Parquet file', async () => {
    const out = join(dir, 'flows.parquet');
    const r = await runCli(['export-parquet', out], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `flowtap export-parquet: ${readFlows.length} flows written to ${out}\n`);
    const back = await runCli(['query', 'sql', `SELECT count(*) AS n FROM read_parquet('${out}')`], { env });
    assert.deepEqual(jsonLines(back.stdout), [{ n: readFlows.length }]);
  });

  test('bad SQL prints DuckDB’s message and exits 1 without a stack trace', async () => {
    const r = await runCli(['query', 'sql', 'SELEKT nothing'], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^flowtap: query failed: (.*: )?Parser Error: syntax error at or near "SELEKT"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a damaged store file exits 1 with a message saying so', async () => {
    const file = join(dir, 'damaged.duckdb');
    writeFileSync(file, Buffer.alloc(32 * 1024, 1));
    const r = await runCli(['query', 'top', 'talkers', '--store-path', file]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^flowtap: cannot open the flow store .*damaged\.duckdb: it is damaged or not a flowtap store/,
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('an unknown question exits 2 listing the questions', async () => {
    const r = await runCli(['query', 'top', 'cats'], { env });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /top talkers, top ports, top conversations, flows, timeline/);
  });
});
