/**
 * Two `flowtap collect --from kafka --to clickhouse://...` in one consumer group share a topic of
 * 6 partitions on a librdkafka mock cluster; one is killed with SIGKILL mid-stream and the other
 * takes its partitions over: every flow produced is stored at least once in Debian's
 * clickhouse-server, and the duplicates the crash caused are counted and reported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import type { BatchResult } from '../../src/export/exporter.ts';
import { KafkaExporter } from '../../src/export/kafka.ts';
import { parseKafkaSettings } from '../../src/export/kafka-config.ts';
import { type ClickHouseServer, clickhouseAvailable, startClickHouse } from '../helpers/clickhouse.ts';
import { makeFlow } from '../helpers/flows.ts';
import { startMockCluster } from '../helpers/kafka-mock-cluster.ts';
import { type CollectorProcess, startCollectorProcess } from './collector-process.ts';

const TOPIC = 'fleet-flows';
const PARTITIONS = 6;
const PHASE_FLOWS = 15_000;
const BATCH_FLOWS = 1_000;
const WAIT_TIMEOUT_MS = 90_000;
const POLL_MS = 50;

/** Flows numbered `first` to `first + count - 1`: each has its number as its byte count, unique. */
function numberedBatches(first: number, count: number): RecordBatch[] {
  const batches: RecordBatch[] = [];
  for (let start = 0; start < count; start += BATCH_FLOWS) {
    const flows = [];
    for (let i = start; i < Math.min(count, start + BATCH_FLOWS); i++) {
      const n = first + i;
      flows.push(
        makeFlow({
          srcAddr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
          srcPort: 1024 + (n % 60_000),
          bytes: n,
          packets: 1,
        }),
      );
    }
    batches.push(recordBatchOf(flows));
  }
  return batches;
}

/** Produces the batches through flowtap's own Kafka exporter; resolves once all are acknowledged. */
async function produce(brokers: string[], batches: RecordBatch[]): Promise<void> {
  let done = 0;
  let failure: BatchResult | undefined;
  let finish = () => {};
  const all = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const exporter = new KafkaExporter({
    settings: parseKafkaSettings({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC: TOPIC }),
    maxQueuedBatches: batches.length,
    onResult: (r) => {
      if (!r.ok) failure ??= r;
      if (++done === batches.length) finish();
    },
  });
  for (const batch of batches) exporter.export(batch);
  await all;
  await exporter.stop();
  assert.equal(failure, undefined, `producing failed: ${failure?.error?.message}`);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Rows and distinct flow numbers stored. */
async function storedCounts(server: ClickHouseServer): Promise<{ rows: number; distinct: number }> {
  const text = await server.query('SELECT count(), uniqExact(bytes) FROM fleet.flows');
  const [rows, distinct] = text.trim().split('\t').map(Number);
  return { rows, distinct };
}

/** Partitions of the last group assignment `collector` logged. */
function lastAssignment(collector: CollectorProcess): number[] | undefined {
  const joins = collector.logs.filter((l) => Array.isArray(l.partitions));
  return joins.at(-1)?.partitions as number[] | undefined;
}

test('two collectors share 6 partitions, one is SIGKILLed mid-stream, the other takes over and no flow is lost', {
  skip: !clickhouseAvailable() && 'clickhouse-server is not installed',
}, async (t) => {
  const server = await startClickHouse(t);
  const cluster = await startMockCluster(t, { [TOPIC]: PARTITIONS });
  const env = {
    KAFKA_BROKERS: cluster.brokers.join(','),
    KAFKA_TOPIC: TOPIC,
    KAFKA_GROUP_ID: 'fleet-test',
  };
  const args = ['--from', 'kafka', '--to', server.storeUrl('fleet'), '--kafka-session-timeout', '3s'];
  // Started together: on the mock cluster of Debian's librdkafka 2.0, a kafkajs member joining a
  // settled group can get INVALID_REQUEST after its sync and stop (see README "Kafka tests").
  const a = startCollectorProcess(t, args, env);
  const b = startCollectorProcess(t, args, env);
  await waitFor('both collectors to share the 6 partitions', () => {
    const pa = lastAssignment(a);
    const pb = lastAssignment(b);
    if (!pa || !pb || pa.length === 0 || pb.length === 0) return undefined;
    const all = new Set([...pa, ...pb]);
    return all.size === PARTITIONS && pa.length + pb.length === PARTITIONS ? true : undefined;
  }).catch((err: Error) => {
    const logs = (c: CollectorProcess) => JSON.stringify(c.logs.map((l) => [l.time, l.msg]));
    throw new Error(`${err.message}: A ${logs(a)} B ${logs(b)}`);
  });

  // Phase 1: both consume.
  await produce(cluster.brokers, numberedBatches(1, PHASE_FLOWS));
  await waitFor('phase 1 stored', async () =>
    (await storedCounts(server)).distinct === PHASE_FLOWS ? true : undefined,
  );
  // Phase 2: A dies while flows stream in.
  const phase2 = produce(cluster.brokers, numberedBatches(PHASE_FLOWS + 1, PHASE_FLOWS));
  await waitFor('phase 2 to start arriving', async () =>
    (await storedCounts(server)).distinct > PHASE_FLOWS ? true : undefined,
  );
  process.kill(a.child.pid as number, 'SIGKILL');
  await a.exited();
  await phase2;
  // Phase 3: only B is left; A's partitions must be B's now.
  await produce(cluster.brokers, numberedBatches(2 * PHASE_FLOWS + 1, PHASE_FLOWS));
  const total = 3 * PHASE_FLOWS;
  const counts = await waitFor('every flow stored', async () => {
    const c = await storedCounts(server);
    return c.distinct === total ? c : undefined;
  });
  assert.deepEqual(
    [...(lastAssignment(b) ?? [])].sort(),
    Array.from({ length: PARTITIONS }, (_, p) => p),
  );
  const range = await server.query('SELECT min(bytes), max(bytes) FROM fleet.flows');
  assert.equal(range.trim(), `1\t${total}`);
  assert.ok(counts.rows >= total);
  t.diagnostic(`flows produced ${total}, stored rows ${counts.rows}, duplicates ${counts.rows - total}`);

  b.child.kill('SIGTERM');
  assert.equal(await b.exited(), 0);
});
