/**
 * `collect --from kafka` reads a topic another producer compressed with zstd: librdkafka (kcat)
 * produces pbflow Records with compression.codec=zstd onto the mock cluster, and the collector's
 * consumer decompresses them (fzstd) into the same flows. flowtap's own exporter cannot compress
 * with zstd; reading it is what a fleet of other agents needs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { CollectMetrics } from '../../src/collect/collect-metrics.ts';
import { type Accepted, type CollectorSink, SinkFanOut } from '../../src/collect/collector-sink.ts';
import { KafkaSource } from '../../src/collect/kafka-source.ts';
import { parseKafkaSettings } from '../../src/export/kafka-config.ts';
import { encodePbRecord } from '../../src/export/pbflow/encode.ts';
import { makeFlow } from '../helpers/flows.ts';
import { startMockCluster } from '../helpers/kafka-mock-cluster.ts';

const TOPIC = 'zstd-flows';
const FLOWS = 300;
const WAIT_TIMEOUT_MS = 60_000;

/** Keeps the byte count of every flow it is given. */
class KeepingSink implements CollectorSink {
  readonly name = 'keep';
  readonly bytes: number[] = [];
  async accept(batch: RecordBatch): Promise<Accepted> {
    for (let i = 0; i < batch.count; i++) this.bytes.push(batch.bytesAt(i));
    return { stored: Promise.resolve() };
  }
  async close(): Promise<void> {}
}

test('a topic compressed with zstd by librdkafka is consumed into the flows produced', async (t) => {
  const cluster = await startMockCluster(t, { [TOPIC]: 6 });
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-kafka-zstd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // One file per message (kcat -P sends each file named as one message), flow n with n bytes.
  const batch = recordBatchOf(
    Array.from({ length: FLOWS }, (_, i) => makeFlow({ srcPort: 1000 + i, bytes: i + 1, packets: 1 })),
  );
  const files = Array.from({ length: FLOWS }, (_, i) => {
    const file = join(dir, `m${i}`);
    writeFileSync(file, encodePbRecord(batch, i));
    return file;
  });
  const kcat = spawn(
    'kcat',
    [
      '-P',
      '-b',
      cluster.brokers.join(','),
      '-t',
      TOPIC,
      '-X',
      'compression.codec=zstd',
      '-X',
      'linger.ms=20',
      ...files,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let kcatErr = '';
  kcat.stderr.setEncoding('utf8').on('data', (d: string) => {
    kcatErr += d;
  });
  const [code] = await once(kcat, 'exit');
  assert.equal(code, 0, `kcat produced nothing: ${kcatErr}`);

  const keep = new KeepingSink();
  const metrics = new CollectMetrics().source('kafka');
  const source = new KafkaSource({
    settings: parseKafkaSettings({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_TOPIC: TOPIC }),
    groupId: 'zstd-test',
    sinks: new SinkFanOut([keep]),
    metrics,
  });
  t.after(() => source.stop());
  await source.start();
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (keep.bytes.length < FLOWS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    keep.bytes.sort((a, b) => a - b),
    Array.from({ length: FLOWS }, (_, i) => i + 1),
    'every flow once, as produced',
  );
  assert.deepEqual([...metrics.dropped], [], 'nothing dropped as unreadable');
  assert.equal(metrics.received, FLOWS);
});
