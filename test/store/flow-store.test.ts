import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { formatIp } from '../../src/model/ip.ts';
import { formatMac } from '../../src/model/mac.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { FIRST_SCHEMA3_COLUMN, STORE_COLUMNS } from '../../src/store/schema.ts';
import { makeFlow } from '../helpers/flows.ts';
import { storeRows } from './store-rows.ts';

const DAY_NS = 86_400_000_000_000n;
/** Columns schema 3 added (stored and computed by the view), tested in store-identity.test.ts. */
const SCHEMA3_COLUMNS = [
  ...STORE_COLUMNS.slice(STORE_COLUMNS.findIndex((c) => c.name === FIRST_SCHEMA3_COLUMN)).map((c) => c.name),
  'agent_ip',
  'tunnel_src',
  'tunnel_dst',
].join(', ');
const T0_NS = 1_700_000_000_000_000_000n; // 2023-11-14

describe('flow store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshFile = () => join(dir, `s${n++}`, 'flows.duckdb');

  test('every field of a flow reads back as it was appended, addresses and MACs as flowtap prints them', async () => {
    const flows = [
      makeFlow({
        srcMac: '11:22:33:44:55:66',
        dstMac: 'aa:bb:cc:dd:ee:ff',
        srcAddr: '192.0.2.7',
        dstAddr: '10.0.3.7',
        srcPort: 65_535,
        dstPort: 443,
        bytes: 2 ** 40 + 3,
        packets: 2 ** 33 + 1,
        tcpFlags: 0x1ff,
        dscp: 46,
        direction: 0,
        ifIndex: 7,
        interface: 'eth7',
        timeFlowStartNs: T0_NS + 123_456_789n,
        timeFlowEndNs: T0_NS + 999_999_999n,
      }),
      ...[
        '2001:db8::1',
        '::',
        '::1',
        'fe80::',
        '1:0:0:2:0:0:0:3',
        '2001:db8:0:0:1:0:0:1',
        '::ffff:1.2.3.4',
      ].map((addr) =>
        makeFlow({
          etype: 0x86dd,
          srcAddr: addr,
          dstAddr: '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff',
          proto: 58,
          icmpType: 128,
          icmpCode: 3,
        }),
      ),
    ];
    const file = freshFile();
    const store = await FlowStore.open(file);
    await store.append(recordBatchOf(flows, { nameOf: (i) => (i === 7 ? 'eth7' : '') }));
    await store.close();
    const rows = await storeRows(
      file,
      `SELECT * EXCLUDE (src_ip_hi, src_ip_lo, dst_ip_hi, dst_ip_lo, ${SCHEMA3_COLUMNS}) FROM flows ORDER BY time_end DESC, src_addr`,
    );
    const expected = flows
      .map((f) => ({
        time_start: null,
        time_end: null,
        etype: f.etype,
        direction: f.direction,
        proto: f.proto,
        src_port: f.srcPort,
        dst_port: f.dstPort,
        icmp_type: f.icmpType,
        icmp_code: f.icmpCode,
        if_index: f.ifIndex,
        interface: f.interface,
        bytes: f.bytes,
        packets: f.packets,
        tcp_flags: f.tcpFlags,
        dscp: f.dscp,
        src_mac: formatMac(f.srcMac),
        dst_mac: formatMac(f.dstMac),
        src_addr: formatIp(f.srcAddr, 0, f.etype),
        dst_addr: formatIp(f.dstAddr, 0, f.etype),
      }))
      .sort((a, b) => (a.bytes !== b.bytes ? b.bytes - a.bytes : a.src_addr < b.src_addr ? -1 : 1));
    assert.deepEqual(
      rows.map((r) => ({ ...r, time_start: null, time_end: null })),
      expected,
    );
    assert.equal(rows[0].time_start, '2023-11-14T22:13:20.123456789Z');
    assert.equal(rows[0].time_end, '2023-11-14T22:13:20.999999999Z');
  });

  test('flows go to the partition of their last packet’s UTC day', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    await store.append(
      recordBatchOf([
        makeFlow({ timeFlowEndNs: T0_NS }),
        makeFlow({ timeFlowEndNs: T0_NS + DAY_NS }),
        makeFlow({ timeFlowEndNs: T0_NS + DAY_NS }),
      ]),
    );
    assert.deepEqual(store.partitions, ['flows_20231114', 'flows_20231115']);
    await store.close();
    const counts = await storeRows(file, 'SELECT count(*) AS n FROM flows_20231115');
    assert.deepEqual(counts, [{ n: 2 }]);
  });

  test('retention drops partitions that ended before the cutoff and keeps newer ones', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    const days = [0n, 1n, 2n, 3n].map((d) => makeFlow({ timeFlowEndNs: T0_NS + d * DAY_NS }));
    await store.append(recordBatchOf(days));
    // The cutoff falls inside the third day: the two days before it end before the cutoff.
    const cutoffMs = Number((T0_NS + 2n * DAY_NS) / 1_000_000n) + 3_600_000;
    const dropped = await store.dropPartitionsBefore(cutoffMs);
    assert.deepEqual(dropped, ['flows_20231114', 'flows_20231115']);
    assert.deepEqual(store.partitions, ['flows_20231116', 'flows_20231117']);
    await store.close();
    assert.deepEqual(await storeRows(file, 'SELECT count(*) AS n FROM flows'), [{ n: 2 }]);
  });

  test('a store past its byte budget drops its oldest partitions until it fits', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    for (let d = 0n; d < 4n; d++) {
      const end = T0_NS + d * DAY_NS;
      await store.append(
        recordBatchOf(
          Array.from({ length: 150_000 }, (_, i) =>
            makeFlow({
              srcPort: i % 65_536,
              dstPort: (i * 7) % 65_536,
              bytes: i * 13,
              timeFlowEndNs: end + BigInt(i),
            }),
          ),
        ),
      );
    }
    await store.checkpoint();
    const full = await store.usedBytes();
    const budget = Math.floor(full * 0.6);
    const dropped = await store.shrinkTo(budget);
    assert.ok(dropped.length >= 2, `dropped ${dropped}`);
    assert.equal(dropped[0], 'flows_20231114');
    assert.ok((await store.usedBytes()) <= budget);
    assert.equal(store.partitions.at(-1), 'flows_20231117');
    await store.close();
    assert.ok(statSync(file).size > 0);
  });

  test('the writer reads its own store between appends and sees every committed flow', async () => {
    const file = freshFile();
    const store = await FlowStore.open(file);
    const count = () =>
      store.read(async (c) => Number((await c.runAndReadAll('SELECT count(*) FROM flows')).getRows()[0][0]));
    await store.append(recordBatchOf([makeFlow({}), makeFlow({})]));
    await store.commit();
    assert.equal(await count(), 2);
    await store.append(recordBatchOf([makeFlow({})]));
    await store.checkpoint();
    assert.equal(await count(), 3);
    await store.close();
  });
});
