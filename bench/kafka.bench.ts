/**
 * Kafka export: pbflow encode rate of the generic protobuf-es path against the hand-written
 * encoder (target: 2 M flows/s on one core), then flows/s from evicted batches to produce requests
 * acknowledged by librdkafka's mock cluster over loopback (kcat; skipped when it is missing). The
 * mock cluster and its consumer run in the same 2-core machine, which other work shares: the
 * figures are noisy, best of several runs.
 */
import { spawnSync } from 'node:child_process';
import { create, toBinary } from '@bufbuild/protobuf';
import { type RecordBatch, recordBatchOf } from '../src/codec/record-batch.ts';
import type { BatchResult } from '../src/export/exporter.ts';
import { KafkaExporter, kafkaMessagesOf } from '../src/export/kafka.ts';
import { parseKafkaSettings } from '../src/export/kafka-config.ts';
import { encodePbRecord, encodePbRecordList, encodePbRecords } from '../src/export/pbflow/encode.ts';
import { RecordSchema, RecordsSchema } from '../src/export/pbflow/gen/flow_pb.ts';
import { pbRecordOf } from '../src/export/pbflow/record.ts';
import { interfaceNames, variedFlow } from '../test/export/ipfix/flows.ts';
import { startKafkaPeer } from '../test/export/kafka-helpers.ts';

const TARGET_FLOWS_PER_S = 2e6;
const BATCH_FLOWS = 1000;
/** variedFlow builds addresses from its index, valid below 256. */
const DISTINCT_FLOWS = 250;
const ENCODE_RUNS = 40;
const CLUSTER_BATCHES = 100;
const CLUSTER_RUNS = 3;
const CLUSTER_TIMEOUT_MS = 120_000;

function line(name: string, flowsPerS: number, note = ''): void {
  console.log(
    `${name.padEnd(52)} ${(flowsPerS / 1e6).toFixed(2).padStart(6)} M flows/s  ` +
      `x${(flowsPerS / TARGET_FLOWS_PER_S).toFixed(2)} vs target 2 M flows/s${note}`,
  );
}

/** Flows per second of the fastest of `runs` runs of `fn` over `flows` flows. */
function bestRate(flows: number, runs: number, fn: () => void): number {
  for (let r = 0; r < 3; r++) fn(); // warm up the JIT
  let bestMs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  return (flows / bestMs) * 1000;
}

function benchBatch(): RecordBatch {
  return recordBatchOf(
    Array.from({ length: BATCH_FLOWS }, (_, i) => variedFlow(i % DISTINCT_FLOWS)),
    interfaceNames(),
  );
}

function encodeCases(batch: RecordBatch): void {
  const n = batch.count;
  line(
    'generic: toBinary(RecordSchema, pbRecordOf(...))',
    bestRate(n, ENCODE_RUNS, () => {
      for (let i = 0; i < n; i++) toBinary(RecordSchema, pbRecordOf(batch, i));
    }),
  );
  line(
    'hand-written: encodePbRecord per flow',
    bestRate(n, ENCODE_RUNS, () => {
      for (let i = 0; i < n; i++) encodePbRecord(batch, i);
    }),
  );
  line(
    'hand-written: encodePbRecordList (Kafka values)',
    bestRate(n, ENCODE_RUNS, () => encodePbRecordList(batch, 0, n)),
  );
  line(
    'hand-written: kafkaMessagesOf (values + keys)',
    bestRate(n, ENCODE_RUNS, () => kafkaMessagesOf(batch)),
  );
  line(
    'generic: toBinary(RecordsSchema) of a batch (gRPC)',
    bestRate(n, ENCODE_RUNS, () => {
      const entries = [];
      for (let i = 0; i < n; i++) entries.push(pbRecordOf(batch, i));
      toBinary(RecordsSchema, create(RecordsSchema, { entries }));
    }),
  );
  line(
    'hand-written: encodePbRecords of a batch (gRPC)',
    bestRate(n, ENCODE_RUNS, () => encodePbRecords(batch, 0, n)),
  );
}

/** Exports CLUSTER_BATCHES batches and resolves with flows/s once all are acknowledged. */
async function produceRun(brokers: string[], topic: string, compression: string, batch: RecordBatch) {
  let done = 0;
  let failed: BatchResult | undefined;
  let finish = () => {};
  const allDone = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const exporter = new KafkaExporter({
    settings: parseKafkaSettings({
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC: topic,
      KAFKA_COMPRESSION: compression,
    }),
    maxQueuedBatches: CLUSTER_BATCHES,
    onResult: (r) => {
      if (!r.ok) failed ??= r;
      if (++done === CLUSTER_BATCHES) finish();
    },
  });
  // One batch first, so connecting and creating the topic are not timed.
  exporter.export(batch);
  while (done === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  done = 0;
  const t0 = performance.now();
  for (let b = 0; b < CLUSTER_BATCHES; b++) exporter.export(batch);
  const timer = setTimeout(() => finish(), CLUSTER_TIMEOUT_MS);
  await allDone;
  const ms = performance.now() - t0;
  clearTimeout(timer);
  await exporter.stop();
  if (failed || done < CLUSTER_BATCHES) {
    throw new Error(`mock cluster run failed: ${failed?.error?.message ?? `${done} batches in time`}`);
  }
  return ((CLUSTER_BATCHES * batch.count) / ms) * 1000;
}

async function clusterCases(batch: RecordBatch): Promise<void> {
  if (spawnSync('kcat', ['-V']).status !== 0) {
    console.log('mock cluster cases skipped: kcat is not installed (apt-get install kcat)');
    return;
  }
  for (const compression of ['none', 'lz4']) {
    const topic = `flowtap-bench-${compression}`;
    const peer = await startKafkaPeer(topic);
    try {
      let best = 0;
      for (let r = 0; r < CLUSTER_RUNS; r++)
        best = Math.max(best, await produceRun(peer.brokers, topic, compression, batch));
      line(
        `evicted batches → acked produce (mock, ${compression})`,
        best,
        `  [${CLUSTER_BATCHES}×${batch.count} flows]`,
      );
    } finally {
      await peer.stop();
    }
  }
}

const batch = benchBatch();
encodeCases(batch);
await clusterCases(batch);
