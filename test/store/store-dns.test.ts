/** Schema 5 of the flow store: issue 15's DNS columns read back, and schema 4 stores migrated when they open. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { FIRST_SCHEMA5_COLUMN, META_TABLE, SCHEMA_VERSION, STORE_COLUMNS } from '../../src/store/schema.ts';
import { makeFlow } from '../helpers/flows.ts';
import { storeRows } from './store-rows.ts';

const T0_NS = 1_700_000_000_000_000_000n; // 2023-11-14
const DNS_AT = STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA5_COLUMN);
const DNS_COLUMNS = STORE_COLUMNS.slice(DNS_AT).map((c) => c.name);

describe('flow store schema 5', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store5-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshFile = () => join(dir, `s${n++}`, 'flows.duckdb');

  test('a response, an unanswered query and a flow without DNS read back; what a section lacks is 0 or empty', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf([
        makeFlow({
          timeFlowEndNs: T0_NS,
          bytes: 3,
          dns: {
            queries: 0,
            answers: 2,
            unanswered: 0,
            malformed: 1,
            latestNs: T0_NS,
            header: { id: 0x1234, flags: 0x8183 },
            name: 'nx.ex\u00e4mple',
            latencyNs: 12_500_000n,
            errno: 22,
          },
        }),
        makeFlow({
          timeFlowEndNs: T0_NS,
          bytes: 2,
          packets: 0,
          dns: { queries: 0, answers: 0, unanswered: 1, malformed: 0, latestNs: T0_NS, name: 'slow.example' },
        }),
        makeFlow({ timeFlowEndNs: T0_NS, bytes: 1 }),
      ]),
    );
    await store.close();
    const rows = await storeRows(file, `SELECT ${DNS_COLUMNS.join(', ')} FROM flows ORDER BY bytes DESC`);
    const none = {
      dns_id: 0,
      dns_flags: 0,
      dns_latency_ns: 0,
      dns_name: '',
      dns_errno: 0,
      dns_queries: 0,
      dns_answers: 0,
      dns_unanswered: 0,
      dns_malformed: 0,
      dns_record_flags: 0,
    };
    assert.deepEqual(rows, [
      {
        dns_id: 0x1234,
        dns_flags: 0x8183,
        dns_latency_ns: 12_500_000,
        dns_name: 'nx.ex\u00e4mple',
        dns_errno: 22,
        dns_queries: 0,
        dns_answers: 2,
        dns_unanswered: 0,
        dns_malformed: 1,
        dns_record_flags: 1 | 2 | 8,
      },
      { ...none, dns_name: 'slow.example', dns_unanswered: 1, dns_record_flags: 2 },
      none,
    ]);
  });

  test('a schema 4 store gains the DNS columns when it opens, its rows reading 0 and empty names', async () => {
    const file = freshFile();
    const v4Columns = STORE_COLUMNS.slice(0, DNS_AT);
    mkdirSync(join(file, '..'), { recursive: true });
    const old = await DuckDBInstance.create(file);
    const c = await old.connect();
    await c.run(`CREATE TABLE ${META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)`);
    await c.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', '4')`);
    const columns = v4Columns.map((col) => `${col.name} ${col.type}`).join(', ');
    for (const table of ['flows_template', 'flows_20231114'])
      await c.run(`CREATE TABLE ${table} (${columns})`);
    const values = v4Columns.map((col) =>
      col.type === 'TIMESTAMP_NS' ? "'2023-11-14 22:13:20'" : col.type === 'VARCHAR' ? "'eth0'" : '7',
    );
    await c.run(`INSERT INTO flows_20231114 VALUES (${values.join(', ')})`);
    c.closeSync();
    old.closeSync();

    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf([
        makeFlow({
          timeFlowEndNs: T0_NS,
          dns: { queries: 1, answers: 0, unanswered: 0, malformed: 0, latestNs: T0_NS, name: 'new.example' },
        }),
      ]),
    );
    await store.close();
    const rows = await storeRows(
      file,
      'SELECT bytes, rtt_last_ns, dns_name, dns_queries FROM flows ORDER BY bytes',
    );
    assert.deepEqual(rows, [
      { bytes: 7, rtt_last_ns: 7, dns_name: '', dns_queries: 0 },
      { bytes: 100, rtt_last_ns: 0, dns_name: 'new.example', dns_queries: 1 },
    ]);
    const [meta] = await storeRows(file, `SELECT value FROM ${META_TABLE} WHERE key = 'schema_version'`);
    assert.equal(meta.value, SCHEMA_VERSION);
  });
});
