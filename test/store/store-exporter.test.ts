import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { StoreExporter } from '../../src/store/store-exporter.ts';
import { openStoreReader } from '../../src/store/store-reader.ts';
import { makeFlow } from '../helpers/flows.ts';

const SILENT = { info() {}, warn() {}, error() {} };
const DAY_NS = 86_400_000_000_000n;
const T0_NS = 1_700_000_000_000_000_000n;
const T0_MS = Number(T0_NS / 1_000_000n);

async function partitionsOf(file: string): Promise<string[]> {
  const reader = await openStoreReader(file);
  try {
    const r = await reader.connection.runAndReadAll(
      "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'flows\\_2%' ESCAPE '\\' ORDER BY 1",
    );
    return r.getRows().map((row) => String(row[0]));
  } finally {
    reader.close();
  }
}

async function storeDays(file: string, retentionMs: number, nowMs: number): Promise<StoreExporter> {
  const exporter = await StoreExporter.create({
    settings: { file, retentionMs, maxBytes: 0 },
    logger: SILENT,
    nowMs: () => nowMs,
    upkeepIntervalMs: 0,
  });
  exporter.export(recordBatchOf([0n, 1n, 2n].map((d) => makeFlow({ timeFlowEndNs: T0_NS + d * DAY_NS }))));
  return exporter;
}

test('the exporter’s upkeep drops the days past STORE_RETENTION and keeps the rest', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store-exporter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'flows.duckdb');
  // Now is in the middle of the third day; one day of retention keeps the second and third.
  const exporter = await storeDays(file, 86_400_000, T0_MS + 2 * 86_400_000);
  await exporter.whenReady();
  await exporter.upkeep();
  await exporter.stop();
  assert.equal(exporter.stats.flowsSent, 3);
  assert.deepEqual(await partitionsOf(file), ['flows_20231115', 'flows_20231116']);
});

test('STORE_RETENTION=0 keeps every day', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store-exporter-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'flows.duckdb');
  const exporter = await storeDays(file, 0, T0_MS + 400 * 86_400_000);
  await exporter.upkeep();
  await exporter.stop();
  assert.deepEqual(await partitionsOf(file), ['flows_20231114', 'flows_20231115', 'flows_20231116']);
});
