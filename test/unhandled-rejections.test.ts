import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import {
  FLOWTAP_ORIGIN,
  firstStackFrame,
  NODE_ORIGIN,
  rejectionOrigin,
  UNKNOWN_ORIGIN,
  UnhandledRejections,
} from '../src/unhandled-rejections.ts';
import { classicPcap } from './capture/pcap/capture-files.ts';
import { PACKET_VECTORS } from './vectors/packets.ts';

function errorWithStack(...frames: string[]): Error {
  const err = new Error('broker went away');
  err.stack = ['Error: broker went away', ...frames.map((f) => `    at ${f}`)].join('\n');
  return err;
}

const KAFKA_FRAME = 'Broker.connect (/opt/flowtap/node_modules/kafkajs/src/broker/index.js:12:3)';
const NODE_FRAME = 'TCP.onStreamRead (node:internal/stream_base_commons:217:20)';

test('an error is counted by the package of its first frame outside Node.js', () => {
  assert.equal(rejectionOrigin(errorWithStack(NODE_FRAME, KAFKA_FRAME)), 'kafkajs');
  assert.equal(
    rejectionOrigin(errorWithStack('/app/node_modules/a/node_modules/@grpc/grpc-js/build/src/call.js:31:51')),
    '@grpc/grpc-js',
  );
});

test('an error raised only in Node.js is from node, one in flowtap’s files from flowtap, a bare value unknown', () => {
  assert.equal(
    rejectionOrigin(errorWithStack(NODE_FRAME, 'process.tick (node:internal/process:1:1)')),
    NODE_ORIGIN,
  );
  assert.equal(
    rejectionOrigin(errorWithStack('file:///opt/flowtap/dist/src/agent/agent.js:10:5')),
    FLOWTAP_ORIGIN,
  );
  assert.equal(rejectionOrigin('a string'), UNKNOWN_ORIGIN);
  assert.equal(rejectionOrigin(Object.assign(new Error('no stack'), { stack: undefined })), UNKNOWN_ORIGIN);
});

test('each origin is logged once as an error without the stack, its first frame at debug only', () => {
  const errors: object[] = [];
  const debugs: object[] = [];
  const rejections = new UnhandledRejections();
  rejections.useLogger({ error: (fields) => errors.push(fields), debug: (fields) => debugs.push(fields) });
  const err = Object.assign(errorWithStack(NODE_FRAME, KAFKA_FRAME), { code: 'ECONNRESET' });
  rejections.record(err);
  rejections.record(err);
  rejections.record('a string');
  assert.deepEqual(Object.fromEntries(rejections.counts), { kafkajs: 2, unknown: 1 });
  assert.deepEqual(errors, [
    { origin: 'kafkajs', errorName: 'Error', code: 'ECONNRESET', reason: 'broker went away' },
    { origin: 'unknown', errorName: 'string', reason: 'a string' },
  ]);
  assert.deepEqual(debugs[0], { origin: 'kafkajs', frame: `at ${KAFKA_FRAME}` });
  assert.equal(firstStackFrame('a string'), undefined);
});

test('a logger that throws does not lose the count', () => {
  const rejections = new UnhandledRejections();
  rejections.useLogger({
    error() {
      throw new Error('EPIPE');
    },
    debug() {},
  });
  rejections.record(new Error('x'));
  assert.equal(rejections.counts.get(FLOWTAP_ORIGIN), 1);
});

test('the CLI logs a stray rejection once, without a stack, and finishes its work with exit 0', async () => {
  const cli = new URL('../src/cli.ts', import.meta.url).pathname;
  const preload = new URL('./helpers/stray-rejections.ts', import.meta.url).pathname;
  const capture = classicPcap([
    { frame: Buffer.from(PACKET_VECTORS[0].frame, 'hex'), seconds: 1_700_000_000, fraction: 0 },
  ]);
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', preload, cli, 'read', '-'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  child.stdin.end(capture);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.equal(stdout.trim().split('\n').length, 1, 'the flow is still printed');
  const logged = stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line));
  assert.equal(logged.length, 1, stderr);
  assert.equal(logged[0].level, 50);
  assert.equal(logged[0].origin, FLOWTAP_ORIGIN);
  assert.equal(logged[0].code, 'ECONNRESET');
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  assert.match(stderr, /^flowtap read: pcap, 1 packets read/m);
});
