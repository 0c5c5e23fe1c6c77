/**
 * EXPORT=kafka against a Kafka peer flowtap did not write: librdkafka's mock cluster (three
 * brokers on loopback, in a kcat process that consumes the topic), or a real cluster when
 * FLOWTAP_TEST_KAFKA_BROKERS is set. Messages are read back by kcat and the values decoded with the
 * generated pbflow schema.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBinary } from '@bufbuild/protobuf';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import type { BatchResult } from '../../src/export/exporter.ts';
import { KafkaExporter } from '../../src/export/kafka.ts';
import { parseKafkaSettings } from '../../src/export/kafka-config.ts';
import { encodePbRecord } from '../../src/export/pbflow/encode.ts';
import { type Record as PbRecord, RecordSchema } from '../../src/export/pbflow/gen/flow_pb.ts';
import type { Flow } from '../../src/model/flow.ts';
import { isIpv4Mapped } from '../../src/model/ip.ts';
import { interfaceNames, variedFlow } from './ipfix/flows.ts';
import {
  type ConsumedMessage,
  REAL_KAFKA_BROKERS,
  startBootstrapProxy,
  startKafkaPeer,
  uniqueTopic,
} from './kafka-helpers.ts';

/** Conversations in the round-trip batch; each is sent in both directions. */
const CONVERSATIONS = 60;
const CONSUME_TIMEOUT_MS = 20_000;
/** Short backoff so the recovery tests finish quickly. */
const TEST_BACKOFF = { initialBackoffMs: 50, maxBackoffMs: 400 };

/** The reverse direction of `flow`: addresses, ports and MACs swapped, other direction. */
function reversed(flow: Flow): Flow {
  return {
    ...flow,
    srcAddr: flow.dstAddr,
    dstAddr: flow.srcAddr,
    srcMac: flow.dstMac,
    dstMac: flow.srcMac,
    srcPort: flow.dstPort,
    dstPort: flow.srcPort,
    direction: 1 - flow.direction,
  };
}

/** Both directions of CONVERSATIONS varied flows (IPv4 and IPv6, named and unnamed interfaces). */
function conversationBatch(): { flows: Flow[]; batch: RecordBatch } {
  const flows: Flow[] = [];
  for (let i = 0; i < CONVERSATIONS; i++) flows.push(variedFlow(i), reversed(variedFlow(i)));
  return { flows, batch: recordBatchOf(flows, interfaceNames()) };
}

function macValue(mac: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(mac).toString('hex')}`);
}

function ipValue(addr: Uint8Array) {
  return isIpv4Mapped(addr)
    ? { case: 'ipv4', value: Buffer.from(addr).readUInt32BE(12) }
    : { case: 'ipv6', value: Buffer.from(addr).toString('hex') };
}

/** What a collector should read for `flow`, computed from the flow, not from flowtap's encoders. */
function expectedFields(flow: Flow, interfaceName: string) {
  return {
    ethProtocol: flow.etype,
    direction: flow.direction,
    start: [flow.timeFlowStartNs / 1_000_000_000n, Number(flow.timeFlowStartNs % 1_000_000_000n)],
    end: [flow.timeFlowEndNs / 1_000_000_000n, Number(flow.timeFlowEndNs % 1_000_000_000n)],
    macs: [macValue(flow.srcMac), macValue(flow.dstMac)],
    addrs: [ipValue(flow.srcAddr), ipValue(flow.dstAddr)],
    transport: [flow.srcPort, flow.dstPort, flow.proto],
    bytes: BigInt(flow.bytes),
    packets: BigInt(flow.packets),
    interface: interfaceName,
  };
}

/** The same projection of a decoded message. */
function decodedFields(record: PbRecord) {
  const addr = (value: { ipFamily: { case?: string; value?: unknown } } | undefined) => {
    const family = value?.ipFamily;
    if (family?.case === 'ipv6')
      return { case: 'ipv6', value: Buffer.from(family.value as Uint8Array).toString('hex') };
    return { case: family?.case, value: family?.value };
  };
  return {
    ethProtocol: record.ethProtocol,
    direction: record.direction as number,
    start: [record.timeFlowStart?.seconds, record.timeFlowStart?.nanos],
    end: [record.timeFlowEnd?.seconds, record.timeFlowEnd?.nanos],
    macs: [record.dataLink?.srcMac, record.dataLink?.dstMac],
    addrs: [addr(record.network?.srcAddr), addr(record.network?.dstAddr)],
    transport: [record.transport?.srcPort, record.transport?.dstPort, record.transport?.protocol],
    bytes: record.bytes,
    packets: record.packets,
    interface: record.interface,
  };
}

/** The key a flow should have: both 16-byte addresses, the bytewise lower first. */
function expectedKey(flow: Flow): Buffer {
  const [a, b] = [Buffer.from(flow.srcAddr), Buffer.from(flow.dstAddr)].sort(Buffer.compare);
  return Buffer.concat([a, b]);
}

/** Resolves with the first result `exporter` reports that `accept` takes. */
function nextResult(results: BatchResult[], accept: (r: BatchResult) => boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  return new Promise<BatchResult>((resolve, reject) => {
    const poll = () => {
      const found = results.find(accept);
      if (found) resolve(found);
      else if (Date.now() > deadline) reject(new Error(`no matching export result within ${timeoutMs} ms`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

function exporterFor(
  brokers: string[],
  topic: string,
  results: BatchResult[],
  extra: Record<string, string> = {},
) {
  return new KafkaExporter({
    settings: parseKafkaSettings({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC: topic, ...extra }),
    onResult: (r) => results.push(r),
    ...TEST_BACKOFF,
  });
}

test('every field and the key of every flow read back from the cluster are as sent', async (t) => {
  const topic = uniqueTopic('flowtap-fields');
  const peer = await startKafkaPeer(topic);
  t.after(() => peer.stop());
  const results: BatchResult[] = [];
  const exporter = exporterFor(peer.brokers, topic, results);
  t.after(() => exporter.stop());
  const { flows, batch } = conversationBatch();
  exporter.export(batch);
  const messages = await peer.waitForMessages(flows.length, CONSUME_TIMEOUT_MS);
  assert.equal(messages.length, flows.length);
  const names = interfaceNames();
  const bySrcPort = new Map(flows.map((f) => [f.srcPort, f]));
  for (const message of messages) {
    assert.ok(message.value, 'every message has a value');
    const record = fromBinary(RecordSchema, message.value);
    const flow = bySrcPort.get(record.transport?.srcPort ?? -1);
    assert.ok(flow, `message for a flow that was sent (source port ${record.transport?.srcPort})`);
    assert.deepEqual(decodedFields(record), expectedFields(flow, names.nameOf(flow.ifIndex)));
    assert.deepEqual(message.key, expectedKey(flow), `key of the flow from port ${flow.srcPort}`);
    bySrcPort.delete(flow.srcPort);
  }
  assert.equal(bySrcPort.size, 0, 'each flow arrived once');
});

test('both directions of a conversation land in the same partition', async (t) => {
  const topic = uniqueTopic('flowtap-partition');
  const peer = await startKafkaPeer(topic);
  t.after(() => peer.stop());
  const exporter = exporterFor(peer.brokers, topic, []);
  t.after(() => exporter.stop());
  const { flows, batch } = conversationBatch();
  exporter.export(batch);
  const messages = await peer.waitForMessages(flows.length, CONSUME_TIMEOUT_MS);
  const partitionOf = new Map<string, Set<number>>();
  for (const message of messages) {
    const key = message.key?.toString('hex') ?? '';
    if (!partitionOf.has(key)) partitionOf.set(key, new Set());
    partitionOf.get(key)?.add(message.partition);
  }
  assert.equal(partitionOf.size, CONVERSATIONS, 'one key per conversation');
  for (const [key, partitions] of partitionOf) assert.equal(partitions.size, 1, `conversation ${key}`);
  const used = new Set(messages.map((m) => m.partition));
  assert.ok(used.size > 1, `the keys spread over several partitions (${[...used]})`);
});

for (const codec of ['gzip', 'snappy', 'lz4']) {
  test(`messages compressed with ${codec} are read back intact`, async (t) => {
    const topic = uniqueTopic(`flowtap-${codec}`);
    const peer = await startKafkaPeer(topic);
    t.after(() => peer.stop());
    const results: BatchResult[] = [];
    const exporter = exporterFor(peer.brokers, topic, results, { KAFKA_COMPRESSION: codec });
    t.after(() => exporter.stop());
    const { flows, batch } = conversationBatch();
    exporter.export(batch);
    const messages = await peer.waitForMessages(flows.length, CONSUME_TIMEOUT_MS);
    const sent = new Set(flows.map((_, i) => encodePbRecord(batch, i).toString('hex')));
    const received = new Set(messages.map((m: ConsumedMessage) => m.value?.toString('hex')));
    assert.deepEqual(received, sent);
  });
}

test('an exporter started before the cluster exists delivers once it is up, without a restart', async (t) => {
  const proxy = await startBootstrapProxy();
  t.after(() => proxy.close());
  const topic = uniqueTopic('flowtap-late');
  const results: BatchResult[] = [];
  const exporter = exporterFor([proxy.address], topic, results);
  t.after(() => exporter.stop());
  const { flows, batch } = conversationBatch();
  exporter.export(batch);
  // Wait until the exporter has seen the cluster missing and is backing off.
  const deadline = Date.now() + CONSUME_TIMEOUT_MS;
  while (exporter.kafkaStats.retries < 2) {
    assert.ok(Date.now() < deadline, 'the exporter retries while no broker answers');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(exporter.stats.batchesSent, 0);

  const peer = await startKafkaPeer(topic);
  t.after(() => peer.stop());
  proxy.setUpstream(peer.brokers[0]);
  const result = await nextResult(results, () => true, CONSUME_TIMEOUT_MS);
  assert.equal(result.ok, true, `delivered (${result.error?.message})`);
  const messages = await peer.waitForMessages(flows.length, CONSUME_TIMEOUT_MS);
  assert.equal(messages.length, flows.length);
  assert.equal(exporter.kafkaStats.connections, 1);
});

test('losing the whole cluster fails batches by reason after the retry time, without a crash', {
  skip: REAL_KAFKA_BROKERS ? 'needs a cluster the test can stop' : false,
}, async (t) => {
  const topic = uniqueTopic('flowtap-lost');
  const peer = await startKafkaPeer(topic);
  t.after(() => peer.stop());
  const results: BatchResult[] = [];
  const exporter = new KafkaExporter({
    settings: parseKafkaSettings({ KAFKA_BROKERS: peer.brokers.join(','), KAFKA_TOPIC: topic }),
    onResult: (r) => results.push(r),
    retryTimeoutMs: 1_500,
    ...TEST_BACKOFF,
  });
  t.after(() => exporter.stop());
  const { flows, batch } = conversationBatch();
  exporter.export(batch);
  await peer.waitForMessages(flows.length, CONSUME_TIMEOUT_MS);
  await nextResult(results, (r) => r.ok, CONSUME_TIMEOUT_MS);

  await peer.stop();
  exporter.export(batch);
  const failed = await nextResult(results, (r) => !r.ok, CONSUME_TIMEOUT_MS);
  assert.match(failed.error?.message ?? '', /not delivered \(retry-timeout\)/);
  assert.equal(exporter.kafkaStats.flowsFailed['retry-timeout'], flows.length);
  assert.equal(exporter.stats.flowsSent, flows.length);
  // Whether our backoff retried before the deadline depends on how long kafkajs's own quick
  // retries took; either way the cause is kafkajs failing to reach a broker.
  assert.match((failed.error?.cause as Error | undefined)?.name ?? '', /^KafkaJS/);
});
