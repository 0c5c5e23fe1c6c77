/**
 * Fleet collector throughput into ClickHouse (Debian's clickhouse-server 18.16, started here on
 * loopback; skipped when missing): flows/s from a pre-filled Kafka topic (6 partitions on the
 * librdkafka mock cluster) through one consumer-group member and the ClickHouse sink until every
 * flow is stored, and the same from gRPC agents' requests (the exporter in this process sending
 * batches of 1000) to stored. The collector runs in this process, as `flowtap collect` wires it;
 * ClickHouse, the mock cluster and the sender share the same 2 cores. Target: 200 k flows/s.
 */

import { type RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import { ClickHouseSink, DEFAULT_MAX_INSERT_ROWS } from '../src/collect/clickhouse-sink.ts';
import { CollectMetrics } from '../src/collect/collect-metrics.ts';
import { SinkFanOut } from '../src/collect/collector-sink.ts';
import { KafkaSource } from '../src/collect/kafka-source.ts';
import { GrpcExporter } from '../src/export/grpc.ts';
import { startCollector } from '../src/export/grpc-collector.ts';
import { KafkaExporter } from '../src/export/kafka.ts';
import { parseKafkaSettings } from '../src/export/kafka-config.ts';
import { RowBinaryWriter } from '../src/store/clickhouse-rows.ts';
import { ClickHouseStore, parseClickHouseUrl } from '../src/store/clickhouse-store.ts';
import { variedFlow } from '../test/export/ipfix/flows.ts';
import { clickhouseAvailable, startClickHouse } from '../test/helpers/clickhouse.ts';
import { startMockCluster } from '../test/helpers/kafka-mock-cluster.ts';

const TARGET_FLOWS_PER_S = 200_000;
const BATCH_FLOWS = 1000;
/** Batches per case (FLEET_BENCH_BATCHES); 100 k flows fit the mock cluster's memory comfortably. */
const BATCHES = Number(process.env.FLEET_BENCH_BATCHES ?? 100);
const TOPIC = 'bench-flows';
const POLL_MS = 20;

function line(name: string, flowsPerS: number): void {
  console.log(
    `${name.padEnd(52)} ${(flowsPerS / 1e3).toFixed(0).padStart(6)} k flows/s  ` +
      `x${(flowsPerS / TARGET_FLOWS_PER_S).toFixed(2)} vs target 200 k flows/s`,
  );
}

/** Released in reverse order when the bench ends (the helpers take a test's `after`). */
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };

async function waitStored(metrics: CollectMetrics, flows: number): Promise<void> {
  while (metrics.sinks[0].stored < flows) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function benchBatch(): RecordBatch {
  return recordBatchOf(Array.from({ length: BATCH_FLOWS }, (_, i) => variedFlow(i % 250)));
}

async function sinkTo(server: { storeUrl(db: string): string }, db: string, metrics: CollectMetrics) {
  const store = new ClickHouseStore(parseClickHouseUrl('--to', server.storeUrl(db)));
  await store.ensureSchema();
  const sink = new ClickHouseSink(store, metrics.sink('clickhouse'));
  cleanups.push(() => sink.close(10_000));
  return new SinkFanOut([sink]);
}

/** The ceiling: the same flows as one RowBinary insert per 100 k, straight to ClickHouse. */
async function insertCase(server: { storeUrl(db: string): string }, batch: RecordBatch): Promise<void> {
  const store = new ClickHouseStore(parseClickHouseUrl('--to', server.storeUrl('bench_insert')));
  cleanups.push(() => store.close());
  await store.ensureSchema();
  const writer = new RowBinaryWriter();
  const t0 = performance.now();
  for (let b = 0; b < BATCHES; b++) {
    writer.append(batch);
    if (writer.rows >= DEFAULT_MAX_INSERT_ROWS || b === BATCHES - 1)
      await store.insertRowBinary(writer.take());
  }
  line('RowBinary inserts alone (ceiling)', ((BATCHES * batch.count) / (performance.now() - t0)) * 1000);
}

async function kafkaCase(server: { storeUrl(db: string): string }, batch: RecordBatch): Promise<void> {
  const cluster = await startMockCluster(t, { [TOPIC]: 6 });
  const settings = parseKafkaSettings({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_TOPIC: TOPIC });
  let acknowledged = 0;
  const producer = new KafkaExporter({
    settings,
    maxQueuedBatches: BATCHES,
    onResult: () => {
      acknowledged++;
    },
  });
  for (let b = 0; b < BATCHES; b++) producer.export(batch);
  while (acknowledged < BATCHES) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  await producer.stop();
  const metrics = new CollectMetrics();
  const sinks = await sinkTo(server, 'bench_kafka', metrics);
  const source = new KafkaSource({ settings, groupId: 'bench', sinks, metrics: metrics.source('kafka') });
  cleanups.push(() => source.stop());
  await source.start();
  // Joining the group takes seconds on the mock cluster: time from the first flow received.
  while (metrics.sources[0].received === 0) await new Promise((resolve) => setImmediate(resolve));
  const t0 = performance.now();
  await waitStored(metrics, BATCHES * batch.count);
  line(
    'Kafka (6 partitions, mock) -> ClickHouse',
    ((BATCHES * batch.count) / (performance.now() - t0)) * 1000,
  );
}

async function grpcCase(server: { storeUrl(db: string): string }, batch: RecordBatch): Promise<void> {
  const metrics = new CollectMetrics();
  const sinks = await sinkTo(server, 'bench_grpc', metrics);
  const collector = await startCollector({
    port: 0,
    onBatch: async (received) => {
      const { stored } = await sinks.accept(received);
      stored.catch(() => undefined);
    },
  });
  cleanups.push(() => collector.close(0));
  const exporter = new GrpcExporter({ host: '127.0.0.1', port: collector.port, maxQueuedBatches: BATCHES });
  cleanups.push(() => exporter.stop(0));
  const t0 = performance.now();
  for (let b = 0; b < BATCHES; b++) exporter.export(batch);
  await waitStored(metrics, BATCHES * batch.count);
  line(
    'gRPC (1 agent, batches of 1000) -> ClickHouse',
    ((BATCHES * batch.count) / (performance.now() - t0)) * 1000,
  );
}

if (!clickhouseAvailable()) {
  console.log('fleet: skipped (clickhouse-server is not installed)');
} else {
  try {
    const server = await startClickHouse(t);
    const batch = benchBatch();
    await insertCase(server, batch);
    await kafkaCase(server, batch);
    await grpcCase(server, batch);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}
