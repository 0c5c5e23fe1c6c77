import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { FlowTable } from '../../src/account/flow-table.ts';
import { hashKey } from '../../src/account/key-hash.ts';
import { V2_EVENT_WORDS } from '../../src/codec/event-batch.ts';
import { RecordBatchBuilder, recordBatchOf } from '../../src/codec/record-batch.ts';
import { rowWords } from '../../src/codec/row-words.ts';
import {
  TunnelType,
  V2,
  V2_EVENT_BYTES,
  V2_KEY_WORDS,
  V2_RECORD_BYTES,
  V2_ROW_WORDS,
} from '../../src/codec/v2-layout.ts';
import type { Flow } from '../../src/model/flow.ts';
import { eventBatchOf } from '../helpers/events.ts';
import { makeFlow, seededRandom } from '../helpers/flows.ts';

/** The key hash flowtap used before it was seeded: fixed odd multipliers, summed, then mixed. */
const UNSEEDED_MULTIPLIERS = [
  0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f, 0x165667b1, 0xd3a2646d, 0xfd7046c5, 0xb55a4f09, 0x7feb352d,
  0x846ca68b, 0x9e485565, 0xef1d6b47, 0x5bd1e995, 0x1b873593, 0xcc9e2d51, 0xe6546b65,
];

function unseededSum(words: Int32Array, r: number): number {
  let sum = 0;
  for (let w = 0; w < V2_KEY_WORDS; w++) sum = (sum + Math.imul(words[r + w], UNSEEDED_MULTIPLIERS[w])) | 0;
  return sum;
}

/** The inverse of an odd number modulo 2^32 (Newton's iteration). */
function inverseMod32(odd: number): number {
  let x = odd;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(odd, x));
  return x;
}

/**
 * IPv6 flows whose source interface ids (address words 2 and 3, key words 6 and 7) an attacker
 * chose so that every key has the same unseeded hash: raising word 6 by t and lowering word 7
 * by t * m6 / m7 leaves the multilinear sum unchanged.
 */
function collidingKeys(count: number): Int32Array {
  const builder = new RecordBatchBuilder(count);
  for (let i = 0; i < count; i++) {
    builder.append(makeFlow({ etype: 0x86dd, srcAddr: '2001:db8::', dstAddr: '2001:db8::1' }));
  }
  const words = rowWords(builder.finish());
  const step = Math.imul(UNSEEDED_MULTIPLIERS[6], inverseMod32(UNSEEDED_MULTIPLIERS[7]));
  const word6 = V2.SRC_ADDR / 4 + 2;
  for (let i = 0; i < count; i++) {
    words[i * V2_ROW_WORDS + word6] = i;
    words[i * V2_ROW_WORDS + word6 + 1] = -Math.imul(i, step);
  }
  return words;
}

test('keys built to share one unseeded hash still find their flows in a few probes', () => {
  const count = 20_000;
  const words = collidingKeys(count);
  const sum = unseededSum(words, 0);
  for (let i = 1; i < count; i++) assert.equal(unseededSum(words, i * V2_ROW_WORDS), sum);

  const table = new FlowTable(100_000);
  assert.equal(table.add(words, V2_ROW_WORDS, count), 'done');
  assert.equal(table.size, count);
  // Every one of them in one chain would make the longest probe 20 000 slots.
  assert.ok(table.longestProbe <= 32, `longest probe ${table.longestProbe}`);
});

test('the longest probe counts the slots a lookup walks past', () => {
  const table = new FlowTable(8); // 16 index slots
  const builder = new RecordBatchBuilder(4096);
  for (let port = 0; port < 4096; port++) builder.append(makeFlow({ srcPort: port }));
  const words = rowWords(builder.finish());
  const rows: number[] = [];
  for (let i = 0; i < 4096 && rows.length < 8; i++) {
    if ((hashKey(words, i * V2_ROW_WORDS) + 1) % 16 === 5) rows.push(i);
  }
  assert.equal(rows.length, 8);
  const chain = new Int32Array(8 * V2_ROW_WORDS);
  rows.forEach((row, i) => {
    chain.set(words.subarray(row * V2_ROW_WORDS, (row + 1) * V2_ROW_WORDS), i * V2_ROW_WORDS);
  });
  table.add(chain, V2_ROW_WORDS, 8);
  assert.equal(table.longestProbe, 8);
});

test('the key hash is seeded per process', () => {
  const keyHashModule = new URL('../../src/account/key-hash.ts', import.meta.url).href;
  const script =
    `import { hashKey } from ${JSON.stringify(keyHashModule)};` +
    'const key = new Int32Array(16).map((_, i) => i * 7919);' +
    'console.log(hashKey(key, 0));';
  const hashes = [0, 1, 2].map(() => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    return run.stdout.trim();
  });
  // Three processes agreeing by chance: about 1 in 2^62.
  assert.ok(new Set(hashes).size > 1, `every process hashed the key to ${hashes[0]}`);
});

test('every cached flow is found again after the index has grown', () => {
  const count = 5000; // the index starts with 1024 slots and doubles three times
  const builder = new RecordBatchBuilder(count);
  for (let i = 0; i < count; i++) builder.append(makeFlow({ srcPort: i, packets: 1, bytes: 10 }));
  const words = rowWords(builder.finish());
  const table = new FlowTable(100_000);
  assert.equal(table.add(words, V2_ROW_WORDS, count), 'done');
  assert.equal(table.add(words, V2_ROW_WORDS, count), 'done');
  assert.equal(table.size, count);
  assert.ok(table.longestProbe <= 32, `longest probe ${table.longestProbe}`);
  const evicted = table.evictAll();
  assert.equal(evicted.count, count);
  for (let i = 0; i < count; i++) {
    assert.equal(evicted.packetsAt(i), 2);
    assert.equal(evicted.bytesAt(i), 20);
  }
  assert.equal(table.size, 0);
});

test('evicted rows carry the key and metrics of their flows and a zero user section', () => {
  const builder = new RecordBatchBuilder(1);
  builder.append(makeFlow({ srcPort: 4242, packets: 3, bytes: 300 }));
  const input = builder.finish();
  // A user section an earlier stage filled is not the cache's to keep (health is: see
  // flow-table-health.test.ts).
  input.bytes.fill(0xee, V2_EVENT_BYTES, V2.RTT_MIN_NS);
  const table = new FlowTable(4);
  table.add(rowWords(input), V2_ROW_WORDS, 1);
  const evicted = table.evictAll();
  assert.deepEqual(evicted.bytes.subarray(0, V2_EVENT_BYTES), input.bytes.subarray(0, V2_EVENT_BYTES));
  assert.ok(evicted.bytes.subarray(V2_EVENT_BYTES, V2_RECORD_BYTES).every((b) => b === 0));
});

/** Records of 40 flows in a random order: several per flow, with flags, DSCP, tunnels and crossed lists. */
function mixedRecords(count: number): Flow[] {
  const random = seededRandom(7);
  const t0 = 1_700_000_000_000_000_000n;
  return Array.from({ length: count }, () => {
    const flow = Math.floor(random() * 40);
    const ns = t0 + BigInt(Math.floor(random() * 1e9));
    const ifIndex = Math.floor(random() * 3);
    return makeFlow({
      srcPort: 1000 + flow,
      bytes: 1 + Math.floor(random() * 1500),
      timeFlowStartNs: ns,
      timeFlowEndNs: ns + BigInt(Math.floor(random() * 1000)),
      tcpFlags: 1 << Math.floor(random() * 9),
      dscp: Math.floor(random() * 64),
      crossed: [{ ifIndex, direction: flow % 2 }],
      tunnel:
        random() < 0.2
          ? { type: TunnelType.VXLAN, id: flow, srcAddr: Buffer.alloc(16, 1), dstAddr: Buffer.alloc(16, 2) }
          : undefined,
    });
  });
}

test('records fold into the same flows whether they come as events or as rows', () => {
  const records = mixedRecords(2000);
  const fromRows = new FlowTable(100);
  fromRows.add(rowWords(recordBatchOf(records)), V2_ROW_WORDS, records.length);
  const fromEvents = new FlowTable(100);
  fromEvents.add(eventBatchOf(records).words(), V2_EVENT_WORDS, records.length);
  const rows = fromRows.evictAll();
  const events = fromEvents.evictAll();
  assert.equal(events.count, 40);
  assert.ok(
    events.bytes
      .subarray(0, events.count * V2_RECORD_BYTES)
      .equals(rows.bytes.subarray(0, rows.count * V2_RECORD_BYTES)),
  );
  assert.equal(
    Array.from(events.flows(), (f) => f.packets).reduce((a, b) => a + b),
    records.length,
  );
});

test('rows evicted into a reused buffer have zero sections after the key and metrics, whatever it held', () => {
  const records = [1, 2, 3].map((srcPort) => makeFlow({ srcPort, packets: 1, bytes: 10 }));
  const input = recordBatchOf(records);
  const table = new FlowTable(8);
  table.add(rowWords(input), V2_ROW_WORDS, input.count);
  const spare = Buffer.alloc(4 * V2_RECORD_BYTES, 0xee);
  const evicted = table.evictAll(undefined, spare);
  assert.ok(evicted.bytes === spare, 'the spare buffer is reused');
  for (let i = 0; i < records.length; i++) {
    const row = evicted.bytes.subarray(i * V2_RECORD_BYTES, (i + 1) * V2_RECORD_BYTES);
    assert.deepEqual(
      row.subarray(0, V2_EVENT_BYTES),
      input.bytes.subarray(i * V2_RECORD_BYTES, i * V2_RECORD_BYTES + V2_EVENT_BYTES),
    );
    assert.ok(
      row.subarray(V2_EVENT_BYTES).every((b) => b === 0),
      `row ${i}`,
    );
  }
});
