import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { type AgentConfig, loadConfig } from '../../src/agent/config.ts';
import { createExporters } from '../../src/agent/exporters.ts';
import { createLogger } from '../../src/agent/logger.ts';
import { TableOutput } from '../../src/agent/table-output.ts';
import { ConfigError } from '../../src/errors.ts';
import { startCollector } from '../../src/export/grpc-collector.ts';
import { JsonLinesExporter } from '../../src/export/json-lines.ts';
import { batchOf } from './fakes.ts';

function settings(flags: Record<string, string>): AgentConfig {
  return loadConfig({ flags, env: {}, stdoutIsTty: false });
}

const logger = createLogger('silent');

test('EXPORT=json writes JSON lines, or a table with --output table', async () => {
  const [lines] = await createExporters(settings({}), logger, () => {}, new PassThrough());
  const [table] = await createExporters(settings({ output: 'table' }), logger, () => {}, new PassThrough());
  assert.ok(lines instanceof JsonLinesExporter);
  assert.ok(table instanceof TableOutput);
});

test('exporters queue at most BUFFERS_LENGTH batches', async () => {
  const out = new PassThrough({ highWaterMark: 1 }); // never read: the first write waits for drain
  const [json] = await createExporters(settings({ buffersLength: '2' }), logger, () => {}, out);
  const accepted = [1, 2, 3, 4].map(() => json.export(batchOf(1)));
  assert.deepEqual(accepted, [true, true, false, false]);
  assert.equal(json.stats.flowsDropped['queue-full'], 2);
  await json.stop(10);
});

test('EXPORT=ipfix+udp sends to the target collector', async (t) => {
  const collector = createSocket('udp4');
  collector.bind(0, '127.0.0.1');
  await once(collector, 'listening');
  t.after(() => collector.close());
  const port = collector.address().port;
  const results: boolean[] = [];
  const [ipfix] = await createExporters(
    settings({ export: 'ipfix+udp', target: `127.0.0.1:${port}` }),
    logger,
    (r) => results.push(r.ok),
  );
  const received = once(collector, 'message');
  ipfix.export(batchOf(3));
  const [message] = (await received) as [Buffer];
  assert.equal(message.readUInt16BE(0), 10, 'an IPFIX message (version 10)');
  await ipfix.stop();
  assert.deepEqual(results, [true]);
});

test('EXPORT=grpc sends to a pbflow collector at the target, split at GRPC_MESSAGE_MAX_FLOWS', async (t) => {
  const messages: number[] = [];
  let gotAll!: () => void;
  const all = new Promise<void>((resolve) => {
    gotAll = resolve;
  });
  const server = await startCollector({
    port: 0,
    onRecords: (flows) => {
      messages.push(flows.length);
      if (messages.reduce((a, b) => a + b, 0) === 5) gotAll();
    },
  });
  t.after(() => server.close(0));
  const config = loadConfig({
    flags: { export: 'grpc', target: `127.0.0.1:${server.port}` },
    env: { GRPC_MESSAGE_MAX_FLOWS: '2' },
    stdoutIsTty: false,
  });
  const [grpc] = await createExporters(config, logger, () => {});
  grpc.export(batchOf(5));
  await all;
  await grpc.stop();
  assert.deepEqual(messages, [2, 2, 1]);
  assert.equal(grpc.stats.flowsSent, 5);
});

test('EXPORT=kafka without KAFKA_BROKERS is a settings error naming the variable', async () => {
  await assert.rejects(
    createExporters(settings({ export: 'kafka' }), logger, () => {}),
    (err: unknown) => err instanceof ConfigError && err.setting === 'KAFKA_BROKERS' && err.exitCode === 2,
  );
});
