/** Schema 3 of the flow store: issue 13's columns read back, and schema 2 stores migrated when they open. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { StoreError } from '../../src/errors.ts';
import { InterfaceRegistry } from '../../src/model/interfaces.ts';
import { parseIp } from '../../src/model/ip.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { FIRST_SCHEMA3_COLUMN, META_TABLE, SCHEMA_VERSION, STORE_COLUMNS } from '../../src/store/schema.ts';
import { makeFlow } from '../helpers/flows.ts';
import { storeRows } from './store-rows.ts';

const T0_NS = 1_700_000_000_000_000_000n; // 2023-11-14

describe('flow store schema 3', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store3-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshFile = () => join(dir, `s${n++}`, 'flows.duckdb');

  test('agent IP, VLAN ids, tunnel, interfaces crossed and reverse counters read back', async () => {
    const names = new InterfaceRegistry();
    names.set(3, 'veth3');
    names.set(4, 'br0');
    const file = freshFile();
    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf(
        [
          makeFlow({
            timeFlowStartNs: T0_NS,
            timeFlowEndNs: T0_NS + 5n,
            agentIp: parseIp('192.0.2.10')!,
            vlanOuter: 100,
            vlanInner: 20,
            tunnel: { type: 1, id: 42, srcAddr: parseIp('198.51.100.1')!, dstAddr: parseIp('fd00::2')! },
            crossed: [
              { ifIndex: 3, direction: 0 },
              { ifIndex: 4, direction: 1 },
            ],
            reverse: {
              bytes: 5000,
              packets: 4,
              timeFlowStartNs: T0_NS + 1n,
              timeFlowEndNs: T0_NS + 9n,
              tcpFlags: 18,
              dscp: 46,
            },
          }),
        ],
        names,
      ),
    );
    await store.close();
    const [row] = await storeRows(
      file,
      `SELECT agent_ip, vlan_outer, vlan_inner, tunnel_type, tunnel_id, tunnel_src, tunnel_dst, crossed,
         record_flags, rev_bytes, rev_packets, rev_time_start, rev_time_end, rev_tcp_flags, rev_dscp FROM flows`,
    );
    assert.deepEqual(row, {
      agent_ip: '192.0.2.10',
      vlan_outer: 100,
      vlan_inner: 20,
      tunnel_type: 1,
      tunnel_id: 42,
      tunnel_src: '198.51.100.1',
      tunnel_dst: 'fd00::2',
      crossed: 'veth3 in,br0 out',
      record_flags: 1,
      rev_bytes: 5000,
      rev_packets: 4,
      rev_time_start: '2023-11-14T22:13:20.000000001Z',
      rev_time_end: '2023-11-14T22:13:20.000000009Z',
      rev_tcp_flags: 18,
      rev_dscp: 46,
    });
  });

  test('a schema 2 store gains the new columns when it opens, its rows reading their defaults', async () => {
    const file = freshFile();
    const v2Columns = STORE_COLUMNS.slice(
      0,
      STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA3_COLUMN),
    );
    mkdirSync(join(file, '..'), { recursive: true });
    const old = await DuckDBInstance.create(file);
    const c = await old.connect();
    await c.run(`CREATE TABLE ${META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)`);
    await c.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', '2')`);
    const columns = v2Columns.map((col) => `${col.name} ${col.type}`).join(', ');
    for (const table of ['flows_template', 'flows_20231114'])
      await c.run(`CREATE TABLE ${table} (${columns})`);
    const values = v2Columns.map((col) =>
      col.type === 'TIMESTAMP_NS' ? "'2023-11-14 22:13:20'" : col.type === 'VARCHAR' ? "'eth0'" : '7',
    );
    await c.run(`INSERT INTO flows_20231114 VALUES (${values.join(', ')})`);
    c.closeSync();
    old.closeSync();

    const store = await FlowStore.open(file);
    await store.append(recordBatchOf([makeFlow({ timeFlowEndNs: T0_NS, agentIp: parseIp('192.0.2.1')! })]));
    await store.close();
    const rows = await storeRows(
      file,
      'SELECT bytes, agent_ip, vlan_outer, crossed, record_flags, rev_bytes FROM flows ORDER BY bytes',
    );
    assert.deepEqual(rows, [
      { bytes: 7, agent_ip: '0.0.0.0', vlan_outer: 0, crossed: '', record_flags: 0, rev_bytes: 0 },
      { bytes: 100, agent_ip: '192.0.2.1', vlan_outer: 0, crossed: '', record_flags: 0, rev_bytes: 0 },
    ]);
    const [meta] = await storeRows(file, `SELECT value FROM ${META_TABLE} WHERE key = 'schema_version'`);
    assert.equal(meta.value, SCHEMA_VERSION);
  });

  test('a store of another schema is still refused, not misread', async () => {
    const file = freshFile();
    mkdirSync(join(file, '..'), { recursive: true });
    const other = await DuckDBInstance.create(file);
    const c = await other.connect();
    await c.run(`CREATE TABLE ${META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)`);
    await c.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', '1')`);
    c.closeSync();
    other.closeSync();
    await assert.rejects(FlowStore.open(file), StoreError);
  });
});
