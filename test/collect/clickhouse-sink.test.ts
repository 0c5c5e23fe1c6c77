/**
 * The ClickHouse sink: batches gathered into inserts and `stored` settled after them (against
 * Debian's clickhouse-server), and, with no server, retries, a full queue that makes `accept`
 * wait, and a close that gives up on the queued flows and counts them.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { ClickHouseSink } from '../../src/collect/clickhouse-sink.ts';
import { CollectMetrics } from '../../src/collect/collect-metrics.ts';
import { ClosedError, StoreError } from '../../src/errors.ts';
import { ClickHouseStore, parseClickHouseUrl } from '../../src/store/clickhouse-store.ts';
import { variedBatch } from '../export/ipfix/flows.ts';
import { clickhouseAvailable, startClickHouse } from '../helpers/clickhouse.ts';

test('accepted batches are stored in one insert and stored settles once ClickHouse has them', {
  skip: !clickhouseAvailable() && 'clickhouse-server is not installed',
}, async (t) => {
  const server = await startClickHouse(t);
  const store = new ClickHouseStore(parseClickHouseUrl('--to', server.storeUrl('sinktest')));
  await store.ensureSchema();
  const metrics = new CollectMetrics();
  const sink = new ClickHouseSink(store, metrics.sink('clickhouse'), {
    maxInsertRows: 500,
    maxInsertDelayMs: 60_000,
  });
  t.after(() => sink.close(1_000));
  const first = await sink.accept(variedBatch(250));
  const second = await sink.accept(variedBatch(250));
  // 500 rows reached: the insert starts without waiting for the delay.
  await Promise.all([first.stored, second.stored]);
  assert.equal((await server.query('SELECT count() FROM sinktest.flows')).trim(), '500');
  const s = metrics.sinks[0];
  assert.equal(s.stored, 500);
  assert.equal(s.latencyCount, 1);
  assert.equal(metrics.health().status, 'ok');
  assert.match(metrics.prometheusText(), /flowtap_collect_flows_stored_total\{sink="clickhouse"\} 500/);
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('with ClickHouse down the sink retries, a full queue makes accept wait, and close gives up counting the flows dropped', async () => {
  const store = new ClickHouseStore(
    parseClickHouseUrl('--to', `clickhouse://127.0.0.1:${await closedPort()}/x`),
  );
  const metrics = new CollectMetrics();
  const sinkMetrics = metrics.sink('clickhouse');
  const sink = new ClickHouseSink(store, sinkMetrics, {
    maxInsertRows: 100,
    maxQueuedRows: 100,
    backoff: { initialBackoffMs: 5, maxBackoffMs: 20 },
  });
  const accepted = await sink.accept(variedBatch(100));
  let waitingSettled = false;
  const waiting = sink.accept(variedBatch(10)).finally(() => {
    waitingSettled = true;
  });
  waiting.catch(() => undefined); // asserted below, after close
  // Wait for a few failed attempts (the retry counter), then check the second accept still waits.
  // The sink's backoff timers are unref()'d, as in the collector: this one keeps the test alive.
  while (sinkMetrics.retries < 3) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(waitingSettled, false);
  assert.equal(metrics.health().status, 'failing');
  await sink.close(50);
  await assert.rejects(accepted.stored, StoreError);
  await assert.rejects(waiting, ClosedError);
  assert.equal(sinkMetrics.dropped, 100);
  assert.equal(sinkMetrics.stored, 0);
});

test('two inserts run at once, and stored settles in acceptance order even when the later insert ends first', async () => {
  const pending: (() => void)[] = [];
  const store = {
    target: parseClickHouseUrl('--to', 'clickhouse://127.0.0.1:1/x'),
    insertRowBinary: () => new Promise<void>((resolve) => pending.push(resolve)),
    close: async () => {},
  } as unknown as ClickHouseStore;
  const metrics = new CollectMetrics();
  const sink = new ClickHouseSink(store, metrics.sink('clickhouse'), { maxInsertRows: 10 });
  const order: string[] = [];
  const first = await sink.accept(variedBatch(10));
  const second = await sink.accept(variedBatch(10));
  const third = await sink.accept(variedBatch(10));
  first.stored.then(() => order.push('first'));
  second.stored.then(() => order.push('second'));
  third.stored.then(() => order.push('third'));
  while (pending.length < 2) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pending.length, 2, 'the third insert waits for a free slot');
  pending[1]();
  // Every continuation of the second insert has run after a turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [], 'the second is stored, but the first is not yet');
  pending[0]();
  await second.stored;
  assert.deepEqual(order, ['first', 'second']);
  while (pending.length < 3) await new Promise((resolve) => setImmediate(resolve));
  pending[2]();
  await third.stored;
  assert.deepEqual(order, ['first', 'second', 'third']);
  await sink.close(100);
});
