/**
 * The agent IP and bidirectional records through the pbflow outputs, read by peers flowtap did
 * not write the reading side of: `flowtap collect` (gRPC, through the generated schema) and a
 * Kafka cluster (librdkafka's mock cluster, consumed by kcat). pbflow has no bidirectional form,
 * so a bidirectional record arrives as its two directions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import type { BatchResult } from '../../src/export/exporter.ts';
import { GrpcExporter } from '../../src/export/grpc.ts';
import { KafkaExporter } from '../../src/export/kafka.ts';
import { parseKafkaSettings } from '../../src/export/kafka-config.ts';
import { RecordSchema } from '../../src/export/pbflow/gen/flow_pb.ts';
import type { Flow } from '../../src/model/flow.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';
import { startKafkaPeer, uniqueTopic } from './kafka-helpers.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const T0 = 1_700_000_000_000_000_000n;

/** A conversation as one bidirectional record, and a one-way flow, both seen by agent 192.0.2.33. */
function flows(): Flow[] {
  const agentIp = parseIp('192.0.2.33')!;
  return [
    makeFlow({
      agentIp,
      bytes: 300,
      packets: 3,
      direction: 1,
      timeFlowStartNs: T0,
      timeFlowEndNs: T0 + 10n,
      reverse: {
        bytes: 5000,
        packets: 4,
        timeFlowStartNs: T0 + 1n,
        timeFlowEndNs: T0 + 20n,
        tcpFlags: 0x12,
        dscp: 0,
      },
    }),
    makeFlow({
      agentIp,
      srcPort: 7,
      reverse: { bytes: 0, packets: 0, timeFlowStartNs: 0n, timeFlowEndNs: 0n, tcpFlags: 0, dscp: 0 },
    }),
  ];
}

test('flowtap collect prints the agent IP of every record, a bidirectional one as its two directions', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'collect', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit');
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    exited.then(() => reject(new Error(`collect exited: ${stderr}`)));
  });
  let stdout = '';
  const printed = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.split('\n').length > 3) resolve();
    });
  });
  const exporter = new GrpcExporter({ host: '127.0.0.1', port });
  t.after(() => exporter.stop(0));
  exporter.export(recordBatchOf(flows()));
  await printed;
  const lines = stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => [l.AgentIP, l.Network.SrcAddr, l.Transport.SrcPort, l.Direction, l.Bytes, l.Packets]),
    [
      ['192.0.2.33', '10.0.0.1', 1234, 'EGRESS', 300, 3],
      ['192.0.2.33', '10.0.0.2', 80, 'INGRESS', 5000, 4],
      ['192.0.2.33', '10.0.0.1', 7, 'EGRESS', 100, 1],
    ],
  );
  child.kill('SIGTERM');
  assert.equal((await exited)[0], 0);
});

test('Kafka messages carry the agent IP, a bidirectional record as two messages', async (t) => {
  const topic = uniqueTopic('flowtap-identity');
  const peer = await startKafkaPeer(topic);
  t.after(() => peer.stop());
  const results: BatchResult[] = [];
  const exporter = new KafkaExporter({
    settings: parseKafkaSettings({ KAFKA_BROKERS: peer.brokers.join(','), KAFKA_TOPIC: topic }),
    onResult: (r) => results.push(r),
  });
  t.after(() => exporter.stop(0));
  exporter.export(recordBatchOf(flows()));
  const messages = await peer.waitForMessages(3, 20_000);
  const records = messages.map((m) => fromBinary(RecordSchema, m.value ?? new Uint8Array()));
  assert.deepEqual(
    records
      .map((r) => [r.agentIp?.ipFamily.value, r.transport?.srcPort, r.bytes, r.packets])
      .sort((a, b) => Number(a[1]) - Number(b[1])),
    [
      [0xc0000221, 7, 100n, 1n],
      [0xc0000221, 80, 5000n, 4n],
      [0xc0000221, 1234, 300n, 3n],
    ],
  );
});
