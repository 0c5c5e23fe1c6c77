/**
 * The Kafka exporter with a fake producer in place of kafkajs: message keys, splitting into
 * produce calls, retries with backoff, the bounded queue and failures counted by reason, and
 * where kafkajs's own log lines go.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import type { BatchResult } from '../../src/export/exporter.ts';
import {
  createKafkajsProducer,
  KAFKA_KEY_BYTES,
  KafkaExporter,
  type KafkaMessage,
  type KafkaProducerClient,
  kafkaMessagesOf,
} from '../../src/export/kafka.ts';
import { type KafkaSettings, parseKafkaSettings } from '../../src/export/kafka-config.ts';
import { encodePbRecord } from '../../src/export/pbflow/encode.ts';
import { parseIp } from '../../src/model/ip.ts';
import { makeFlow } from '../helpers/flows.ts';
import { variedBatch } from './ipfix/flows.ts';

const WAIT_TIMEOUT_MS = 5_000;

/** A producer whose every call is decided by the test. */
class FakeProducer implements KafkaProducerClient {
  readonly sent: KafkaMessage[][] = [];
  connects = 0;
  /** Errors the next calls throw, in order; empty = success. */
  readonly failures: unknown[] = [];
  /** When set, send waits for it before answering (a slow or stuck broker). */
  gate: Promise<void> | undefined;

  async connect(): Promise<void> {
    this.connects++;
    const failure = this.failures.shift();
    if (failure) throw failure;
  }

  async send(_topic: string, messages: KafkaMessage[]): Promise<void> {
    await this.gate;
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.sent.push(messages);
  }

  async disconnect(): Promise<void> {}
}

function settings(extra: Record<string, string> = {}): KafkaSettings {
  return parseKafkaSettings({ KAFKA_BROKERS: '127.0.0.1:9092', ...extra });
}

function fakeExporter(producer: FakeProducer, results: BatchResult[], options: object = {}) {
  return new KafkaExporter({
    settings: settings(),
    createProducer: () => producer,
    onResult: (r) => results.push(r),
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    ...options,
  });
}

/** Resolves once `count` results arrived (polling with a bounded deadline). */
async function resultsAfter(results: BatchResult[], count: number): Promise<BatchResult[]> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (results.length < count) {
    if (Date.now() > deadline)
      throw new Error(`${results.length} of ${count} results within ${WAIT_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return results.slice(0, count);
}

/** A kafkajs-shaped error a broker answers when a retry cannot help. */
function messageTooLarge(): Error {
  const protocolError = Object.assign(new Error('The request included a message larger than the max'), {
    name: 'KafkaJSProtocolError',
    retriable: false,
  });
  return Object.assign(new Error('retries exhausted', { cause: protocolError }), {
    name: 'KafkaJSNumberOfRetriesExceeded',
    retriable: false,
  });
}

test('the key holds both addresses, lowest first, the same for both directions', () => {
  const batch = recordBatchOf([
    makeFlow({ srcAddr: '10.0.0.9', dstAddr: '10.0.0.1' }),
    makeFlow({ srcAddr: '10.0.0.1', dstAddr: '10.0.0.9' }),
    makeFlow({ etype: 0x86dd, srcAddr: 'fd00::2', dstAddr: '2001:db8::1' }),
  ]);
  const [ab, ba, v6] = kafkaMessagesOf(batch);
  const low = Buffer.from(parseIp('10.0.0.1')!);
  const high = Buffer.from(parseIp('10.0.0.9')!);
  assert.equal(ab.key.length, KAFKA_KEY_BYTES);
  assert.deepEqual(ab.key, Buffer.concat([low, high]));
  assert.deepEqual(ba.key, ab.key);
  assert.deepEqual(
    v6.key,
    Buffer.concat([Buffer.from(parseIp('2001:db8::1')!), Buffer.from(parseIp('fd00::2')!)]),
  );
});

test('each message value is the flow as one pbflow.Record', () => {
  const batch = variedBatch(10);
  kafkaMessagesOf(batch).forEach((message, i) => {
    assert.deepEqual(message.value, encodePbRecord(batch, i));
  });
});

test('a batch is produced in calls of at most KAFKA_BATCH_MESSAGES messages', async () => {
  const producer = new FakeProducer();
  const results: BatchResult[] = [];
  const exporter = fakeExporter(producer, results, { settings: settings({ KAFKA_BATCH_MESSAGES: '7' }) });
  exporter.export(variedBatch(20));
  await resultsAfter(results, 1);
  await exporter.stop();
  assert.deepEqual(
    producer.sent.map((call) => call.length),
    [7, 7, 6],
  );
});

test('a batch is produced in calls of at most KAFKA_BATCH_SIZE key and value bytes', async () => {
  const producer = new FakeProducer();
  const results: BatchResult[] = [];
  const batch = variedBatch(30);
  const messageBytes = kafkaMessagesOf(batch).map((m) => m.key.length + m.value.length);
  const limit = Math.max(...messageBytes) * 4;
  const exporter = fakeExporter(producer, results, {
    settings: settings({ KAFKA_BATCH_SIZE: String(limit) }),
  });
  exporter.export(batch);
  await resultsAfter(results, 1);
  await exporter.stop();
  assert.ok(producer.sent.length > 1, 'split into several calls');
  assert.equal(producer.sent.flat().length, 30);
  for (const call of producer.sent) {
    assert.ok(call.reduce((sum, m) => sum + m.key.length + m.value.length, 0) <= limit);
  }
});

test('a produce call that fails is retried after a backoff and then delivered', async () => {
  const producer = new FakeProducer();
  // A refused connect, then a connect that works followed by a send that times out.
  producer.failures.push(
    new Error('connect ECONNREFUSED'),
    undefined,
    new Error('Request Produce timed out'),
  );
  const results: BatchResult[] = [];
  const transportErrors: Error[] = [];
  const exporter = fakeExporter(producer, results, {
    onTransportError: (e: Error) => transportErrors.push(e),
  });
  exporter.export(variedBatch(5));
  const [result] = await resultsAfter(results, 1);
  await exporter.stop();
  assert.equal(result.ok, true);
  assert.equal(exporter.kafkaStats.retries, 2);
  assert.equal(transportErrors.length, 2);
  assert.equal(producer.connects, 3, 'connects again after each failure');
  assert.equal(exporter.kafkaStats.messagesAcked, 5);
});

test('a batch the broker refuses for good fails at once, counted as rejected', async () => {
  const producer = new FakeProducer();
  producer.failures.push(undefined, messageTooLarge());
  const results: BatchResult[] = [];
  const exporter = fakeExporter(producer, results);
  exporter.export(variedBatch(4));
  exporter.export(variedBatch(3));
  const [first, second] = await resultsAfter(results, 2);
  await exporter.stop();
  assert.equal(first.ok, false);
  assert.match(first.error?.message ?? '', /4 of 4 flows not delivered \(rejected\)/);
  assert.equal(second.ok, true, 'the next batch is delivered');
  assert.equal(exporter.kafkaStats.retries, 0);
  assert.deepEqual(exporter.kafkaStats.flowsFailed, { 'retry-timeout': 0, rejected: 4, stopped: 0 });
});

test('a batch still failing after the retry time counts as failed and the next one is tried', async () => {
  const producer = new FakeProducer();
  const down = new Error('connect ECONNREFUSED');
  // Fails until the first batch's deadline has passed, then works.
  let failing = true;
  producer.connect = async () => {
    producer.connects++;
    if (failing) throw down;
  };
  const results: BatchResult[] = [];
  const exporter = fakeExporter(producer, results, { retryTimeoutMs: 100 });
  exporter.export(variedBatch(6));
  const [first] = await resultsAfter(results, 1);
  failing = false;
  exporter.export(variedBatch(2));
  const [, second] = await resultsAfter(results, 2);
  await exporter.stop();
  assert.equal(first.ok, false);
  assert.equal(first.error?.cause, down);
  assert.equal(second.ok, true);
  assert.equal(exporter.kafkaStats.flowsFailed['retry-timeout'], 6);
  assert.ok(exporter.kafkaStats.retries >= 2);
});

test('a stuck broker fills the bounded queue, later batches are dropped and counted, and it recovers', async () => {
  const producer = new FakeProducer();
  let release = () => {};
  producer.gate = new Promise((resolve) => {
    release = resolve;
  });
  const results: BatchResult[] = [];
  const exporter = fakeExporter(producer, results, { maxQueuedBatches: 3 });
  const accepted = Array.from({ length: 6 }, () => exporter.export(variedBatch(10)));
  assert.deepEqual(accepted, [true, true, true, false, false, false]);
  assert.equal(exporter.stats.flowsDropped['queue-full'], 30);
  release();
  producer.gate = undefined;
  await resultsAfter(results, 6);
  assert.equal(exporter.stats.flowsSent, 30);
  assert.equal(exporter.export(variedBatch(10)), true, 'accepts batches again');
  await resultsAfter(results, 7);
  await exporter.stop();
  assert.equal(exporter.stats.flowsSent, 40);
});

test('stopping while a batch waits for a retry ends the wait and counts its flows as stopped', async () => {
  const producer = new FakeProducer();
  producer.connect = async () => {
    throw new Error('connect ECONNREFUSED');
  };
  const results: BatchResult[] = [];
  const exporter = fakeExporter(producer, results, {
    initialBackoffMs: 60_000,
    maxBackoffMs: 60_000,
    retryTimeoutMs: 600_000,
  });
  exporter.export(variedBatch(8));
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  while (exporter.kafkaStats.retries === 0) {
    assert.ok(Date.now() < deadline, 'the first attempt failed');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const t0 = performance.now();
  await exporter.stop(50);
  assert.ok(performance.now() - t0 < WAIT_TIMEOUT_MS, 'stop did not wait for the backoff');
  await resultsAfter(results, 1);
  assert.equal(exporter.kafkaStats.flowsFailed.stopped, 8);
});

test('kafkajs logs go to the given logger at debug, none to the console', async (t) => {
  // A port that accepts and closes at once: kafkajs fails to connect and logs why.
  const server = createServer((socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as { port: number }).port;
  const debugLines: { fields: Record<string, unknown>; message: string }[] = [];
  const logger = {
    warn: () => {},
    debug: (fields: object, message: string) =>
      debugLines.push({ fields: fields as Record<string, unknown>, message }),
  };
  // kafkajs's default logger writes with console.*; stdout must carry nothing but flows.
  const consoleCalls: string[] = [];
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    t.mock.method(console, method, () => consoleCalls.push(method));
  }
  const client = createKafkajsProducer(settings({ KAFKA_BROKERS: `127.0.0.1:${port}` }), logger);
  await assert.rejects(client.connect());
  await client.disconnect();
  t.mock.restoreAll();
  assert.deepEqual(consoleCalls, []);
  assert.ok(debugLines.length > 0, 'kafkajs logged');
  assert.ok(debugLines.every((line) => typeof line.fields.kafkajs === 'string'));
});

test('without a logger kafkajs logs nowhere', async (t) => {
  const consoleCalls: string[] = [];
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    t.mock.method(console, method, () => consoleCalls.push(method));
  }
  // Port 1 on loopback: nothing listens, the connect is refused.
  const client = createKafkajsProducer(settings({ KAFKA_BROKERS: '127.0.0.1:1' }), undefined);
  await assert.rejects(client.connect());
  await client.disconnect();
  t.mock.restoreAll();
  assert.deepEqual(consoleCalls, []);
});
