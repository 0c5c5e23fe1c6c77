/**
 * Fleet collector throughput into ClickHouse (Debian's clickhouse-server 18.16, started here on
 * loopback; skipped when missing). Each case is flows/s from the first flow the collector received
 * to the last one ClickHouse acknowledged, through the sources and the ClickHouse sink as
 * `flowtap collect` wires them, in this process; the agents (gRPC, IPFIX) run in a process of
 * their own (bench/fleet-sender.ts); ClickHouse, the Kafka mock cluster and the agents share the
 * same 2 cores. Every line shows its ratio to the 200 k flows/s target and to the ceilings
 * measured in the same run:
 * - ClickHouse's: RowBinary inserts of 100 000 flows into a warm table, flowtap's RowBinary
 *   writer included (what the sink does, without a source), one at a time and two at a time (the
 *   sink's default);
 * - the Kafka mock cluster's: the consumer group reading the topic into a sink that only counts.
 *   librdkafka's mock answers a fetch with one producer batch per partition, so a consumer makes a
 *   round trip per ~1 000 messages whatever reads them.
 * A gRPC agent sends one batch at a time and waits for the reply, so one agent measures a round
 * trip per 1 000 flows; a fleet collector serves many (four here). Flows: FLEET_BENCH_FLOWS (1 M)
 * per case; Kafka 150 k (the mock keeps about 190 k messages of this size and silently drops the
 * oldest beyond). FLEET_BENCH_PROFILE=DIR writes a CPU profile of the collector's thread during
 * each Kafka case to DIR (open it in Chrome DevTools, or sum its samples by file).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { type RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import {
  ClickHouseSink,
  DEFAULT_MAX_CONCURRENT_INSERTS,
  DEFAULT_MAX_INSERT_ROWS,
} from '../src/collect/clickhouse-sink.ts';
import { CollectMetrics, type SinkMetrics } from '../src/collect/collect-metrics.ts';
import { type Accepted, type CollectorSink, SinkFanOut } from '../src/collect/collector-sink.ts';
import { IpfixSource } from '../src/collect/ipfix-source.ts';
import { KafkaSource } from '../src/collect/kafka-source.ts';
import { startCollector } from '../src/export/grpc-collector.ts';
import { KafkaExporter } from '../src/export/kafka.ts';
import { parseKafkaSettings } from '../src/export/kafka-config.ts';
import { RowBinaryWriter } from '../src/store/clickhouse-rows.ts';
import { ClickHouseStore, parseClickHouseUrl } from '../src/store/clickhouse-store.ts';
import { variedFlow } from '../test/export/ipfix/flows.ts';
import { type ClickHouseServer, clickhouseAvailable, startClickHouse } from '../test/helpers/clickhouse.ts';
import { startMockCluster } from '../test/helpers/kafka-mock-cluster.ts';

const TARGET_FLOWS_PER_S = 200_000;
const BATCH_FLOWS = 1000;
const FLOWS = Number(process.env.FLEET_BENCH_FLOWS ?? 1_000_000);
const KAFKA_FLOWS = Math.min(FLOWS, 150_000);
/** Flows per agent batch in the Kafka cases: the exporter's default produce call, and a larger one. */
const KAFKA_BATCHES = [1000, 5000];
const topicOf = (batchFlows: number) => `bench-flows-${batchFlows}`;
const PARTITIONS = 6;
const POLL_MS = 5;
const WARM_UP_BATCH = recordBatchOf(Array.from({ length: BATCH_FLOWS }, (_, i) => variedFlow(i % 250)));
const SENDER = new URL('./fleet-sender.ts', import.meta.url).pathname;
const PROFILE_DIR = process.env.FLEET_BENCH_PROFILE;

/** Released in reverse order when the bench ends (the helpers take a test's `after`). */
const cleanups: (() => unknown)[] = [];
const t = { after: (fn: () => unknown) => cleanups.push(fn) };
const ceilings: { name: string; flowsPerS: number }[] = [];

function line(name: string, flowsPerS: number): void {
  const vsCeilings = ceilings.map((c) => `x${(flowsPerS / c.flowsPerS).toFixed(2)} of ${c.name}`).join(', ');
  console.log(
    `${name.padEnd(46)} ${(flowsPerS / 1e3).toFixed(0).padStart(6)} k flows/s  ` +
      `x${(flowsPerS / TARGET_FLOWS_PER_S).toFixed(2)} vs target 200 k${vsCeilings ? `; ${vsCeilings}` : ''}`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Flows/s from the first flow received to `flows` stored. */
async function timeStored(source: { received: number }, sink: SinkMetrics, flows: number): Promise<number> {
  while (source.received === 0) await new Promise((resolve) => setImmediate(resolve));
  const t0 = performance.now();
  while (sink.stored < flows) await sleep(POLL_MS);
  return (flows / (performance.now() - t0)) * 1000;
}

/** A sink that stores nothing and counts: what a source delivers without any sink's cost. */
class CountingSink implements CollectorSink {
  readonly name = 'count';
  constructor(private readonly metrics: SinkMetrics) {}
  async accept(batch: RecordBatch): Promise<Accepted> {
    this.metrics.stored += batch.count;
    return { stored: Promise.resolve() };
  }
  async close(): Promise<void> {}
}

async function clickhouseSink(
  server: ClickHouseServer,
  db: string,
  metrics: CollectMetrics,
): Promise<SinkFanOut> {
  const store = new ClickHouseStore(parseClickHouseUrl('--to', server.storeUrl(db)));
  await store.ensureSchema();
  // The first part of a new table costs more (as in insertCase): a case of 150 k flows, two
  // inserts, would mostly time it.
  const warmUp = new RowBinaryWriter();
  warmUp.append(WARM_UP_BATCH);
  await store.insertRowBinary(warmUp.take());
  const sink = new ClickHouseSink(store, metrics.sink('clickhouse'));
  cleanups.push(() => sink.close(10_000));
  return new SinkFanOut([sink]);
}

/**
 * The ClickHouse ceiling: the sink's inserts without a source, `concurrent` at a time (the sink
 * runs DEFAULT_MAX_CONCURRENT_INSERTS); each encodes its own body as the sink does.
 */
async function insertCase(server: ClickHouseServer, batch: RecordBatch, concurrent: number): Promise<number> {
  const store = new ClickHouseStore(
    parseClickHouseUrl('--to', server.storeUrl(`bench_insert_${concurrent}`)),
  );
  cleanups.push(() => store.close());
  await store.ensureSchema();
  const insertOnce = async () => {
    const writer = new RowBinaryWriter();
    while (writer.rows < DEFAULT_MAX_INSERT_ROWS) writer.append(batch);
    await store.insertRowBinary(writer.take());
  };
  await insertOnce(); // the first part of a new table costs more
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrent }, async () => {
      while (started < FLOWS) {
        started += DEFAULT_MAX_INSERT_ROWS;
        await insertOnce();
      }
    }),
  );
  const flowsPerS = (FLOWS / (performance.now() - t0)) * 1000;
  line(`ClickHouse: RowBinary inserts of 100 k, ${concurrent} at a time`, flowsPerS);
  return flowsPerS;
}

/**
 * Produces KAFKA_FLOWS flows to the topic of `batch`'s size through flowtap's Kafka exporter, one
 * produce call per batch (KAFKA_BATCH_MESSAGES raised to fit), as an agent whose eviction hands it
 * batches of that size does (not timed).
 */
async function produce(brokers: string[], batch: RecordBatch): Promise<void> {
  const batches = KAFKA_FLOWS / batch.count;
  let acknowledged = 0;
  const producer = new KafkaExporter({
    settings: parseKafkaSettings({
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC: topicOf(batch.count),
      KAFKA_BATCH_MESSAGES: String(batch.count),
    }),
    maxQueuedBatches: batches,
    onResult: () => {
      acknowledged++;
    },
  });
  for (let b = 0; b < batches; b++) producer.export(batch);
  while (acknowledged < batches) await sleep(20);
  await producer.stop();
}

async function kafkaCase(
  brokers: string[],
  topic: string,
  groupId: string,
  sinks: (metrics: CollectMetrics) => Promise<SinkFanOut>,
): Promise<number> {
  const settings = parseKafkaSettings({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC: topic });
  const metrics = new CollectMetrics();
  const fanOut = await sinks(metrics);
  const source = new KafkaSource({ settings, groupId, sinks: fanOut, metrics: metrics.source('kafka') });
  cleanups.push(() => source.stop());
  const profiler = PROFILE_DIR === undefined ? undefined : new Session();
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  await source.start();
  const flowsPerS = await timeStored(metrics.sources[0], metrics.sinks[0], KAFKA_FLOWS);
  if (profiler && PROFILE_DIR !== undefined) {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    mkdirSync(PROFILE_DIR, { recursive: true });
    writeFileSync(`${PROFILE_DIR}/${groupId}.cpuprofile`, JSON.stringify(profile));
  }
  return flowsPerS;
}

/** Starts bench/fleet-sender.ts: `agents` exporters of `kind` sending FLOWS flows to `port`. */
function startSender(kind: 'grpc' | 'ipfix', port: number, agents: number): void {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SENDER, kind, String(port), String(FLOWS), String(agents)],
    {
      stdio: 'inherit',
    },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
    }
  });
}

async function grpcCase(server: ClickHouseServer, agents: number): Promise<void> {
  const metrics = new CollectMetrics();
  const sinks = await clickhouseSink(server, `bench_grpc_${agents}`, metrics);
  const source = metrics.source('grpc');
  const collector = await startCollector({
    port: 0,
    onBatch: async (received) => {
      source.received += received.count;
      const { stored } = await sinks.accept(received);
      stored.catch(() => undefined);
    },
  });
  cleanups.push(() => collector.close(0));
  startSender('grpc', collector.port, agents);
  const name = `gRPC (${agents} agent${agents > 1 ? 's' : ''}, batches of 1000) -> ClickHouse`;
  line(name, await timeStored(source, metrics.sinks[0], FLOWS));
}

async function ipfixCase(server: ClickHouseServer): Promise<void> {
  const metrics = new CollectMetrics();
  const sinks = await clickhouseSink(server, 'bench_ipfix', metrics);
  const tcp = metrics.source('ipfix+tcp');
  const source = await IpfixSource.start({
    host: '127.0.0.1',
    port: 0,
    transports: ['tcp'],
    sinks,
    metrics: { tcp, udp: metrics.source('ipfix+udp') },
  });
  cleanups.push(() => source.stop());
  startSender('ipfix', source.ports.tcp as number, 1);
  line('IPFIX over TCP (1 agent) -> ClickHouse', await timeStored(tcp, metrics.sinks[0], FLOWS));
}

if (!clickhouseAvailable()) {
  console.log('fleet: skipped (clickhouse-server is not installed)');
} else {
  try {
    const server = await startClickHouse(t);
    const batch = recordBatchOf(Array.from({ length: BATCH_FLOWS }, (_, i) => variedFlow(i % 250)));
    await insertCase(server, batch, 1);
    const ceiling = await insertCase(server, batch, DEFAULT_MAX_CONCURRENT_INSERTS);
    ceilings.push({ name: 'ClickHouse', flowsPerS: ceiling });
    const cluster = await startMockCluster(
      t,
      Object.fromEntries(KAFKA_BATCHES.map((n) => [topicOf(n), PARTITIONS])),
    );
    for (const batchFlows of KAFKA_BATCHES) {
      const topic = topicOf(batchFlows);
      await produce(
        cluster.brokers,
        recordBatchOf(Array.from({ length: batchFlows }, (_, i) => variedFlow(i % 250))),
      );
      const mockRate = await kafkaCase(cluster.brokers, topic, `count-${batchFlows}`, async (metrics) => {
        return new SinkFanOut([new CountingSink(metrics.sink('count'))]);
      });
      const mockCeiling = { name: 'Kafka mock', flowsPerS: mockRate };
      line(`Kafka mock, batches of ${batchFlows}: consumer alone (ceiling)`, mockRate);
      ceilings.push(mockCeiling);
      line(
        `Kafka (6 partitions, mock, batches of ${batchFlows}) -> ClickHouse`,
        await kafkaCase(cluster.brokers, topic, `clickhouse-${batchFlows}`, (metrics) =>
          clickhouseSink(server, `bench_kafka_${batchFlows}`, metrics),
        ),
      );
      ceilings.splice(ceilings.indexOf(mockCeiling), 1);
    }
    await grpcCase(server, 1);
    await grpcCase(server, 4);
    await ipfixCase(server);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}
