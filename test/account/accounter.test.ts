import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Accounter, type AccounterOptions, type EvictionReason } from '../../src/account/accounter.ts';
import type { EventBatch } from '../../src/codec/event-batch.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { V2_RECORD_BYTES } from '../../src/codec/v2-layout.ts';
import { flowKeyString } from '../../src/model/flow.ts';
import { eventBatchOf } from '../helpers/events.ts';
import { makeFlow, seededRandom } from '../helpers/flows.ts';
import { BatchChannel } from './channel.ts';
import { FakeClock } from './fake-clock.ts';

function accounter(options: Partial<AccounterOptions> = {}, evictions: EvictionReason[] = []) {
  return new Accounter({
    maxEntries: 100,
    evictBufferLen: 10,
    evictTimeoutMs: 5000,
    clock: new FakeClock(),
    onEvict: (reason) => evictions.push(reason),
    ...options,
  });
}

async function collect(batches: AsyncIterable<RecordBatch>): Promise<RecordBatch[]> {
  const out: RecordBatch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

async function* from<B extends RecordBatch | EventBatch>(...batches: B[]): AsyncGenerator<B> {
  yield* batches;
}

describe('Accounter', () => {
  test('records of the same flow accumulate bytes, packets, times and flags', async () => {
    const out = await collect(
      accounter().account(
        from(
          recordBatchOf([makeFlow({ bytes: 10, timeFlowStartNs: 100n, timeFlowEndNs: 100n, tcpFlags: 2 })]),
          recordBatchOf([
            makeFlow({
              bytes: 20,
              packets: 3,
              timeFlowStartNs: 300n,
              timeFlowEndNs: 400n,
              tcpFlags: 16,
              dscp: 8,
            }),
          ]),
          recordBatchOf([makeFlow({ bytes: 5, timeFlowStartNs: 50n, timeFlowEndNs: 60n })]),
        ),
      ),
    );
    assert.equal(out.length, 1);
    assert.equal(out[0].count, 1);
    const f = out[0].flow(0);
    assert.deepEqual(
      [f.bytes, f.packets, f.timeFlowStartNs, f.timeFlowEndNs, f.tcpFlags],
      [35, 5, 50n, 400n, 18],
    );
  });

  test('records differing in any key field are separate flows', async () => {
    const variants = [
      {},
      { direction: 0 },
      { srcMac: '02:00:00:00:00:09' },
      { dstMac: '02:00:00:00:00:09' },
      { srcAddr: '10.0.0.9' },
      { dstAddr: '10.0.0.9' },
      { srcPort: 9 },
      { dstPort: 9 },
      { proto: 17 },
      { ifIndex: 9 },
      { etype: 0x86dd, srcAddr: '::1', dstAddr: '::2' },
      { proto: 1, icmpType: 8 },
      { proto: 1, icmpType: 8, icmpCode: 1 },
    ];
    const out = await collect(accounter().account(from(recordBatchOf(variants.map((v) => makeFlow(v))))));
    assert.equal(out[0].count, variants.length);
  });

  test('when a new flow would exceed maxEntries the whole cache is evicted first', async () => {
    const evictions: EvictionReason[] = [];
    const flows = Array.from({ length: 7 }, (_, i) => makeFlow({ srcPort: i }));
    const out = await collect(accounter({ maxEntries: 3 }, evictions).account(from(recordBatchOf(flows))));
    assert.deepEqual(
      out.map((b) => b.count),
      [3, 3, 1],
    );
    assert.deepEqual(evictions, ['full', 'full', 'end']);
    assert.deepEqual(
      out.flatMap((b) => Array.from(b.flows(), (f) => f.srcPort)),
      [0, 1, 2, 3, 4, 5, 6],
    );
  });

  test('a known flow is still accumulated when the cache is full', async () => {
    const flows = [0, 1, 2, 0, 1, 2].map((p) => makeFlow({ srcPort: p }));
    const out = await collect(accounter({ maxEntries: 3 }).account(from(recordBatchOf(flows))));
    assert.deepEqual(
      out.map((b) => b.count),
      [3],
    );
    assert.deepEqual(
      Array.from(out[0].flows(), (f) => f.packets),
      [2, 2, 2],
    );
  });

  test('every active-timeout tick evicts the whole cache as one batch', async () => {
    const clock = new FakeClock();
    const input = new BatchChannel();
    const evictions: EvictionReason[] = [];
    const out = accounter({ clock }, evictions).account(input)[Symbol.asyncIterator]();
    input.push(recordBatchOf([makeFlow({ srcPort: 1 }), makeFlow({ srcPort: 2 })]));
    await input.drained();
    clock.tick();
    const first = await out.next();
    assert.equal(first.value?.count, 2);
    input.push(recordBatchOf([makeFlow({ srcPort: 1 })]));
    await input.drained();
    clock.tick();
    clock.tick(); // an empty cache evicts nothing
    const second = await out.next();
    assert.equal(second.value?.count, 1);
    input.end();
    assert.equal((await out.next()).done, true);
    assert.deepEqual(evictions, ['timeout', 'timeout']);
    assert.equal(clock.running, 0, 'the timer is stopped when the input ends');
  });

  test('flows cached when the input ends are flushed before the output ends', async () => {
    const evictions: EvictionReason[] = [];
    const out = await collect(accounter({}, evictions).account(from(recordBatchOf([makeFlow()]))));
    assert.equal(out.length, 1);
    assert.deepEqual(evictions, ['end']);
  });

  test('an input failure still delivers the flows counted before it, then the error', async () => {
    const input = new BatchChannel();
    const it = accounter().account(input)[Symbol.asyncIterator]();
    input.push(recordBatchOf([makeFlow()]));
    input.fail(new Error('disk gone'));
    assert.equal((await it.next()).value?.count, 1);
    await assert.rejects(it.next(), /disk gone/);
  });

  test('accounting pauses its input while evictBufferLen batches wait, and loses nothing', async () => {
    const input = new BatchChannel();
    const batches = Array.from({ length: 10 }, (_, i) =>
      recordBatchOf(Array.from({ length: 5 }, (_, j) => makeFlow({ srcPort: i * 5 + j }))),
    );
    const it = accounter({ maxEntries: 5, evictBufferLen: 2 }).account(input)[Symbol.asyncIterator]();
    for (const b of batches) input.push(b);
    input.end();
    // Nothing consumed yet: the accounter may fill its buffer but must stop pulling input.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(input.pulled <= 4, `pulled ${input.pulled} batches with no consumer`);
    let flows = 0;
    for (let r = await it.next(); !r.done; r = await it.next()) flows += r.value.count;
    assert.equal(flows, 50);
    assert.equal(input.pulled, 10);
  });

  test('a timeout tick while the output is full is not lost: it evicts once the consumer makes room', async () => {
    const clock = new FakeClock();
    const input = new BatchChannel();
    let evictedFull!: () => void;
    const full = new Promise<void>((resolve) => {
      evictedFull = resolve;
    });
    const it = accounter({
      clock,
      maxEntries: 1,
      evictBufferLen: 1,
      onEvict: (r) => r === 'full' && evictedFull(),
    })
      .account(input)
      [Symbol.asyncIterator]();
    input.push(recordBatchOf([makeFlow({ srcPort: 1 }), makeFlow({ srcPort: 2 })])); // evicts port 1 (full)
    await full;
    clock.tick(); // output holds one batch: deferred
    assert.deepEqual(
      Array.from(((await it.next()).value as RecordBatch).flows(), (f) => f.srcPort),
      [1],
    );
    assert.deepEqual(
      Array.from(((await it.next()).value as RecordBatch).flows(), (f) => f.srcPort),
      [2],
    );
    input.end();
    assert.equal((await it.next()).done, true);
  });

  test('in record-time mode the active timeout follows the records’ own clock', async () => {
    const s = 1_000_000_000n;
    const at = (sec: bigint, port: number) =>
      makeFlow({ srcPort: port, timeFlowStartNs: sec * s, timeFlowEndNs: sec * s });
    const out = await collect(
      accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 10_000 }).account(
        from(recordBatchOf([at(100n, 1), at(105n, 2), at(109n, 1), at(110n, 3), at(125n, 1), at(131n, 4)])),
      ),
    );
    assert.deepEqual(
      out.map((b) => Array.from(b.flows(), (f) => `${f.srcPort}x${f.packets}`)),
      [['1x2', '2x1'], ['3x1'], ['1x1'], ['4x1']],
    );
  });

  test('records years apart with a 10ms record-time timeout take one eviction per window they fall in', async () => {
    const evictions: EvictionReason[] = [];
    const threeYearsNs = 3n * 365n * 86_400n * 1_000_000_000n;
    const at = (ns: bigint, port: number) =>
      makeFlow({ srcPort: port, timeFlowStartNs: ns, timeFlowEndNs: ns });
    const t0 = 1_700_000_000_000_000_000n;
    const out = await collect(
      accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 10 }, evictions).account(
        from(recordBatchOf([at(t0, 1), at(t0 + threeYearsNs, 2), at(t0 + threeYearsNs + 9_000_000n, 2)])),
      ),
    );
    assert.deepEqual(
      out.map((b) => Array.from(b.flows(), (f) => `${f.srcPort}x${f.packets}`)),
      [['1x1'], ['2x2']],
    );
    assert.deepEqual(evictions, ['timeout', 'end']);
  });

  test('record-time windows of 100ns stay exact at times past 2^53 ns', async () => {
    const base = 2n ** 63n + 7n; // doubles step by 2048 ns here
    const at = (ns: bigint, port: number) =>
      makeFlow({ srcPort: port, timeFlowStartNs: ns, timeFlowEndNs: ns });
    const out = await collect(
      accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 0.0001 }).account(
        from(
          recordBatchOf([at(base, 1), at(base + 99n, 1), at(base + 100n, 2), at(base + 250n, 3)]),
          recordBatchOf([at(base + 299n, 3), at(2n ** 64n - 1n, 4)]),
        ),
      ),
    );
    assert.deepEqual(
      out.map((b) => Array.from(b.flows(), (f) => `${f.srcPort}x${f.packets}`)),
      [['1x2'], ['2x1'], ['3x2'], ['4x1']],
    );
    assert.equal(out[3].flow(0).timeFlowEndNs, 2n ** 64n - 1n);
  });

  test('record-time windows close at the same records whether they come as events or as rows', async () => {
    const s = 1_000_000_000n;
    const at = (sec: bigint, port: number) =>
      makeFlow({ srcPort: port, timeFlowStartNs: sec * s, timeFlowEndNs: sec * s });
    const records = [at(100n, 1), at(105n, 2), at(109n, 1), at(110n, 3), at(125n, 1), at(131n, 4)];
    const options = { activeTimeoutBy: 'record-time', evictTimeoutMs: 10_000 } as const;
    const fromEvents = await collect(accounter(options).account(from(eventBatchOf(records))));
    const fromRows = await collect(accounter(options).account(from(recordBatchOf(records))));
    const ports = (out: RecordBatch[]) =>
      out.map((b) => Array.from(b.flows(), (f) => `${f.srcPort}x${f.packets}`));
    assert.deepEqual(ports(fromEvents), [['1x2', '2x1'], ['3x1'], ['1x1'], ['4x1']]);
    assert.deepEqual(ports(fromEvents), ports(fromRows));
  });

  test('a record-time timeout under 1ns is refused at construction', () => {
    assert.throws(() => accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 1e-7 }), /below 1 ns/);
  });

  test('accounting matches a simple map over many random records', async () => {
    const random = seededRandom(42);
    const flows = Array.from({ length: 20_000 }, () =>
      makeFlow({
        srcPort: Math.floor(random() * 500),
        dstPort: Math.floor(random() * 3),
        bytes: 1 + Math.floor(random() * 1500),
      }),
    );
    const expected = new Map<string, number>();
    for (const f of flows) expected.set(flowKeyString(f), (expected.get(flowKeyString(f)) ?? 0) + f.bytes);
    const out = await collect(
      accounter({ maxEntries: 2000 }).account(
        from(recordBatchOf(flows.slice(0, 7000)), recordBatchOf(flows.slice(7000))),
      ),
    );
    const got = new Map<string, number>();
    for (const b of out) for (const f of b.flows()) got.set(flowKeyString(f), f.bytes);
    assert.deepEqual(got, expected);
  });

  test('invalid settings are rejected at construction', () => {
    assert.throws(() => new Accounter({ maxEntries: 0, evictBufferLen: 1, evictTimeoutMs: 1 }), /maxEntries/);
    assert.throws(
      () => new Accounter({ maxEntries: 1, evictBufferLen: 1, evictTimeoutMs: Number.NaN }),
      /evictTimeoutMs/,
    );
  });

  test('an evicted batch keeps its buffer until it is recycled, and a later eviction then reuses it', async () => {
    const input = new BatchChannel();
    const acc = accounter({ maxEntries: 2, evictBufferLen: 10 });
    const out = acc.account(input)[Symbol.asyncIterator]();
    const next = async () => (await out.next()).value as RecordBatch;
    const ports = (batch: RecordBatch) => Array.from(batch.flows(), (f) => f.srcPort);
    // A third flow in a table of two evicts the first two.
    input.push(recordBatchOf([1, 2, 3].map((srcPort) => makeFlow({ srcPort }))));
    const first = await next();
    input.push(recordBatchOf([4, 5].map((srcPort) => makeFlow({ srcPort }))));
    const second = await next();
    assert.notEqual(second.bytes, first.bytes, 'not recycled: not reused');
    assert.deepEqual(ports(first), [1, 2]);
    acc.recycle(first);
    acc.recycle(first); // a second time gives nothing more
    input.push(recordBatchOf([6, 7].map((srcPort) => makeFlow({ srcPort }))));
    const third = await next();
    input.push(recordBatchOf([8, 9].map((srcPort) => makeFlow({ srcPort }))));
    const fourth = await next();
    assert.equal(third.bytes, first.bytes);
    assert.notEqual(fourth.bytes, first.bytes);
    assert.deepEqual(ports(second), [3, 4]);
    assert.deepEqual(ports(third), [5, 6]);
    assert.deepEqual(ports(fourth), [7, 8]);
    input.end();
    assert.deepEqual(ports(await next()), [9]);
  });

  test('an eviction larger than evictChunkFlows goes out in parts, in cache order, and accounting waits for the last', async () => {
    const evictions: EvictionReason[] = [];
    const input = new BatchChannel();
    const acc = accounter(
      { maxEntries: 10, evictBufferLen: 1, activeTimeoutBy: 'record-time', evictChunkFlows: 3 },
      evictions,
    );
    const out = acc.account(input)[Symbol.asyncIterator]();
    const next = async () => (await out.next()).value as RecordBatch;
    const ports = (batch: RecordBatch) => Array.from(batch.flows(), (f) => f.srcPort);
    // An eleventh flow in a table of ten evicts the ten, in parts of 3.
    input.push(recordBatchOf(Array.from({ length: 11 }, (_, i) => makeFlow({ srcPort: i + 1 }))));
    input.push(recordBatchOf([makeFlow({ srcPort: 12 })]));
    assert.deepEqual(ports(await next()), [1, 2, 3]);
    // The other parts are still to come: the next input batch is not accounted meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(input.pulled, 1);
    assert.deepEqual(ports(await next()), [4, 5, 6]);
    assert.deepEqual(ports(await next()), [7, 8, 9]);
    assert.deepEqual(ports(await next()), [10]);
    input.end();
    assert.deepEqual(ports(await next()), [11, 12]);
    assert.equal((await out.next()).done, true);
    assert.deepEqual(evictions, ['full', 'end'], 'one eviction told however many parts it took');
  });

  test('parts carry the same rows as one eviction of the whole cache', async () => {
    const records = Array.from({ length: 500 }, (_, i) =>
      makeFlow({ srcPort: i % 37, bytes: i + 1, timeFlowStartNs: BigInt(i), timeFlowEndNs: BigInt(i) }),
    );
    const whole = await collect(
      accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 1e-4 }).account(
        from(recordBatchOf(records)),
      ),
    );
    const parts = await collect(
      accounter({ activeTimeoutBy: 'record-time', evictTimeoutMs: 1e-4, evictChunkFlows: 4 }).account(
        from(recordBatchOf(records)),
      ),
    );
    const rows = (batches: RecordBatch[]) =>
      Buffer.concat(batches.map((b) => b.bytes.subarray(0, b.count * V2_RECORD_BYTES)));
    assert.ok(parts.length > whole.length, `${parts.length} parts for ${whole.length} evictions`);
    assert.ok(parts.every((b) => b.count <= 4));
    assert.deepEqual(rows(parts), rows(whole));
  });

  test('a consumer that stops reading ends the accounting: the input is closed where it stood', async () => {
    let pulled = 0;
    let closed = false;
    async function* input(): AsyncGenerator<RecordBatch> {
      try {
        for (let b = 0; b < 20; b++) {
          pulled++;
          yield recordBatchOf(Array.from({ length: 5 }, (_, i) => makeFlow({ srcPort: b * 5 + i })));
        }
      } finally {
        closed = true;
      }
    }
    const acc = accounter({
      maxEntries: 4,
      evictBufferLen: 1,
      activeTimeoutBy: 'record-time',
      evictChunkFlows: 2,
    });
    const out = acc.account(input())[Symbol.asyncIterator]();
    assert.equal(((await out.next()).value as RecordBatch).count, 2);
    await out.return?.(undefined);
    for (let i = 0; i < 5 && !closed; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(closed, true, 'the input was closed');
    assert.equal(pulled, 1, 'nothing was read after the consumer stopped');
  });

  test('evictChunkFlows is refused outside record-time mode and when not a positive integer', () => {
    assert.throws(() => accounter({ evictChunkFlows: 10 }), /record-time/);
    assert.throws(() => accounter({ activeTimeoutBy: 'record-time', evictChunkFlows: 0 }), /evictChunkFlows/);
    assert.throws(
      () => accounter({ activeTimeoutBy: 'record-time', evictChunkFlows: 1.5 }),
      /evictChunkFlows/,
    );
  });
});
