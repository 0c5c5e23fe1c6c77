/** Schema 4 of the flow store: issue 14's health columns read back, and schema 3 stores migrated when they open. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import {
  FIRST_SCHEMA4_COLUMN,
  FIRST_SCHEMA5_COLUMN,
  META_TABLE,
  SCHEMA_VERSION,
  STORE_COLUMNS,
} from '../../src/store/schema.ts';
import { makeFlow } from '../helpers/flows.ts';
import { FULL_HEALTH, RETRANS_ONLY } from '../helpers/health.ts';
import { storeRows } from './store-rows.ts';

const T0_NS = 1_700_000_000_000_000_000n; // 2023-11-14
const HEALTH_COLUMNS = STORE_COLUMNS.slice(
  STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA4_COLUMN),
  STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA5_COLUMN),
).map((c) => c.name);

describe('flow store schema 4', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store4-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshFile = () => join(dir, `s${n++}`, 'flows.duckdb');

  test('RTTs, handshake time, drops with the latest cause and retransmissions read back; what was not measured is 0', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf([
        makeFlow({ timeFlowEndNs: T0_NS, bytes: 3, health: FULL_HEALTH }),
        makeFlow({ timeFlowEndNs: T0_NS, bytes: 2, health: RETRANS_ONLY }),
        makeFlow({ timeFlowEndNs: T0_NS, bytes: 1 }),
      ]),
    );
    await store.close();
    const rows = await storeRows(file, `SELECT ${HEALTH_COLUMNS.join(', ')} FROM flows ORDER BY bytes DESC`);
    const zero = Object.fromEntries(HEALTH_COLUMNS.map((c) => [c, 0]));
    assert.deepEqual(rows, [
      {
        rtt_last_ns: 7_250_000,
        rtt_min_ns: 1_500_000,
        rtt_max_ns: 42_000_000,
        handshake_rtt_ns: 310_000,
        drop_bytes: 3_000,
        drop_packets: 2,
        drop_latest_cause: 8,
        drop_latest_flags: 0x18,
        drop_latest_state: 1,
        retrans_bytes: 2_896,
        retrans_packets: 2,
      },
      { ...zero, retrans_packets: 3 },
      zero,
    ]);
  });

  test('a schema 3 store gains the health columns when it opens, its rows reading 0', async () => {
    const file = freshFile();
    const v3Columns = STORE_COLUMNS.slice(
      0,
      STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA4_COLUMN),
    );
    mkdirSync(join(file, '..'), { recursive: true });
    const old = await DuckDBInstance.create(file);
    const c = await old.connect();
    await c.run(`CREATE TABLE ${META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)`);
    await c.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', '3')`);
    const columns = v3Columns.map((col) => `${col.name} ${col.type}`).join(', ');
    for (const table of ['flows_template', 'flows_20231114'])
      await c.run(`CREATE TABLE ${table} (${columns})`);
    const values = v3Columns.map((col) =>
      col.type === 'TIMESTAMP_NS' ? "'2023-11-14 22:13:20'" : col.type === 'VARCHAR' ? "'eth0'" : '7',
    );
    await c.run(`INSERT INTO flows_20231114 VALUES (${values.join(', ')})`);
    c.closeSync();
    old.closeSync();

    const store = await FlowStore.open(file);
    await store.append(recordBatchOf([makeFlow({ timeFlowEndNs: T0_NS, health: RETRANS_ONLY })]));
    await store.close();
    const rows = await storeRows(
      file,
      'SELECT bytes, vlan_outer, rtt_last_ns, retrans_packets FROM flows ORDER BY bytes',
    );
    assert.deepEqual(rows, [
      { bytes: 7, vlan_outer: 7, rtt_last_ns: 0, retrans_packets: 0 },
      { bytes: 100, vlan_outer: 0, rtt_last_ns: 0, retrans_packets: 3 },
    ]);
    const [meta] = await storeRows(file, `SELECT value FROM ${META_TABLE} WHERE key = 'schema_version'`);
    assert.equal(meta.value, SCHEMA_VERSION);
  });
});
