import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { StoreError } from '../../src/errors.ts';
import { StoreExporter } from '../../src/store/store-exporter.ts';
import { openStoreReader } from '../../src/store/store-reader.ts';
import { makeFlow } from '../helpers/flows.ts';
import { startStoreWriter } from './store-process.ts';

async function countFlows(file: string): Promise<{ flows: number; snapshot: boolean }> {
  const reader = await openStoreReader(file);
  try {
    const result = await reader.connection.runAndReadAll('SELECT count(*) FROM flows');
    return { flows: Number(result.getRows()[0][0]), snapshot: reader.snapshot };
  } finally {
    reader.close();
  }
}

const SILENT = { info() {}, warn() {}, error() {} };

describe('store reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store-reader-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a query answers while another process holds the store and writes to it', async (t) => {
    const file = join(dir, 'live', 'flows.duckdb');
    const writer = startStoreWriter(t, file, 400, 1000);
    await writer.until(5_000);
    const first = await countFlows(file);
    assert.equal(first.snapshot, true);
    assert.ok(first.flows >= 5_000, `first read saw ${first.flows}`);
    const seen = writer.committed();
    const second = await countFlows(file);
    assert.ok(second.flows >= seen, `second read saw ${second.flows}, ${seen} were committed before it`);
    assert.equal(second.flows % 1000, 0, 'a snapshot holds whole batches');
  });

  test('a writer killed with SIGKILL leaves a store that opens and holds every committed flow', async (t) => {
    const file = join(dir, 'killed', 'flows.duckdb');
    const writer = startStoreWriter(t, file, 1_000, 500);
    await writer.until(20_000);
    writer.child.kill('SIGKILL');
    await once(writer.child, 'exit');
    const committed = writer.committed();
    const { flows, snapshot } = await countFlows(file);
    assert.equal(snapshot, false);
    assert.ok(flows >= committed, `${flows} stored, ${committed} committed before the kill`);
    assert.equal(flows % 500, 0, 'no half batch');
  });

  test('a copied store file is read directly, without a snapshot', async (t) => {
    const file = join(dir, 'orig', 'flows.duckdb');
    const writer = startStoreWriter(t, file, 3, 100);
    await writer.until('done');
    writer.child.kill('SIGKILL');
    await once(writer.child, 'exit');
    const copy = join(dir, 'copy.duckdb');
    copyFileSync(file, copy);
    copyFileSync(`${file}.wal`, `${copy}.wal`);
    assert.deepEqual(await countFlows(copy), { flows: 300, snapshot: false });
  });

  test('a damaged store file is refused with a StoreError saying it is damaged', async () => {
    const file = join(dir, 'damaged.duckdb');
    writeFileSync(file, Buffer.alloc(64 * 1024, 0x5a));
    await assert.rejects(openStoreReader(file), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, 'FLOWTAP_STORE');
      assert.match(err.message, /damaged or not a flowtap store/);
      return true;
    });
  });

  test('a store locked by another process: the exporter logs once, counts batches as failed and keeps going', async (t) => {
    const file = join(dir, 'locked', 'flows.duckdb');
    const writer = startStoreWriter(t, file, 1, 10);
    await writer.until('done');
    const errors: string[] = [];
    const exporter = await StoreExporter.create({
      settings: { file, retentionMs: 0, maxBytes: 0 },
      logger: { ...SILENT, error: (_f: object, msg: string) => errors.push(msg) },
      upkeepIntervalMs: 0,
    });
    t.after(() => exporter.stop(0));
    assert.match(exporter.openError?.message ?? '', /in use|another process/);
    assert.equal(errors.length, 1);
    assert.equal(exporter.export(recordBatchOf([makeFlow(), makeFlow()])), true);
    await exporter.stop();
    assert.equal(exporter.stats.flowsFailed, 2);
  });

  test('a missing store is refused with a StoreError naming --store-path', async () => {
    mkdirSync(join(dir, 'empty'), { recursive: true });
    await assert.rejects(openStoreReader(join(dir, 'empty', 'flows.duckdb')), /--store-path/);
  });
});
